"""Swagger UI and ReDoc for your own FastAPI app, served from local files.

Run it with ``python docs_src/openapi/serve_docs.py`` and open http://127.0.0.1:8000/docs:
the page works with no internet access.
"""

from __future__ import annotations

from fastapi import FastAPI

from djfapi.ops.docs import serve_docs

app = FastAPI(title="Inventory", version="1.0")


@app.get("/items/{item_id}", summary="Read an item")
def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


# Replaces FastAPI's CDN-based /docs and /redoc with the same pages on local assets.
serve_docs(app)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
