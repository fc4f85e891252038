"""End open streams when the process is asked to stop (SIGTERM, Ctrl+C).

An ASGI server stops by waiting for its open responses, and a change-feed stream never
ends by itself: uvicorn logs "Waiting for connections to close" and waits as long as one
subscriber stays — a rolling restart hangs on it. ASGI tells the app nothing before that
(the lifespan shutdown comes after the connections closed), so djfapi puts itself in
front of the server's own SIGTERM and SIGINT handlers: on the signal, every hub tells its
streams to end with a ``close`` event (reason ``server_shutdown``; a WebSocket closes with
1012, "service restart"), then the server's handler runs as it would have. Subscribers
reconnect with their last id — to another process, or after the restart — and lose
nothing.

Handlers can only be installed from the main thread, where servers run their event
loop; elsewhere (a test client's thread) nothing is installed.
"""

from __future__ import annotations

import functools
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_callbacks: list[weakref.WeakMethod[Callable[[], None]]] = []
_installed = False
_lock = threading.Lock()


def on_exit_signal(callback: Callable[[], None]) -> None:
    """Call the bound method ``callback`` on SIGINT or SIGTERM, before the handler already there.

    It runs inside the signal handler (in the main thread, between two bytecodes of
    whatever runs there), so it must only schedule work, not do it.
    """
    with _lock:
        _callbacks.append(weakref.WeakMethod(callback))
        _install()


def _install() -> None:
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in EXIT_SIGNALS:
        signal.signal(signum, functools.partial(_handle, signal.getsignal(signum)))
    _installed = True


def _handle(previous: Any, signum: int, frame: FrameType | None) -> None:
    for reference in list(_callbacks):
        callback = reference()
        if callback is not None:
            callback()
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
