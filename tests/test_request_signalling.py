"""Connection hygiene (SPEC §8): Django's request signals around every ORM call FastAPI makes.

The first half tests ``request_signalling`` on its own. The second half runs the demo
app through a plain ``TestClient`` on ``transactional_db``: every worker thread opens
its own real connection, and Django's ``close_old_connections`` is connected to the
request signals exactly as in production (the ``client`` fixture, which shares the
test's connection and unhooks it, would hide everything this module is about).
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from djfapi.errors import install_error_handlers
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.security.jwt import JWTTokenDjangoPermissions
from djfapi.utils.fastapi_django import request_signalling
from testproject.app import create_app
from testproject.business import schemas
from testproject.business.models import Company, CompanyCostcenter, CompanyDepartment
from testproject.tokens import mint_token
from tests.helpers import TENANT, auth, behind_pooler

# -- request_signalling on its own ----------------------------------------------------


@pytest.fixture
def signal_log() -> Iterator[list[tuple[str, int]]]:
    """(event, thread id) for each request signal sent while the test runs."""
    log: list[tuple[str, int]] = []

    def started(sender: Any, **kwargs: Any) -> None:
        log.append(("started", threading.get_ident()))

    def finished(sender: Any, **kwargs: Any) -> None:
        log.append(("finished", threading.get_ident()))

    request_started.connect(started, weak=False)
    request_finished.connect(finished, weak=False)
    try:
        yield log
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)


def in_new_thread(func: Callable[[], Any]) -> tuple[Any, BaseException | None, int]:
    """Run ``func`` in a fresh thread: (result, exception, that thread's id).

    A fresh thread has no database connection of its own, so Django's
    ``close_old_connections`` (also hooked to the signals) has nothing to do there.
    """
    outcome: dict[str, Any] = {"result": None, "error": None}

    def target() -> None:
        outcome["thread"] = threading.get_ident()
        try:
            outcome["result"] = func()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return outcome["result"], outcome["error"], outcome["thread"]


def test_signals_surround_the_call_in_the_calling_thread(signal_log: list[tuple[str, int]]) -> None:
    @request_signalling
    def work() -> str:
        signal_log.append(("call", threading.get_ident()))
        return "done"

    result, error, thread = in_new_thread(work)
    assert (result, error) == ("done", None)
    assert thread != threading.get_ident()
    assert signal_log == [("started", thread), ("call", thread), ("finished", thread)]


def test_arguments_and_return_value_pass_through(signal_log: list[tuple[str, int]]) -> None:
    @request_signalling
    def add(a: int, *, b: int) -> int:
        return a + b

    result, error, _ = in_new_thread(lambda: add(2, b=3))
    assert (result, error) == (5, None)
    assert [event for event, _ in signal_log] == ["started", "finished"]


def test_finished_is_sent_when_the_call_raises(signal_log: list[tuple[str, int]]) -> None:
    problem = LookupError("nothing here")

    @request_signalling
    def fail() -> None:
        signal_log.append(("call", threading.get_ident()))
        raise problem

    _, error, thread = in_new_thread(fail)
    assert error is problem
    assert signal_log == [("started", thread), ("call", thread), ("finished", thread)]


def test_each_call_sends_its_own_pair(signal_log: list[tuple[str, int]]) -> None:
    wrapped = request_signalling(lambda: None)
    in_new_thread(wrapped)
    in_new_thread(wrapped)
    assert [event for event, _ in signal_log] == ["started", "finished", "started", "finished"]


async def async_endpoint() -> None:
    """An async def."""


async def async_generator_endpoint() -> Any:
    yield None


class AsyncCallable:
    async def __call__(self) -> None:
        return None


class SyncCallable:
    def __call__(self, value: int) -> int:
        return value * 2


@pytest.mark.parametrize(
    "func",
    [
        pytest.param(async_endpoint, id="async-def"),
        pytest.param(async_generator_endpoint, id="async-generator"),
        pytest.param(AsyncCallable(), id="object-with-async-call"),
    ],
)
def test_async_callables_are_refused_with_advice(func: Any, signal_log: list[tuple[str, int]]) -> None:
    with pytest.raises(TypeError) as info:
        request_signalling(func)
    message = str(info.value)
    assert "sync callables only" in message
    assert "plain 'def'" in message  # says what to do instead
    assert signal_log == []


def test_refusal_names_the_async_function() -> None:
    with pytest.raises(TypeError, match="async_endpoint"):
        request_signalling(async_endpoint)


def test_object_with_sync_call_is_accepted(signal_log: list[tuple[str, int]]) -> None:
    wrapped = request_signalling(SyncCallable())
    assert in_new_thread(lambda: wrapped(21))[:2] == (42, None)
    assert [event for event, _ in signal_log] == ["started", "finished"]


def test_wrapper_keeps_name_docstring_and_signature() -> None:
    def list_things(limit: int = 10, *, tag: str | None = None) -> list[str]:
        """List the things."""
        return []

    wrapped = request_signalling(list_things)
    assert wrapped.__name__ == "list_things"
    assert wrapped.__qualname__ == list_things.__qualname__
    assert wrapped.__doc__ == "List the things."
    assert wrapped.__wrapped__ is list_things  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(list_things)


def test_fastapi_reads_parameters_through_the_wrapper() -> None:
    app = FastAPI()

    @app.get("/double")
    @request_signalling
    def double(value: int = Query(ge=0)) -> dict[str, int]:
        return {"value": value * 2}

    with TestClient(app) as test_client:
        assert test_client.get("/double", params={"value": 4}).json() == {"value": 8}
        assert test_client.get("/double", params={"value": -1}).status_code == 422
        assert test_client.get("/double", params={"value": "x"}).status_code == 422


# -- the demo app, with real per-thread connections -----------------------------------


@dataclass(frozen=True)
class Event:
    kind: str  # "started", "finished", "connect", "query" or "close"
    thread: int
    connection: int = 0  # id() of the Django connection object, for "connect", "query" and "close"
    sql: str = ""
    connection_closed: bool | None = None  # for "finished": after close_old_connections ran


def closes_for_real(wrapper: BaseDatabaseWrapper) -> bool:
    """Whether ``close()`` really drops the connection.

    Not on the in-memory SQLite test database: Django's SQLite backend ignores
    ``close()`` there, since closing would destroy the database. On SQLite the proof is
    therefore that Django *asked* to close it; on PostgreSQL, that it is gone.
    """
    return not (wrapper.vendor == "sqlite" and wrapper.is_in_memory_db())


class Recorder:
    """Records request signals, and per connection object its connects, queries and closes.

    A connection object is watched from the moment its thread receives
    ``request_started`` or opens a connection, so a query in any thread, signalled or
    not, is seen. The ``request_finished`` receiver is connected after Django's
    ``close_old_connections`` (connected when ``django.db`` is imported), so it sees the
    connection as Django left it.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.connections: list[BaseDatabaseWrapper] = []
        self._lock = threading.RLock()
        self._recording = False

    @contextmanager
    def recording(self) -> Iterator[Recorder]:
        self._recording = True
        try:
            yield self
        finally:
            self._recording = False

    def install(self) -> None:
        request_started.connect(self._started)
        request_finished.connect(self._finished)
        connection_created.connect(self._connection_created)

    def uninstall(self) -> None:
        request_started.disconnect(self._started)
        request_finished.disconnect(self._finished)
        connection_created.disconnect(self._connection_created)
        for wrapper in self.connections:
            if self._execute in wrapper.execute_wrappers:
                wrapper.execute_wrappers.remove(self._execute)
            vars(wrapper).pop("close", None)

    def _add(self, event: Event) -> None:
        if self._recording:
            with self._lock:
                self.events.append(event)

    def _watch(self, wrapper: BaseDatabaseWrapper) -> None:
        with self._lock:
            if any(watched is wrapper for watched in self.connections):
                return
            self.connections.append(wrapper)
            wrapper.execute_wrappers.append(self._execute)
            close = wrapper.close

            def recorded_close() -> None:
                self._add(Event("close", threading.get_ident(), id(wrapper)))
                close()

            wrapper.close = recorded_close  # type: ignore[method-assign]

    def _started(self, sender: Any, **kwargs: Any) -> None:
        if self._recording:
            self._watch(connections["default"])
        self._add(Event("started", threading.get_ident()))

    def _finished(self, sender: Any, **kwargs: Any) -> None:
        closed = connections["default"].connection is None
        self._add(Event("finished", threading.get_ident(), connection_closed=closed))

    def _connection_created(self, sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
        if self._recording:
            self._watch(connection)
        self._add(Event("connect", threading.get_ident(), id(connection)))

    def _execute(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self._add(Event("query", threading.get_ident(), id(context["connection"]), sql=sql))
        return execute(sql, params, many, context)

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def used_connections(self) -> list[BaseDatabaseWrapper]:
        """The watched connection objects that ran at least one recorded query."""
        used = {event.connection for event in self.events if event.kind == "query"}
        return [wrapper for wrapper in self.connections if id(wrapper) in used]

    def released(self, wrapper: BaseDatabaseWrapper) -> bool:
        """Whether Django closed ``wrapper`` after its last query (see ``closes_for_real``)."""
        own = [(index, event.kind) for index, event in enumerate(self.events) if event.connection == id(wrapper)]
        last_query = max((index for index, kind in own if kind == "query"), default=-1)
        closed_after = any(kind == "close" and index > last_query for index, kind in own)
        if closes_for_real(wrapper):
            return closed_after and wrapper.connection is None
        return closed_after


@pytest.fixture
def recorder(transactional_db: None) -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.install()
    try:
        yield recorder
    finally:
        recorder.uninstall()


@pytest.fixture
def plain_client(app: FastAPI, transactional_db: None) -> Iterator[TestClient]:
    """The demo app with no connection sharing: production-like threads and connections."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def demo_company(transactional_db: None) -> Company:
    company = Company.objects.create(tenant_id=TENANT, name="Acme")
    CompanyCostcenter.objects.create(company=company, code="CC1", name="Main")
    CompanyDepartment.objects.create(company=company, name="Research")
    return company


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # "{company}" is replaced by the demo company's id
    status: int
    json: Any = None


GENERATED_CALLS = {
    "list": Call("GET", "/companies", 200),
    "create": Call("POST", "/companies", 201, {"name": "New"}),
    "get": Call("GET", "/companies/{company}", 200),
    "patch": Call("PATCH", "/companies/{company}", 200, {"name": "Renamed"}),
    "put": Call("PUT", "/companies/{company}", 200, {"name": "Renamed", "status": "inactive"}),
    "delete": Call("DELETE", "/companies/{company}", 204),
    "child-list": Call("GET", "/companies/{company}/departments", 200),
    "child-create": Call("POST", "/companies/{company}/departments", 201, {"name": "Lab"}),
    "missing-404": Call("GET", f"/companies/{uuid.uuid4()}", 404),
    "missing-child-404": Call("GET", f"/companies/{{company}}/departments/{uuid.uuid4()}", 404),
    "conflict-409": Call("POST", "/companies/{company}/costcenters", 409, {"code": "CC1", "name": "Dup"}),
}


def perform(client: TestClient, call: Call, company: Company, headers: dict[str, str] | None = None) -> int:
    url = call.path.replace("{company}", str(company.id))
    response = client.request(call.method, url, json=call.json, headers=auth() if headers is None else headers)
    assert response.status_code == call.status, response.text
    return response.status_code


def assert_one_signalled_call(recorder: Recorder) -> list[Event]:
    """One started/finished pair around everything, all in one worker thread; the queries."""
    kinds = recorder.kinds()
    assert kinds.count("started") == 1, kinds
    assert kinds.count("finished") == 1, kinds
    assert kinds[0] == "started" and kinds[-1] == "finished", kinds
    threads = {event.thread for event in recorder.events}
    assert len(threads) == 1, recorder.events
    assert threads != {threading.get_ident()}  # a worker thread, not the test's
    queries = [event for event in recorder.events if event.kind == "query"]
    assert queries, "the request ran no query at all"
    return queries


@pytest.mark.parametrize("name", list(GENERATED_CALLS))
def test_generated_endpoint_runs_its_queries_inside_one_signalled_call(
    plain_client: TestClient, recorder: Recorder, demo_company: Company, name: str
) -> None:
    with recorder.recording():
        perform(plain_client, GENERATED_CALLS[name], demo_company)
    assert_one_signalled_call(recorder)


@pytest.mark.parametrize("name", list(GENERATED_CALLS))
def test_generated_endpoint_connection_is_closed_at_request_finished(
    plain_client: TestClient, recorder: Recorder, demo_company: Company, name: str
) -> None:
    with recorder.recording():
        perform(plain_client, GENERATED_CALLS[name], demo_company)
    [used] = recorder.used_connections()
    assert recorder.released(used)
    [finished] = [event for event in recorder.events if event.kind == "finished"]
    assert finished.connection_closed is closes_for_real(used)


def test_request_finished_fires_when_the_endpoint_raises_404(
    plain_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    with recorder.recording():
        response = plain_client.get(f"/companies/{uuid.uuid4()}", headers=auth())
    assert response.json()["detail"]["code"] == "not_exist:company"
    assert recorder.kinds()[-1] == "finished"
    assert_one_signalled_call(recorder)
    assert all(recorder.released(used) for used in recorder.used_connections())


def test_scope_refusal_is_inside_the_signalled_call_too(
    plain_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    with recorder.recording():
        response = plain_client.get("/companies", headers=auth(scopes=["business.companies.create"]))
    assert response.status_code == 403
    signals = [kind for kind in recorder.kinds() if kind in ("started", "finished", "query")]
    assert signals == ["started", "finished"]  # refused before any query, signalled all the same


def test_missing_token_is_refused_before_any_signal_or_query(
    plain_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    with recorder.recording():
        response = plain_client.get("/companies")
    assert response.status_code == 401
    assert recorder.events == []


# -- a security dependency that reads the database -------------------------------------

permissions_token = JWTTokenDjangoPermissions(scheme_name="PermissionsToken")
permission_companies = DjangoRouterSchema(
    name="companies",
    model=Company,
    get=schemas.Company,
    delete=False,
    security=permissions_token,
    security_scopes=SecurityScopes(get=["business.companies.read.any"]),
)


def create_permissions_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(permission_companies.router)
    return app


PERMISSIONS_APP = create_permissions_app()


@pytest.fixture
def permissions_client(transactional_db: None) -> Iterator[TestClient]:
    with TestClient(PERMISSIONS_APP) as test_client:
        yield test_client


def user_token(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(tenant=TENANT, user=str(user.pk), scopes=[])}"}


def user_lookups(queries: list[Event]) -> list[Event]:
    return [event for event in queries if User._meta.db_table in event.sql]


def test_user_lookup_of_the_security_dependency_runs_inside_the_signalled_call(
    permissions_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    user = User.objects.create_user("reader")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="business", codename="companies.read.any"))
    with recorder.recording():
        response = permissions_client.get("/companies", headers=user_token(user))
    assert response.status_code == 200, response.text
    assert [item["name"] for item in response.json()["items"]] == ["Acme"]
    assert user_lookups(assert_one_signalled_call(recorder))
    assert all(recorder.released(used) for used in recorder.used_connections())


def test_user_without_permission_is_403_after_a_signalled_lookup(
    permissions_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    user = User.objects.create_user("stranger")
    with recorder.recording():
        response = permissions_client.get("/companies", headers=user_token(user))
    assert response.json()["detail"]["code"] == "required_scope_missing"
    assert user_lookups(assert_one_signalled_call(recorder))
    assert all(recorder.released(used) for used in recorder.used_connections())


# -- the counter-proof: the same ORM work without request_signalling -------------------


class ConnectionProbe:
    """Endpoints that count companies and keep the connection object they used."""

    def __init__(self) -> None:
        self.used: list[BaseDatabaseWrapper] = []
        self._lock = threading.Lock()

    def count_companies(self) -> dict[str, int]:
        with self._lock:
            if not any(wrapper is connections["default"] for wrapper in self.used):
                self.used.append(connections["default"])
        return {"companies": Company.objects.count()}

    def close_leftovers(self) -> None:
        """Close what an unsignalled endpoint left open (from this, the wrong, thread)."""
        for wrapper in self.used:
            if wrapper.connection is not None:
                wrapper.inc_thread_sharing()
                try:
                    wrapper.close()
                finally:
                    wrapper.dec_thread_sharing()


@pytest.fixture
def probe() -> ConnectionProbe:
    return ConnectionProbe()


@pytest.fixture
def probe_client(transactional_db: None, recorder: Recorder, probe: ConnectionProbe) -> Iterator[TestClient]:
    """The demo app plus two hand-written sync endpoints: one signalled, one not."""
    app = create_app()

    @app.get("/probe/unsignalled")
    def unsignalled() -> dict[str, int]:
        return probe.count_companies()

    @app.get("/probe/signalled")
    @request_signalling
    def signalled() -> dict[str, int]:
        return probe.count_companies()

    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        probe.close_leftovers()


def test_unsignalled_endpoint_leaves_its_connection_open(
    probe_client: TestClient, probe: ConnectionProbe, recorder: Recorder, demo_company: Company
) -> None:
    with recorder.recording():
        assert probe_client.get("/probe/unsignalled").json() == {"companies": 1}
    [used] = probe.used
    assert recorder.used_connections() == [used]
    assert not recorder.released(used)  # nobody asks Django to close it: CONN_MAX_AGE=0 is ignored
    assert used.connection is not None
    assert "started" not in recorder.kinds()


def test_signalled_hand_written_endpoint_closes_its_connection(
    probe_client: TestClient, probe: ConnectionProbe, recorder: Recorder, demo_company: Company
) -> None:
    with recorder.recording():
        assert probe_client.get("/probe/signalled").json() == {"companies": 1}
    [used] = probe.used
    assert recorder.used_connections() == [used]
    assert recorder.released(used)


def test_close_old_connections_is_what_closes_it(
    probe_client: TestClient, probe: ConnectionProbe, recorder: Recorder, demo_company: Company
) -> None:
    # The same signalled endpoint with Django's receiver unhooked keeps its connection:
    # the closing is Django's own hygiene, set off by the signals.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with recorder.recording():
            assert probe_client.get("/probe/signalled").json() == {"companies": 1}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    [used] = probe.used
    assert not recorder.released(used)
    assert used.connection is not None


# -- under concurrent load ------------------------------------------------------------

LOAD_CALLS = [
    Call("GET", "/companies", 200),
    Call("GET", "/companies/{company}", 200),
    Call("GET", "/companies/{company}/departments", 200),
    Call("GET", f"/companies/{uuid.uuid4()}", 404),
    Call("GET", f"/companies/{{company}}/departments/{uuid.uuid4()}", 404),
    Call("GET", "/companies?limit=0", 422),
]
ROUNDS = 8


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def other_backends() -> int:
    """PostgreSQL backends on the test database other than the test's own connection.

    A change feed's ``LISTEN`` connection (``djfapi.live``) left by an earlier test's
    event loop is not a request's connection, so it is not counted.
    """
    return len(other_backend_pids())


def other_backend_pids() -> set[int]:
    """The process ids of ``other_backends()``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query NOT LIKE 'LISTEN %%'"
        )
        return {row[0] for row in cursor.fetchall()}


def settled_backends(expected: int, timeout: float = 10.0) -> int:
    """The backend count once it is at most ``expected`` (a closed backend exits asynchronously)."""
    deadline = time.monotonic() + timeout
    count = other_backends()
    while count > expected and time.monotonic() < deadline:
        time.sleep(0.05)
        count = other_backends()
    return count


def steady_backends(timeout: float = 10.0) -> int:
    """The backend count once two reads 0.2 s apart agree.

    Backends of earlier tests (a change feed's ``LISTEN`` connection, say) exit
    asynchronously after their clients closed them; a baseline taken while one is still
    exiting would make the count after the load look lower than it should be.
    """
    deadline = time.monotonic() + timeout
    count = other_backends()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = other_backends()
        if again == count:
            break
        count = again
    return count


def run_concurrently(requests: list[Callable[[], int]], workers: int = 12) -> list[int]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda request: request(), requests))


