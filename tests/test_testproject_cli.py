"""The demo's command line, run as real subprocesses (``python -m testproject ...``).

Running the real processes (rather than calling ``main()``) is the point: it proves
that ``python -m testproject`` needs no set-up beyond the repository on ``PYTHONPATH``,
that ``token`` keeps stdout clean for ``TOKEN=$(...)``, and that ``serve`` really
migrates, seeds, prints a working token and answers HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import jwt
import pytest
from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SCOPES = ["business.companies.read.any", "business.companies.update.own"]
STARTUP_TIMEOUT = 30.0


def _child_env(**overrides: str) -> dict[str, str]:
    """The environment of a CLI process: the repo importable, the demo settings chosen.

    pytest-django exports ``DJANGO_SETTINGS_MODULE=tests.settings``; the CLI is meant to
    run with its own default, so that is set explicitly. ``DJFAPI_JWT_SECRET`` is
    inherited, so the child signs with the key this process verifies with.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def _run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testproject", *args],
        cwd=cwd,
        env=env if env is not None else _child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _mint(*extra: str, cwd: Path) -> str:
    """Run ``token`` for tenant t1 / user u1 with ``SCOPES``; return the token."""
    scope_args = [arg for scope in SCOPES for arg in ("--scope", scope)]
    result = _run_cli("token", "--tenant", "t1", "--user", "u1", *scope_args, *extra, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n"), result.stdout
    token = result.stdout.strip()
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", token), token
    return token


def _decode(token: str, **options: bool) -> dict:
    return jwt.decode(
        token,
        settings.DJFAPI["JWT_KEY"],
        algorithms=settings.DJFAPI["JWT_ALGORITHMS"],
        options={"verify_aud": False, **options},
    )


def test_token_prints_one_signed_line_with_the_expected_claims(tmp_path: Path) -> None:
    before = int(time.time())
    claims = _decode(_mint(cwd=tmp_path))
    after = int(time.time())

    assert claims["sub"] == "u1"
    assert claims["ten"] == "t1"
    assert claims["aud"] == SCOPES
    assert claims["crt"] is False
    assert claims["rls"] == []
    assert claims["iss"] == settings.DJFAPI["JWT_ISSUER"] == "testproject"
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    assert before <= claims["iat"] <= after
    assert before <= claims["nbf"] <= after
    assert before + 3600 <= claims["exp"] <= after + 3600


def test_token_options_critical_and_issuer(tmp_path: Path) -> None:
    claims = _decode(_mint("--critical", "--issuer", "someone-else", cwd=tmp_path), verify_iss=False)
    assert claims["crt"] is True
    assert claims["iss"] == "someone-else"
    with pytest.raises(jwt.InvalidIssuerError):
        jwt.decode(
            _mint("--issuer", "someone-else", cwd=tmp_path),
            settings.DJFAPI["JWT_KEY"],
            algorithms=settings.DJFAPI["JWT_ALGORITHMS"],
            issuer=settings.DJFAPI["JWT_ISSUER"],
            options={"verify_aud": False},
        )


def test_token_negative_expires_gives_an_expired_token(tmp_path: Path) -> None:
    token = _mint("--expires", "-10", cwd=tmp_path)
    with pytest.raises(jwt.ExpiredSignatureError):
        _decode(token)
    claims = _decode(token, verify_exp=False)
    assert claims["exp"] <= int(time.time()) - 10


def test_token_not_before_is_in_the_future(tmp_path: Path) -> None:
    before = int(time.time())
    token = _mint("--not-before", "300", cwd=tmp_path)
    after = int(time.time())
    with pytest.raises(jwt.ImmatureSignatureError):
        _decode(token)
    claims = _decode(token, verify_nbf=False)
    assert before + 300 <= claims["nbf"] <= after + 300


def test_token_never_touches_the_database(tmp_path: Path) -> None:
    """Even with an unreachable database configured, ``token`` works and creates nothing."""
    env = _child_env(DATABASE_URL="postgres://nobody@127.0.0.1:9/nowhere")
    result = _run_cli("token", "--tenant", "t", "--user", "u", "--scope", "a.b.c", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert _decode(result.stdout.strip())["aud"] == ["a.b.c"]
    assert list(tmp_path.iterdir()) == []


def test_token_without_tenant_fails_on_stderr(tmp_path: Path) -> None:
    result = _run_cli("token", "--user", "u1", "--scope", SCOPES[0], cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "--tenant" in result.stderr


def test_token_without_scope_fails_on_stderr(tmp_path: Path) -> None:
    result = _run_cli("token", "--tenant", "t1", "--user", "u1", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "--scope" in result.stderr


class ServedDemo(NamedTuple):
    """A running ``python -m testproject`` and where to find its output."""

    base_url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    stdout_path: Path
    stderr_path: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServedDemo]:
    """Start ``python -m testproject --port N`` in an empty directory; stop it afterwards.

    Output goes to files rather than pipes so a chatty server can never block on a full
    pipe. Parametrize it indirectly with a dict to add environment variables.
    """
    port = _free_port()
    env = _child_env(**getattr(request, "param", {}))
    env.pop("DATABASE_URL", None)  # the embedded SQLite database in the cwd is under test
    env.pop("DJFAPI_JWT_SECRET", None)  # the development key, to see the warning
    stdout_path, stderr_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    workdir = tmp_path / "work"
    workdir.mkdir()
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "testproject", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"the demo exited with {process.returncode}:\n{stdout_path.read_text()}\n{stderr_path.read_text()}"
                )
            try:
                httpx.get(f"{base_url}/docs", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the demo did not answer within {STARTUP_TIMEOUT} s:\n{stderr_path.read_text()}")
                time.sleep(0.2)
        yield ServedDemo(base_url, process, workdir, stdout_path, stderr_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_serve_migrates_seeds_and_answers_with_what_it_printed(served_demo: ServedDemo) -> None:
    base_url, process, workdir, stdout_path, stderr_path = served_demo
    assert (workdir / "testproject.sqlite3").is_file()

    stdout = stdout_path.read_text()
    assert base_url in stdout
    assert f"{base_url}/docs" in stdout
    assert f"{base_url}/admin/" in stdout
    assert "password 'admin'" in stdout
    assert "sqlite" in stdout and str(workdir / "testproject.sqlite3") in stdout
    assert f'curl -H "Authorization: Bearer $TOKEN" {base_url}/companies' in stdout
    match = re.search(r"^export TOKEN=(\S+)$", stdout, re.MULTILINE)
    assert match, stdout
    token = match.group(1)
    assert "development JWT key" in stderr_path.read_text()
    assert "development JWT key" not in stdout

    docs = httpx.get(f"{base_url}/docs", timeout=10)
    assert docs.status_code == 200

    admin = httpx.get(f"{base_url}/admin/", timeout=10, follow_redirects=False)
    assert admin.status_code == 302
    assert admin.headers["location"].startswith("/admin/login/")

    companies = httpx.get(f"{base_url}/companies", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert companies.status_code == 200, companies.text
    body = companies.json()
    assert isinstance(body, dict) and isinstance(body["items"], list)
    names = {item["name"] for item in body["items"]}
    assert names == {"Acme Corp", "Globex", "Initech"}  # tenant "demo" only

    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal on exit.
    process.terminate()
    assert process.wait(timeout=15) in {0, -signal.SIGTERM}
    assert "Finished server process" in stderr_path.read_text()


@pytest.mark.parametrize("served_demo", [{"DJFAPI_LOG_FORMAT": "json"}], indirect=True)
def test_json_logs_carry_one_line_per_request_without_secrets(served_demo: ServedDemo) -> None:
    token = re.search(r"^export TOKEN=(\S+)$", served_demo.stdout_path.read_text(), re.MULTILINE)
    assert token, served_demo.stdout_path.read_text()
    headers = {"Authorization": f"Bearer {token.group(1)}", "X-Request-ID": "trace-me-0001"}

    response = httpx.get(f"{served_demo.base_url}/companies?name__icontains=secret-filter", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-me-0001"

    deadline = time.monotonic() + 10  # the line is written once the response has gone out
    ours: list[dict] = []
    while not ours and time.monotonic() < deadline:
        lines = served_demo.stderr_path.read_text().splitlines()
        access = [json.loads(line) for line in lines if line.startswith("{") and '"djfapi.access"' in line]
        ours = [line for line in access if line.get("request_id") == "trace-me-0001"]
        time.sleep(0.1)
    (entry,) = ours
    assert entry["logger"] == "djfapi.access"
    assert entry["level"] == "INFO"
    assert (entry["method"], entry["route"], entry["status"]) == ("GET", "/companies", 200)
    assert (entry["tenant_id"], entry["user_id"]) == ("demo", "demo-user")
    assert entry["duration_ms"] >= 0
    log = served_demo.stderr_path.read_text()
    assert token.group(1) not in log
    assert "secret-filter" not in log  # no query strings


def test_the_websocket_feed_works_under_uvicorn_after_the_documented_install(served_demo: ServedDemo) -> None:
    """uvicorn serves WebSockets only with a WebSocket library; djfapi's install brings one."""
    from websockets.sync.client import connect

    stdout = served_demo.stdout_path.read_text()
    token = re.search(r"^export TOKEN=(\S+)$", stdout, re.MULTILINE)
    assert token, stdout
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    feed_url = served_demo.base_url.replace("http://", "ws://") + f"/companies/subscribe?access_token={token.group(1)}"

    with connect(feed_url, open_timeout=10) as feed:
        ready = json.loads(feed.recv(timeout=10))
        created = httpx.post(f"{served_demo.base_url}/companies", json={"name": "Live"}, headers=headers, timeout=10)
        event = json.loads(feed.recv(timeout=10))

    assert ready["event"] == "ready"
    assert created.status_code == 201, created.text
    assert (event["event"], event["object_id"], event["data"]["name"]) == ("INSERT", created.json()["id"], "Live")
    assert "No supported WebSocket library" not in served_demo.stderr_path.read_text()


def test_the_asgi_entry_point_loads_in_a_shell_that_names_no_settings(tmp_path: Path) -> None:
    """``uvicorn testproject.asgi:app`` (or Granian) as documented, DJANGO_SETTINGS_MODULE unset."""
    env = _child_env()
    env.pop("DJANGO_SETTINGS_MODULE")
    env.pop("SENTRY_DSN", None)
    loaded = subprocess.run(
        [sys.executable, "-c", "import testproject.asgi as entry; print(type(entry.app).__name__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "FastAPI"


def test_the_served_demo_shows_its_public_directory_without_a_token(served_demo: ServedDemo) -> None:
    """GET /directory needs no token and lists the verified companies of every tenant; writing is refused."""
    listed = httpx.get(f"{served_demo.base_url}/directory", timeout=10)
    assert listed.status_code == 200, listed.text
    assert sorted(item["name"] for item in listed.json()["items"]) == ["Acme Corp", "Umbrella"]
    assert httpx.post(f"{served_demo.base_url}/directory", json={"name": "Mine"}, timeout=10).status_code == 405
