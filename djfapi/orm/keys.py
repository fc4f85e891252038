"""Row keys as dictionary keys that hash cheaply.

Reading a page groups nested rows by their parent's key and looks each parent's list up
again: with UUID keys, a page of 50 companies and two nested lists hashed about 350 UUIDs,
and ``uuid.UUID.__hash__`` is Python code (about 6% of the endpoint's CPU in a profile).
A UUID's ``int`` holds the same identity and hashes in C.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any


def hashable_key(value: Any) -> Any:
    """``value`` as a dictionary key: a UUID by its ``int``, anything else as it is.

    Only compare keys of one column with each other: a UUID's ``int`` equals the integer
    of the same value.
    """
    return value.int if type(value) is uuid.UUID else value


def hashable_keys(values: Sequence[Any]) -> list[Any]:
    """``hashable_key`` of each value (the values themselves, copied, unless the first is a UUID)."""
    if values and type(values[0]) is uuid.UUID:
        return [value.int if type(value) is uuid.UUID else value for value in values]  # inlined: called per row
    return list(values)
