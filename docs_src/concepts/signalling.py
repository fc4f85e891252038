from fastapi import FastAPI

from djfapi.utils.fastapi_django import request_signalling, run_signalled
from testproject.business.models import Company

app = FastAPI()


@request_signalling
def count_companies() -> dict[str, int]:
    return {"companies": Company.objects.count()}


@app.get("/stats")
async def stats() -> dict[str, int]:
    return await run_signalled(count_companies)
