"""django-bolt's virtualenv, made on demand, and the command line of its server.

The virtualenv lives in the work directory (``bolt-venv``) and is made with the first
Python ≥ 3.12 found: ``BENCH_BOLT_PYTHON``, then ``python3.12`` … ``python3.14`` on the
``PATH``, then pyenv's versions (the oldest first: the closest to the suite's own).
It gets django-bolt at ``BOLT_VERSION``, the same Django as the suite's own
environment (so that the ORM under test is the same), PostgreSQL's driver,
``dj-database-url`` (for ``benchmarks.settings``) and this repository, editable
(``pip install -e``), so that the demo's models and the suite import. A stamp file
records what was installed; a different set installs again.

The server is bolt's ``runbolt`` management command, run in the repository with the
suite's settings: one process, bolt's default worker threads, no admin, no checks.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.config import REPO_ROOT, ensure_work_dir

BOLT_VERSION = "0.13.0"
MINIMUM_PYTHON = (3, 12)


def venv_dir() -> Path:
    return ensure_work_dir() / "bolt-venv"


def python() -> Path:
    return venv_dir() / "bin" / "python"


def _requirements() -> list[str]:
    return [
        f"django-bolt=={BOLT_VERSION}",
        f"Django=={metadata.version('django')}",
        "psycopg[binary,pool]>=3.1",
        "dj-database-url>=2.1",
    ]


def _version_of(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return int(out[0]), int(out[1])


def find_python() -> str:
    """A Python ≥ 3.12 to make the virtualenv with."""
    candidates = [os.environ.get("BENCH_BOLT_PYTHON", "")]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (12, 13, 14)]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/3.1[2-9].*/bin/python3"))
    for candidate in filter(None, candidates):
        version = _version_of(candidate)
        if version is not None and version >= MINIMUM_PYTHON:
            return candidate
    raise RuntimeError(
        "django-bolt needs Python >= 3.12 and none was found: set BENCH_BOLT_PYTHON to one, "
        "or leave bolt out (--contenders baseline,djfapi,drf,ninja)"
    )


def ensure() -> Path:
    """The virtualenv's Python, after making or updating the virtualenv if needed."""
    stamp = venv_dir() / "bench-stamp.json"
    wanted = {"requirements": _requirements(), "repository": str(REPO_ROOT)}
    if python().exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return python()
    if not python().exists():
        base = find_python()
        print(f"making django-bolt's virtualenv in {venv_dir()} with {base}", flush=True)
        subprocess.run([base, "-m", "venv", str(venv_dir())], check=True)
    print(f"installing {', '.join(wanted['requirements'])} and {REPO_ROOT} (editable)", flush=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *wanted["requirements"], "-e", str(REPO_ROOT)], check=True, cwd=REPO_ROOT)
    stamp.write_text(json.dumps(wanted))
    return python()


def command(host: str, port: int) -> list[str]:
    """The server's command line (run it in the repository with ``BENCH_BOLT=1`` in the environment)."""
    return [
        str(ensure()),
        "-m",
        "django",
        "runbolt",
        "--host",
        host,
        "--port",
        str(port),
        "--processes",
        "1",
        "--no-admin",
        "--skip-checks",
    ]


def versions() -> str:
    """``django-bolt X on Python Y`` for the environment line, from the virtualenv."""
    if not python().exists():
        return "django-bolt not installed"
    script = (
        "import platform; from importlib import metadata as m; "
        "print(m.version('django-bolt'), platform.python_version(), m.version('msgspec'))"
    )
    try:
        bolt, version, msgspec = subprocess.run(
            [str(python()), "-c", script], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
    except (OSError, subprocess.SubprocessError, ValueError):
        return "django-bolt (version unknown)"
    return f"django-bolt {bolt} (runbolt, 1 process), msgspec {msgspec}, Python {version}"


if __name__ == "__main__":
    print(ensure(), file=sys.stderr)
