"""The tutorial, replayed for real: every console block of ``docs/tutorial.md`` runs, in
page order, in an empty directory, and prints what the page shows.

``django-admin`` and ``python manage.py`` run as commands; after ``startapp`` the files
the page shows are written (they are this project's files, included by the page), so
the project is exactly what a reader who follows the page builds. ``uvicorn`` serves
on a free port, and ``curl`` becomes an httpx request to it. The database is the
tutorial's own SQLite file in that directory, whatever ``DATABASE_URL`` says.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.tutorial import (
    EXAMPLE,
    PAGE,
    ROOT,
    Step,
    blocks,
    console_steps,
    match_body,
    match_lines,
    snippet_paths,
    split,
)

DOCUMENTED_URL = "http://127.0.0.1:8000"
BIN = Path(sys.executable).parent
ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Z_][A-Z0-9_]*)=\$\((.*)\)$")
TIMEOUT = 30.0  # seconds for a command, the server's start, or a stream's frames


# -- the page and the project agree -------------------------------------------------------------


def test_every_python_block_includes_a_file_of_the_example() -> None:
    for path in snippet_paths():
        assert path.startswith("examples/shop/"), f"{path}: the tutorial shows the example's own files"
        assert (ROOT / path).is_file(), f"{path} does not exist"


def test_the_page_shows_every_source_file_of_the_project() -> None:
    sources = {
        str(path.relative_to(ROOT))
        for package in ("shopsite", "catalog")
        for path in (EXAMPLE / package).glob("*.py")
        if path.name != "__init__.py" and path.stat().st_size
    }
    assert sources - set(snippet_paths()) == set(), "files of the project the tutorial does not show"


def test_the_page_names_only_extras_that_exist() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = set(re.findall(r"`\[(\w+)\]`", PAGE.read_text()))
    assert named, "the install section names the extras"
    assert named <= set(extras), f"the page names {sorted(named - set(extras))}, which pyproject.toml lacks"


def test_every_console_block_is_replayed() -> None:
    commands = [step.command.split()[0] for step in console_steps()]
    assert set(commands) <= {"django-admin", "python", "export", "uvicorn", "curl"}
    assert not [b for b in blocks() if b.lang in ("shell", "sh", "shell-session")], "use console (replayed) or bash"


# -- the replay -------------------------------------------------------------------------------------


def script(name: str) -> str:
    """A console script of this environment (``uvicorn``, ``django-admin``)."""
    found = BIN / name if (BIN / name).is_file() else shutil.which(name)
    assert found, f"{name} is not installed next to {sys.executable} nor on PATH"
    return str(found)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lines:
    """The lines a pipe or a stream produces, collected by a thread, waited for with a deadline."""

    def __init__(self, source: Iterator[str]) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.ended = False
        threading.Thread(target=self._read, args=(source,), daemon=True).start()

    def _read(self, source: Iterator[str]) -> None:
        try:
            for line in source:
                with self.changed:
                    self.lines.append(line.rstrip("\r\n"))
                    self.changed.notify_all()
        except (httpx.HTTPError, ValueError, OSError):
            pass  # closed under us at the end of the test
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def wait(self, done: Callable[[list[str]], bool], what: str) -> list[str]:
        deadline = time.monotonic() + TIMEOUT
        with self.changed:
            while not done(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    pytest.fail(f"{what}; got:\n" + "\n".join(self.lines))
                self.changed.wait(left)
            return list(self.lines)


def frames(lines: list[str]) -> list[list[str]]:
    """SSE lines as frames (blank-line separated), keep-alive comments left out."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
            continue
        if current and not all(part.startswith(":") for part in current):
            found.append(current)
        current = []
    return found


