"""The printed tables: per-cell detail, ratios to the baseline, statements and write latency, memory.

Every ratio is to the baseline's figure for the same workload and concurrency in the
same round, so machines and runs never mix; with several rounds a cell shows the
median of its rounds and, in brackets, their spread (lowest-highest).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.checks import Inspection

BASELINE = "baseline"


@dataclass
class Cell:
    """One contender on one workload at one concurrency: its result in each round, or why it was not timed."""

    contender: str
    workload: str
    concurrency: int
    results: list[dict[str, Any]] = field(default_factory=list)  # one per round, in round order
    skipped: str | None = None

    def values(self, key: str) -> list[float]:
        return [result[key] for result in self.results if result.get(key) is not None]

    def median(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.median(values) if values else None

    @property
    def rps(self) -> float | None:
        return self.median("rps")


def paired(cell: Cell, base: Cell | None, key: str) -> list[float]:
    """``cell``'s ``key`` over the baseline's, round by round (rounds where either lacks it are left out)."""
    if base is None:
        return []
    return [
        mine[key] / theirs[key]
        for mine, theirs in zip(cell.results, base.results, strict=False)
        if mine.get(key) and theirs.get(key)
    ]


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _spread(values: Sequence[float], digits: int = 2, *, show: bool = True) -> str:
    """``1.07`` or, from several rounds, ``1.07 [0.59-1.19]``: the median and the range."""
    if not values:
        return "-"
    text = f"{statistics.median(values):,.{digits}f}"
    if show and len(values) > 1:
        text += f" [{min(values):,.{digits}f}-{max(values):,.{digits}f}]"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right, strict=True))

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def _baselines(cells: Sequence[Cell]) -> dict[tuple[str, int], Cell]:
    return {(c.workload, c.concurrency): c for c in cells if c.contender == BASELINE}


def throughput_table(cells: Sequence[Cell], inspections: dict[str, Inspection], titles: dict[str, str]) -> str:
    """Every cell: requests/s (with the rounds' spread), its ratio, latency, statements, errors and CPU."""
    baseline = _baselines(cells)
    rows = []
    previous = None
    for cell in cells:
        group = (cell.workload, cell.concurrency)
        label = f"{cell.workload} {titles.get(cell.workload, '')}" if group != previous else ""
        conc = str(cell.concurrency) if group != previous else ""
        previous = group
        inspection = inspections.get(cell.contender)
        queries = inspection.queries(cell.workload) if inspection else "-"
        if not cell.results:
            rows.append([label, conc, cell.contender, "not timed", "", "", "", queries, "", "", "", cell.skipped or ""])
            continue
        rows.append(
            [
                label,
                conc,
                cell.contender,
                _spread(cell.values("rps"), 1),
                _spread(paired(cell, baseline.get(group), "rps"), 2, show=False),
                _number(cell.median("p50_ms"), 2),
                _number(cell.median("p99_ms"), 2),
                queries,
                str(sum(result["errors"] for result in cell.results)),
                _percent(cell.median("server_cpu")),
                _percent(cell.median("generator_cpu")),
                _percent(cell.median("other_cpu")),
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
    "req/s, latency and CPU: the median of the rounds, req/s with their range in brackets; server, loadgen, other: "
    "CPU used in the timed window by the server process, the load generator and every other process on the "
    "machine, in % of one core"
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def ratio_matrix(cells: Sequence[Cell], contenders: Sequence[str]) -> str:
    """Requests/s as a fraction of the baseline's, one row per contender; the baseline's own req/s last."""
    baseline = _baselines(cells)
    groups = list(dict.fromkeys((c.workload, c.concurrency) for c in cells))
    by_key = {(c.contender, c.workload, c.concurrency): c for c in cells}
    header = ["contender", *(f"{w} c={n}" for w, n in groups)]
    rows = []
    for contender in contenders:
        if contender == BASELINE:
            continue
        row = [contender]
        for workload, concurrency in groups:
            cell = by_key.get((contender, workload, concurrency))
            row.append(_spread(paired(cell, baseline.get((workload, concurrency)), "rps")) if cell else "-")
        rows.append(row)
    rows.append(["baseline req/s", *(_spread(baseline[g].values("rps"), 0) if g in baseline else "-" for g in groups)])
    return _table(header, rows, [False, *([True] * len(groups))])


def statements_and_writes(
    cells: Sequence[Cell], contenders: Sequence[str], inspections: dict[str, Inspection], write_workloads: Sequence[str]
) -> str:
    """Per contender: SQL statements per request of each workload, and the writes' p99 at the highest concurrency."""
    baseline = _baselines(cells)
    workloads = list(dict.fromkeys(c.workload for c in cells))
    top = max((c.concurrency for c in cells), default=0)
    writes = [w for w in workloads if w in write_workloads]
    by_key = {(c.contender, c.workload, c.concurrency): c for c in cells}
    header = ["contender", f"statements {'/'.join(workloads)}"]
    for workload in writes:
        header += [f"{workload} p99 ms c={top}", "x base"]
    rows = []
    for contender in contenders:
        inspection = inspections.get(contender)
        row = [contender, " / ".join(inspection.queries(w) if inspection else "-" for w in workloads)]
        for workload in writes:
            cell = by_key.get((contender, workload, top))
            base = baseline.get((workload, top))
            row.append(_spread(cell.values("p99_ms"), 0) if cell else "-")
            row.append(_spread(paired(cell, base, "p99_ms"), 2, show=False) if cell else "-")
        rows.append(row)
    return _table(header, rows, [False, False, *([True] * 2 * len(writes))])


STATEMENTS_LEGEND = (
    "statements: SQL statements per request in the untimed checks, data queries then transaction control (+N tx); "
    "x base: the write's p99 over the baseline's, median of the rounds' ratios"
)


def memory_table(inspections: dict[str, Inspection]) -> str:
    rows = []
    for contender, inspection in inspections.items():
        peak, body = inspection.memory_peak, inspection.memory_body
        ratio = f"{peak / body:.1f}" if peak and body else "-"
        rows.append(
            [
                contender,
                _number(peak / 2**20 if peak else None, 1) if peak is not None else "not measured",
                _number(body / 2**10 if body else None, 0),
                ratio,
                inspection.queries("memory"),
                "reference" if contender == BASELINE else inspection.memory_problem or "same content as baseline",
            ]
        )
    header = ["contender", "peak MiB", "body KiB", "peak/body", "queries", "check"]
    return _table(header, rows, [False, True, True, True, True, False])