def test_concurrent_load_with_errors_leaves_no_connection_open(
    plain_client: TestClient, recorder: Recorder, demo_company: Company
) -> None:
    baseline = steady_backends() if is_postgresql() else 0
    reader = auth()
    no_scope = auth(scopes=["business.companies.create"])
    requests = [lambda call=call: perform(plain_client, call, demo_company, reader) for call in LOAD_CALLS]
    requests.append(lambda: plain_client.get("/companies", headers=no_scope).status_code)
    requests.append(lambda: plain_client.get("/companies").status_code)
    with recorder.recording():
        statuses = run_concurrently(requests * ROUNDS)
    assert sorted(set(statuses)) == [200, 401, 403, 404, 422]
    kinds = recorder.kinds()
    assert kinds.count("started") == kinds.count("finished") == 6 * ROUNDS  # 200s, 404s and 403s
    used = recorder.used_connections()
    assert used, "no query ran, so nothing was shown"
    assert [wrapper for wrapper in used if not recorder.released(wrapper)] == []
    if is_postgresql() and not behind_pooler():  # behind PgBouncer the backends are its own
        assert settled_backends(baseline) <= baseline


@pytest.mark.direct_postgresql  # counts the connections it leaves open as PostgreSQL's backends
def test_concurrent_load_on_unsignalled_endpoint_leaves_connections_open(
    probe_client: TestClient, probe: ConnectionProbe, recorder: Recorder, demo_company: Company
) -> None:
    # By process id: an earlier test's backend still exiting would lower a count, not the new ones.
    baseline = other_backend_pids() if is_postgresql() else set()
    requests = [lambda: probe_client.get("/probe/unsignalled").status_code] * (6 * ROUNDS)
    with recorder.recording():
        assert set(run_concurrently(requests)) == {200}
    assert probe.used
    assert [wrapper for wrapper in probe.used if recorder.released(wrapper)] == []
    assert all(wrapper.connection is not None for wrapper in probe.used)
    if is_postgresql():
        assert len(other_backend_pids() - baseline) >= len(probe.used)
