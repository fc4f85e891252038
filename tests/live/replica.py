"""A private PostgreSQL primary and its streaming replica, made by the test set-up.

``ReplicaPair.start(directory)`` runs ``initdb`` for a primary, ``pg_basebackup -R``
for a hot standby that streams from it, and starts both. They listen on Unix sockets
in ``directory`` only (no TCP port, so nothing on the machine can collide with them)
and are stopped and deleted by ``stop()``. The machine's own PostgreSQL (whose
``pg_hba.conf`` allows no replication) is not touched. ``pause()``/``resume()`` stop
and restart WAL replay on the replica: a replica lag as long as the test wants.

PostgreSQL refuses to run as root; as root, the clusters run as ``postgres``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

PORT = 5442  # the socket file's name (.s.PGSQL.5442) in a private directory: no TCP port is opened
READY_TIMEOUT = 60.0


def _bindir() -> Path:
    output = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
    return Path(output.strip())


def _as_cluster_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], **options: Any) -> None:
    result = subprocess.run(_as_cluster_owner(command), capture_output=True, text=True, timeout=120, **options)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


@dataclass
class Cluster:
    data: Path
    sockets: Path
    log: Path

    def url(self, database: str) -> str:
        """A ``DATABASE_URL`` for ``database`` on this cluster (the socket directory as the host)."""
        return f"postgres://postgres@{quote(str(self.sockets), safe='')}:{PORT}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(host=str(self.sockets), port=PORT, user="postgres", dbname=database, autocommit=True)


class ReplicaPair:
    """A primary and a streaming replica of it (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bindir = _bindir()
        self.primary = Cluster(root / "primary", root / "primary-sockets", root / "primary.log")
        self.replica = Cluster(root / "replica", root / "replica-sockets", root / "replica.log")

    @classmethod
    def start(cls) -> ReplicaPair:
        root = Path(tempfile.mkdtemp(prefix="djfapi-replica-", dir="/tmp"))
        pair = cls(root)
        try:
            pair._start()
        except BaseException:
            pair.stop()
            raise
        return pair

    def _start(self) -> None:
        for cluster in (self.primary, self.replica):
            cluster.sockets.mkdir()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.root, self.primary.sockets, self.replica.sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        bin_ = self.bindir
        _run([str(bin_ / "initdb"), "-D", str(self.primary.data), "-U", "postgres", "--auth=trust", "--no-sync"])
        with (self.primary.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = ''\nunix_socket_directories = '{self.primary.sockets}'\nport = {PORT}\n"
                "wal_level = replica\nmax_wal_senders = 4\nfsync = off\nshared_buffers = 16MB\n"
            )
        self._pg_ctl(self.primary, "start")
        _run(
            [
                str(bin_ / "pg_basebackup"),
                *("-h", str(self.primary.sockets), "-p", str(PORT), "-U", "postgres"),
                *("-D", str(self.replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
            ]
        )
        with (self.replica.data / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{self.replica.sockets}'\nhot_standby = on\n")
        self._pg_ctl(self.replica, "start")
        with self.replica.connect() as replica:
            assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    def _pg_ctl(self, cluster: Cluster, action: str, *extra: str) -> None:
        _run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-l",
                str(cluster.log),
                "-w",
                "-t",
                "60",
                *extra,
                action,
            ]
        )

    def stop(self) -> None:
        for cluster in (self.replica, self.primary):
            if (cluster.data / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError):  # already gone; the directory goes anyway
                    self._pg_ctl(cluster, "stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name: str) -> None:
        with self.primary.connect() as primary:
            primary.execute(f'CREATE DATABASE "{name}"')

    def caught_up(self, timeout: float = READY_TIMEOUT) -> float:
        """Wait until the replica has replayed everything the primary wrote so far; return the seconds it took."""
        started = time.monotonic()
        with self.primary.connect() as primary, self.replica.connect() as replica:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert target is not None
            while True:
                row = replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [str(target[0])]).fetchone()
                if row is not None and row[0]:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"the replica did not catch up within {timeout} s")
                time.sleep(0.005)

    def pause(self) -> None:
        """Stop replaying WAL on the replica: from now on it lags behind the primary."""
        with self.replica.connect() as replica:
            replica.execute("SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        with self.replica.connect() as replica:
            replica.execute("SELECT pg_wal_replay_resume()")
