"""Read replicas against a real streaming replica (``tests.live.replica``).

The set-up runs ``initdb`` for a private primary, ``pg_basebackup -R`` for a hot
standby streaming from it, seeds the demo on the primary and serves it with uvicorn,
``djfapi.replicas.ReplicaRouter`` routing generated reads to the standby. Replica lag
is made on demand by pausing WAL replay on the standby, so every answer below is a
fact about where a read went:

* a caller who just wrote reads the row back (pinned to the primary), while another
  caller, who did not write, gets a 404 for it — the replica lags, and that caller's
  reads do go there;
* a write never reads from the replica: that other caller may add a department under
  the company the replica does not have yet (its parent is resolved on the primary);
* once the pin window has passed, the writer's reads go back to the replica and the
  row is gone again while the lag lasts: the window must outlast the lag;
* when replay resumes every caller sees the row; the natural lag (write answered ->
  row visible on the standby) is measured and recorded.

PostgreSQL only: it needs the server's binaries (``initdb``, ``pg_basebackup``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers import TENANT, auth
from tests.live.figures import record
from tests.live.replica import ReplicaPair
from tests.live.server import REPO_ROOT, LiveServer, server_environment, start_server

pytestmark = pytest.mark.postgresql

DATABASE = "djfapi_replicated"
PIN_SECONDS = 2.0
WRITER = auth(TENANT, "writer")
READER = auth(TENANT, "reader")


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    replicas = ReplicaPair.start()
    try:
        replicas.create_database(DATABASE)
        seeded = subprocess.run(
            [sys.executable, "-m", "testproject", "seed"],
            cwd=REPO_ROOT,
            env=server_environment(replicas.primary.url(DATABASE)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        replicas.caught_up()
        yield replicas
    finally:
        replicas.stop()


@pytest.fixture(scope="module")
def server(pair: ReplicaPair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        DATABASE,
        tmp_path_factory.mktemp("replicas"),
        url=pair.primary.url(DATABASE),
        label="replicas",
        DJFAPI_READ_REPLICA_URL=pair.replica.url(DATABASE),
        DJFAPI_REPLICA_PIN_SECONDS=str(PIN_SECONDS),
    )
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as http:
        yield http


def test_the_writer_reads_its_writes_while_the_replica_lags(pair: ReplicaPair, client: httpx.Client) -> None:
    pair.caught_up()
    pair.pause()
    try:
        created = client.post("/companies", json={"name": "Written while the replica lags"}, headers=WRITER)
        assert created.status_code == 201, created.text
        company = f"/companies/{created.json()['id']}"

        # The writer is pinned to the primary: it sees its own write, in lists too.
        assert client.get(company, headers=WRITER).status_code == 200
        names = [c["name"] for c in client.get("/companies?limit=1000", headers=WRITER).json()["items"]]
        assert "Written while the replica lags" in names

        # Another caller of the same tenant reads from the lagging replica: not there yet.
        missing = client.get(company, headers=READER)
        assert missing.status_code == 404, missing.text
        assert missing.json()["detail"]["code"] == "not_exist:company"

        # A write resolves its parent on the primary, whoever writes: the department is made ...
        department = client.post(f"{company}/departments", json={"name": "Ops", "budget": "10.00"}, headers=READER)
        assert department.status_code == 201, department.text
        # ... and from now on that caller is pinned too, and reads both back.
        assert client.get(company, headers=READER).status_code == 200
        assert client.get(f"{company}/departments", headers=READER).json()["items"][0]["name"] == "Ops"

        # Past the window the writer's reads return to the replica, which still lags.
        time.sleep(PIN_SECONDS + 0.5)
        assert client.get(company, headers=WRITER).status_code == 404
    finally:
        pair.resume()
    pair.caught_up()
    assert client.get(company, headers=auth(TENANT, "someone-else")).status_code == 200


def test_every_read_of_a_write_request_goes_to_the_primary(pair: ReplicaPair, client: httpx.Client) -> None:
    """PATCH, PUT and DELETE find their row on the primary even when the replica has not got it."""
    pair.caught_up()
    pair.pause()
    try:
        created = client.post("/companies", json={"name": "Lagging"}, headers=WRITER)
        assert created.status_code == 201, created.text
        company = f"/companies/{created.json()['id']}"
        other = auth(TENANT, "patcher")
        assert client.get(company, headers=other).status_code == 404  # the replica has not got it
        patched = client.patch(company, json={"name": "Renamed"}, headers=other)
        assert patched.status_code == 200, patched.text
        assert patched.json()["name"] == "Renamed"
        assert client.delete(company, headers=auth(TENANT, "deleter")).status_code == 204
    finally:
        pair.resume()


def test_replica_lag_is_measured(request: pytest.FixtureRequest, pair: ReplicaPair, client: httpx.Client) -> None:
    pair.caught_up()
    lags = []
    for number in range(5):
        created = client.post("/companies", json={"name": f"Lag probe {number}"}, headers=WRITER)
        assert created.status_code == 201, created.text
        lags.append(pair.caught_up())
    record(
        request.config,
        f"streaming replica (same machine): a write visible on the replica {statistics.median(lags) * 1000:.1f} ms "
        f"after its response (median of 5, max {max(lags) * 1000:.1f} ms); the pin window is {PIN_SECONDS:g} s",
    )
    assert max(lags) < PIN_SECONDS
