"""The printed tables: throughput per contender, workload and concurrency, and memory.

Every ratio is to the baseline's requests/s for the same workload and concurrency in
the same run, so machines and runs never mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.checks import Inspection


@dataclass
class Cell:
    """One timed cell, or why it was not timed."""

    contender: str
    workload: str
    concurrency: int
    result: dict[str, Any] | None = None
    skipped: str | None = None

    @property
    def rps(self) -> float | None:
        return self.result["rps"] if self.result else None


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right, strict=True))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def throughput_table(cells: Sequence[Cell], inspections: dict[str, Inspection], titles: dict[str, str]) -> str:
    baseline = {(c.workload, c.concurrency): c.rps for c in cells if c.contender == "baseline"}
    rows = []
    previous = None
    for cell in cells:
        group = (cell.workload, cell.concurrency)
        label = f"{cell.workload} {titles.get(cell.workload, '')}" if group != previous else ""
        conc = str(cell.concurrency) if group != previous else ""
        previous = group
        inspection = inspections.get(cell.contender)
        queries = inspection.queries(cell.workload) if inspection else "-"
        if cell.result is None:
            rows.append([label, conc, cell.contender, "not timed", "", "", "", queries, "", "", "", cell.skipped or ""])
            continue
        base = baseline.get(group)
        ratio = f"{cell.rps / base:.2f}" if base and cell.rps is not None else "-"
        result = cell.result
        rows.append(
            [
                label,
                conc,
                cell.contender,
                _number(result["rps"]),
                ratio,
                _number(result["p50_ms"], 2),
                _number(result["p99_ms"], 2),
                queries,
                str(result["errors"]),
                _percent(result.get("server_cpu")),
                _percent(result["generator_cpu"]),
                _percent(result.get("other_cpu")),
            ]
        )
    header = [
        "workload",
        "conc",
        "contender",
        "req/s",
        "x base",
        "p50 ms",
        "p99 ms",
        "queries",
        "errors",
        "server",
        "loadgen",
        "other",
    ]
    return _table(header, rows, [False, True, False, True, True, True, True, True, True, True, True, True])


CPU_LEGEND = (
    "server, loadgen, other: CPU used in the timed window by the server process, the load generator and every other "
    "process on the machine, in % of one core"
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def ratio_matrix(cells: Sequence[Cell], contenders: Sequence[str]) -> str:
    """Requests/s as a fraction of the baseline's, one row per contender."""
    groups = list(dict.fromkeys((c.workload, c.concurrency) for c in cells))
    by_key = {(c.contender, c.workload, c.concurrency): c.rps for c in cells}
    header = ["contender", *(f"{w}/c{n}" for w, n in groups)]
    rows = []
    for contender in contenders:
        row = [contender]
        for workload, concurrency in groups:
            value, base = (
                by_key.get((contender, workload, concurrency)),
                by_key.get(("baseline", workload, concurrency)),
            )
            row.append(f"{value / base:.2f}" if value and base else "-")
        rows.append(row)
    return _table(header, rows, [False, *([True] * len(groups))])


def memory_table(inspections: dict[str, Inspection]) -> str:
    rows = []
    for contender, inspection in inspections.items():
        peak, body = inspection.memory_peak, inspection.memory_body
        ratio = f"{peak / body:.1f}" if peak and body else "-"
        rows.append(
            [
                contender,
                _number(peak / 2**20 if peak else None, 1),
                _number(body / 2**10 if body else None, 0),
                ratio,
                inspection.queries("memory"),
                "reference" if contender == "baseline" else inspection.memory_problem or "same content as baseline",
            ]
        )
    header = ["contender", "peak MiB", "body KiB", "peak/body", "queries", "check"]
    return _table(header, rows, [False, True, True, True, True, False])
