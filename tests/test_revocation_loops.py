"""Following revocations on event loops that live for one request (djfapi.auth.revocation).

Starlette's ``TestClient`` used outside ``with`` runs each request in an event loop of
its own and runs no lifespan. Each such loop used to start a follower that opened a
``LISTEN`` connection and read the revoked ids again (two more PostgreSQL sessions per
request), only to be cancelled as the loop closed. A follower started by a request now
waits before it listens, and a request on a loop nobody follows on yet reads the set
itself once it is older than ``AUTH_REVOCATION_POLL_INTERVAL`` — so the bound holds there
too. The app's own loop (its start-up ran) listens at once, as before.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Annotated, Any

import jwt
import pytest
from django.conf import settings as django_settings
from django.db import connection
from fastapi import FastAPI, Security
from fastapi.testclient import TestClient

from djfapi.auth import revocation
from djfapi.auth.models import RevokedToken
from djfapi.errors import install_error_handlers
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from djfapi.security.tokens import mint_token
from tests.helpers import TENANT, auth, own_postgresql_connection

READ_ANY = ["business.companies.read.any"]


class ListenerSampler:
    """Reads ``pg_stat_activity`` every 2 ms on a connection of its own: how many revocation
    ``LISTEN`` connections the app has open, now and at most."""

    def __init__(self, application_name: str) -> None:
        self.application_name = application_name
        self.most = 0
        self.now = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with own_postgresql_connection(autocommit=True) as sampler:
            while not self._stop.is_set():
                row = sampler.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
                    [self.application_name, connection.settings_dict["NAME"]],
                ).fetchone()
                self.now = int(row[0]) if row else 0
                self.most = max(self.most, self.now)
                time.sleep(0.002)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.now == count:
                return True
            time.sleep(0.01)
        return False

    def __enter__(self) -> ListenerSampler:
        self._thread.start()
        time.sleep(0.05)  # sampling before the first request
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.mark.postgresql
@pytest.mark.direct_postgresql  # counts the app's own backends, which a pooler would replace
def test_a_loop_per_request_opens_no_listen_connection_and_the_apps_own_loop_opens_one(
    app: FastAPI, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation, "FOLLOW", True)  # as a deployed process does (this one does not)
    name = revocation._listener_name("default")
    headers = auth(scopes=READ_ANY)
    reloads = revocation.cache.reloads
    with ListenerSampler(name) as outside_with:
        client = TestClient(app)  # no `with`: an event loop per request, and no lifespan
        for _ in range(10):
            assert client.get("/companies", headers=headers).status_code == 200
    assert outside_with.most == 0
    assert revocation.cache.reloads == reloads  # and no reload of the revoked ids per request

    # The refused case: the app's own loop (its start-up ran) listens, on one connection.
    with TestClient(app) as client, ListenerSampler(name) as inside_with:
        assert inside_with.wait_for(1), "the app's loop opened no LISTEN connection"
        for _ in range(10):
            assert client.get("/companies", headers=headers).status_code == 200
    assert inside_with.most == 1


def test_a_loop_nobody_follows_on_reads_the_revoked_ids_again_once_they_are_older_than_the_interval(
    app: FastAPI, transactional_db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation, "FOLLOW", True)
    settings.DJFAPI = {**django_settings.DJFAPI, "AUTH_REVOCATION_POLL_INTERVAL": 1.0}
    victim = mint_token(tenant=TENANT, user="u1", scopes=READ_ANY)
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    headers = {"Authorization": f"Bearer {victim}"}
    client = TestClient(app)  # a loop per request: no follower gets to listen on them
    revocation.cache.replace({}, {}, time.monotonic())
    try:
        assert client.get("/companies", headers=headers).status_code == 200
        now = datetime.datetime.now(datetime.UTC)
        # Revoked as another process would: the row, and no message this process hears.
        RevokedToken.objects.create(jti=jti, expires_at=now + datetime.timedelta(hours=1), revoked_at=now)

        # Within the interval the set read before the revocation still answers: not refused yet.
        assert client.get("/companies", headers=headers).status_code == 200
        time.sleep(1.1)
        refused = client.get("/companies", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["detail"]["code"] == "token_revoked"
    finally:
        revocation.cache.replace({}, {}, time.monotonic())


def test_a_process_that_follows_no_other_does_not_read_the_revoked_ids_again(
    app: FastAPI, transactional_db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``FOLLOW = False`` (this suite's own setting, for tests that count queries): revocations made
    in this process still apply at once, others' are never read, however old the set."""
    monkeypatch.setattr(revocation, "FOLLOW", False)
    settings.DJFAPI = {**django_settings.DJFAPI, "AUTH_REVOCATION_POLL_INTERVAL": 0.2}
    victim = mint_token(tenant=TENANT, user="u1", scopes=READ_ANY)
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    headers = {"Authorization": f"Bearer {victim}"}
    client = TestClient(app)
    revocation.cache.replace({}, {}, time.monotonic())
    reloads = revocation.cache.reloads
    try:
        now = datetime.datetime.now(datetime.UTC)
        RevokedToken.objects.create(jti=jti, expires_at=now + datetime.timedelta(hours=1), revoked_at=now)
        time.sleep(0.3)
        assert client.get("/companies", headers=headers).status_code == 200
        assert revocation.cache.reloads == reloads
    finally:
        revocation.cache.replace({}, {}, time.monotonic())


def test_a_stale_set_is_kept_when_the_database_does_not_answer_and_a_set_never_read_is_a_503(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No ``db`` fixture: pytest-django refuses this test's database connections, so reading the
    revoked ids fails as it does when the database is down."""
    monkeypatch.setattr(revocation, "FOLLOW", True)
    settings.DJFAPI = {**django_settings.DJFAPI, "AUTH_REVOCATION_POLL_INTERVAL": 0.1}
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/me")
    def me(access: Annotated[Access, Security(JWTToken(), scopes=READ_ANY)]) -> str:
        return access.user_id

    client = TestClient(app)  # a loop per request, nobody following on it
    headers = auth(scopes=READ_ANY)
    revocation.cache.replace({}, {}, time.monotonic())
    time.sleep(0.15)  # older than the interval
    try:
        with caplog.at_level(logging.WARNING, logger="djfapi.auth"):
            answer = client.get("/me", headers=headers)
        assert answer.status_code == 200  # the set it has, as the follower keeps it
        assert "could not reload the revoked tokens" in caplog.text

        revocation.cache.clear()  # never read: nothing to check a token against
        refused = client.get("/me", headers=headers)
        assert refused.status_code == 503
        assert refused.json()["detail"]["code"] == "revocations_unavailable"
    finally:
        revocation.cache.replace({}, {}, time.monotonic())
