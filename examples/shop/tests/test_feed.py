"""The products' change feed (``subscribe=True``): a subscriber receives the INSERT of a
product, over WebSocket and over Server-Sent Events, and only its shop's."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from catalog.models import Product
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_api import TEA, create_shop
from tests.tutorial import EXAMPLE

DEADLINE = 10.0  # seconds a test waits for an event before it fails


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    """A client whose streams send a keep-alive every 0.2 s, so that no read waits forever."""
    settings.DJFAPI = {**settings.DJFAPI, "LIVE_HEARTBEAT": 0.2, "LIVE_POLL_INTERVAL": 0.5}
    with TestClient(app) as client:
        yield client


def next_change(websocket: Any) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        message = websocket.receive_json()
        if message["event"] in ("INSERT", "UPDATE", "DELETE"):
            return message
    pytest.fail(f"no change event within {DEADLINE} s")


def test_a_websocket_subscriber_receives_the_insert_of_a_product(feed: TestClient) -> None:
    shop = create_shop(feed)
    path = f"/shops/{shop['id']}/products/subscribe"

    with feed.websocket_connect(path, headers=auth("bob")) as websocket:
        ready = websocket.receive_json()
        assert ready["event"] == "ready"
        created = feed.post(f"/shops/{shop['id']}/products", json=TEA, headers=auth("alice"))
        assert created.status_code == 201, created.text
        change = next_change(websocket)

    assert change["id"] > ready["id"]
    assert change == {
        "id": change["id"],
        "event": "INSERT",
        "object_id": str(created.json()["id"]),
        "data": created.json(),  # the product as GET shows it to this subscriber
    }


def test_a_subscriber_receives_only_its_shops_products(feed: TestClient) -> None:
    mine, other = create_shop(feed), create_shop(feed, "frank")

    with feed.websocket_connect(f"/shops/{mine['id']}/products/subscribe", headers=auth("alice")) as websocket:
        assert websocket.receive_json()["event"] == "ready"
        feed.post(f"/shops/{other['id']}/products", json={"name": "Not mine", "price": "1"}, headers=auth("frank"))
        feed.post(f"/shops/{mine['id']}/products", json=TEA, headers=auth("alice"))
        change = next_change(websocket)

    assert change["data"]["name"] == "Tea"  # Frank's product, written first, was never sent


def test_a_product_saved_outside_the_api_is_published(feed: TestClient) -> None:
    shop = create_shop(feed)

    with feed.websocket_connect(f"/shops/{shop['id']}/products/subscribe", headers=auth("bob")) as websocket:
        assert websocket.receive_json()["event"] == "ready"
        product = Product.objects.create(shop_id=shop["id"], name="From the admin", price=Decimal("2.00"))
        change = next_change(websocket)

    assert (change["event"], change["object_id"]) == ("INSERT", str(product.pk))


def test_every_process_that_sets_django_up_imports_the_tree() -> None:
    """So that the admin, ``manage.py shell`` and commands publish their writes too."""
    code = "import sys, django; django.setup(); print('catalog.api' in sys.modules)"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "shopsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=EXAMPLE, env=environ, capture_output=True, text=True, timeout=60
    )

    assert result.stdout.strip() == "True", result.stderr


def sse_frames(response: Any, frames: queue.Queue[dict[str, Any] | None]) -> None:
    """Parse the event stream into ``{"event", "id", "data"}`` frames (keep-alives skipped)."""
    frame: dict[str, Any] = {}
    try:
        for line in response.iter_lines():
            if not line:
                if "event" in frame:
                    frames.put(frame)
                frame = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                frame[name] = json.loads(value) if name in ("data", "id") else value
    except Exception:  # the test closed the stream
        pass
    finally:
        frames.put(None)


def test_an_sse_subscriber_receives_the_insert_of_a_product(feed: TestClient) -> None:
    shop = create_shop(feed)
    frames: queue.Queue[dict[str, Any] | None] = queue.Queue()

    with feed.stream("GET", f"/shops/{shop['id']}/products/subscribe", headers=auth("alice")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        threading.Thread(target=sse_frames, args=(response, frames), daemon=True).start()
        ready = frames.get(timeout=DEADLINE)
        created = feed.post(f"/shops/{shop['id']}/products", json=TEA, headers=auth("alice"))
        insert = frames.get(timeout=DEADLINE)
        response.close()

    assert ready is not None and ready["event"] == "ready"
    assert insert is not None
    assert insert["event"] == "INSERT"
    assert insert["data"]["data"] == created.json()
