"""Process-wide limits of generated routes: request body size and the worker-thread pool."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema
from djfapi.utils.fastapi_django import threadpool_size
from tests.helpers import auth
from tests.testapp import models


def test_a_body_over_the_limit_is_413_with_the_error_body(client: TestClient) -> None:
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/companies", content=huge, headers={**auth(), "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"]["type"] == "payload_too_large"


def test_a_body_under_the_limit_is_read(client: TestClient) -> None:
    response = client.post("/companies", json={"name": "x" * 200}, headers=auth())
    assert response.status_code == 201


def test_the_limit_comes_from_the_settings(settings: Any, shared_connection: None) -> None:
    settings.DJFAPI = {**settings.DJFAPI, "MAX_BODY_SIZE": 64}
    from djfapi import BaseModel

    class Shelf(BaseModel):
        code: str
        name: str

    tree = DjangoRouterSchema(name="shelves", model=models.Shelf, get=Shelf, create=Shelf)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    with TestClient(app) as client:
        small = client.post("/shelves", json={"code": "A", "name": "a"})
        large = client.post("/shelves", json={"code": "B", "name": "b" * 100})
    assert small.status_code == 201
    assert large.status_code == 413


def test_threadpool_size_is_a_setting(settings: Any) -> None:
    settings.DJFAPI = {key: value for key, value in settings.DJFAPI.items() if key != "THREADPOOL_SIZE"}
    assert threadpool_size() == 40  # the library's default
    settings.DJFAPI = {**settings.DJFAPI, "THREADPOOL_SIZE": 3}
    assert threadpool_size() == 3


def test_the_demo_runs_four_threads_on_sqlite_only() -> None:
    """docs/deployment.md, "Worker threads": SQLite's queries hold the GIL, PostgreSQL's wait on the network."""
    from testproject import settings as demo

    expected = int(os.environ.get("DJFAPI_THREADPOOL_SIZE", 0)) or (
        4 if demo.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else None
    )
    assert demo.DJFAPI.get("THREADPOOL_SIZE") == expected


@pytest.mark.django_db(transaction=True)
def test_generated_endpoints_never_run_more_threads_than_the_pool(settings: Any) -> None:
    """With THREADPOOL_SIZE=2, eight concurrent slow requests run at most two at a time."""
    settings.DJFAPI = {**settings.DJFAPI, "THREADPOOL_SIZE": 2}
    from djfapi import BaseModel

    class Shelf(BaseModel):
        code: str

    tree = DjangoRouterSchema(name="shelves", model=models.Shelf, get=Shelf)
    running = 0
    peak = 0
    lock = threading.Lock()

    @tree.endpoint("/slow", detail=False)
    def slow() -> dict[str, bool]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return {"ok": True}

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(tree.router)
    with TestClient(app) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("/shelves/slow").status_code, range(8)))
    assert statuses == [200] * 8
    assert peak == 2


def test_a_chunked_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    """Without a Content-Length the body is counted while it streams in."""

    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = client.post("/companies", content=chunks(), headers={**auth(), "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "payload_too_large"
