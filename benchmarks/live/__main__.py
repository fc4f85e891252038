"""``python -m benchmarks.live [scale] [options]``: the fan-out benchmark, or ``scale``."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["scale"]:
        from benchmarks.live import scale

        return scale.main(arguments[1:])
    if arguments[:1] == ["fanout"]:
        arguments = arguments[1:]
    from benchmarks.live import fanout

    return fanout.main(arguments)


if __name__ == "__main__":
    sys.exit(main())