class Replay:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.variables: dict[str, str] = {}
        self.environ = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")},
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.server: subprocess.Popen[str] | None = None
        self.server_output: Lines | None = None
        self.http = httpx.Client(timeout=TIMEOUT)
        self.streams: list[tuple[Step, Lines, httpx.Response]] = []

    def close(self) -> None:
        for _, _, response in self.streams:
            # Hang up at once: uvicorn's shutdown waits for open streams to end, and a
            # reader thread blocked in recv() would keep this one open.
            with contextlib.suppress(KeyError, OSError):
                response.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
            response.close()
        self.http.close()
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()

    def run(self, step: Step) -> None:
        assignment = ASSIGNMENT.match(step.command)
        if assignment:
            name, inner = assignment.groups()
            assert not step.output, f"{step.where}: an assignment prints nothing"
            self.variables[name] = self.command(split(inner, self.variables, step.where), step.where).strip()
            return
        words = split(step.command, self.variables, step.where)
        if words[0] == "uvicorn":
            self.serve(words, step)
        elif words[0] == "curl":
            self.curl(words[1:], step)
        else:
            printed = self.command(words, step.where)
            match_lines(step.output, printed.splitlines(), step.where)
            if words[:3] == ["python", "manage.py", "startapp"]:
                self.write_the_files_the_page_shows()

    def command(self, words: list[str], where: str) -> str:
        program = {"python": sys.executable, "django-admin": script("django-admin")}.get(words[0])
        assert program is not None, f"{where}: {words[0]!r} is not replayed"
        result = subprocess.run(
            [program, *words[1:]],
            cwd=self.directory,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, f"{where}: {' '.join(words)} failed:\n{result.stdout}{result.stderr}"
        return result.stdout

    def write_the_files_the_page_shows(self) -> None:
        for path in snippet_paths():
            target = self.directory / Path(path).relative_to("examples/shop")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / path, target)

    def serve(self, words: list[str], step: Step) -> None:
        assert self.server is None, f"{step.where}: the server runs already"
        self.server = subprocess.Popen(
            [script("uvicorn"), *words[1:], "--port", str(self.port)],
            cwd=self.directory,
            env=self.environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.server.stdout is not None
        self.server_output = Lines(iter(self.server.stdout))
        lines = self.server_output.wait(
            lambda lines: any("Uvicorn running on" in line for line in lines), f"{step.where}: uvicorn did not start"
        )
        shown = [line.replace(f"127.0.0.1:{self.port}", "127.0.0.1:8000") for line in lines[: len(step.output)]]
        match_lines(step.output, shown, step.where)

    def curl(self, args: list[str], step: Step) -> None:
        method, url, body, stream, discard, write_out = None, None, None, False, False, None
        headers: dict[str, str] = {}
        words = iter(args)
        for word in words:
            if word in ("-s", "--silent"):
                continue
            if word in ("-N", "--no-buffer"):
                stream = True
            elif word in ("-X", "--request"):
                method = next(words)
            elif word in ("-H", "--header"):
                name, _, value = next(words).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-d", "--data"):
                body = next(words)
            elif word in ("-o", "--output"):
                assert next(words) == "/dev/null", f"{step.where}: -o /dev/null only"
                discard = True
            elif word in ("-w", "--write-out"):
                write_out = next(words)
            elif word.startswith(DOCUMENTED_URL):
                url = word.replace(DOCUMENTED_URL, f"http://127.0.0.1:{self.port}")
            else:
                pytest.fail(f"{step.where}: curl {word!r} is not replayed (-s -N -X -H -d -o -w, {DOCUMENTED_URL})")
        assert url is not None, f"{step.where}: curl without a URL on {DOCUMENTED_URL}"
        if stream:
            self.subscribe(url, headers, step)
            return
        response = self.http.request(
            method or ("POST" if body is not None else "GET"),
            url,
            headers=headers,
            content=body.encode() if body is not None else None,
        )
        assert response.status_code < 500, f"{step.where}: {response.status_code} {response.text}"
        if write_out is None:
            match_body(step.output, response.text, step.where)
            return
        assert write_out == "%{http_code}\\n", f"{step.where}: -w '%{{http_code}}\\n' only"
        printed = ("" if discard else response.text) + f"{response.status_code}\n"
        match_lines(step.output, printed.splitlines(), step.where)

    def subscribe(self, url: str, headers: dict[str, str], step: Step) -> None:
        """Open the stream, wait for its first frame; its output is compared at the end."""
        response = self.http.send(self.http.build_request("GET", url, headers=headers), stream=True)
        assert response.status_code == 200, f"{step.where}: {response.status_code} {response.read()!r}"
        lines = Lines(response.iter_lines())
        lines.wait(lambda lines: len(frames([*lines, ""])) >= 1, f"{step.where}: the stream sent nothing")
        self.streams.append((step, lines, response))

    def check_streams(self) -> None:
        for step, lines, _ in self.streams:
            documented = frames([*step.output, ""])
            count = len(documented)
            seen = lines.wait(
                lambda lines, count=count: len(frames(lines)) >= count,
                f"{step.where}: the stream did not send the {count} frames the page shows",
            )
            actual = frames(seen)[: len(documented)]
            match_lines(
                [line for frame in documented for line in [*frame, ""]],
                [line for frame in actual for line in [*frame, ""]],
                step.where,
            )


def test_the_tutorial_runs_as_shown(tmp_path: Path) -> None:
    directory = tmp_path / "shop"
    directory.mkdir()
    replay = Replay(directory)
    try:
        for step in console_steps():
            replay.run(step)
        replay.check_streams()
    finally:
        replay.close()
    assert (directory / "db.sqlite3").is_file()  # the tutorial's database, not the tests'
