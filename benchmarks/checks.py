"""The untimed pass: same content as the baseline, SQL statements and memory per request.

Run against an instrumented server (``Server(..., instrumented=True)``), one request at
a time. For each workload the first ``SAMPLES`` requests are sent and their JSON
compared with the baseline's — key order ignored, item order not — after the
workload's normalisation (W4 masks the ids it creates). A contender that differs is
not timed on that workload: nobody wins by doing less. Query counts come from the
response headers. Memory: the ``max_limit`` page of companies, requested three times;
the median peak is kept, with the body size beside it (and its content is checked
too, even where the memory cannot be measured).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.config import MEMORY_HEADER, QUERIES_HEADER, TX_HEADER
from benchmarks.seed import restore
from benchmarks.server import Server
from benchmarks.workloads import MEMORY_REQUEST, Request, Workload

SAMPLES = 3
MEMORY_ROUNDS = 3


@dataclass
class Sample:
    status: int
    content: Any
    queries: int
    tx_statements: int


@dataclass
class Inspection:
    """What the untimed pass found for one contender."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # workload -> why it is not timed
    memory_peak: float | None = None
    memory_body: int | None = None
    memory_problem: str | None = None

    def queries(self, key: str) -> str:
        """``3`` or ``3-4``, plus transaction statements when there were any: ``4 +1 tx``."""
        samples = self.samples.get(key)
        if not samples:
            return "-"
        counts = sorted({s.queries for s in samples})
        text = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        tx = max(s.tx_statements for s in samples)
        return f"{text} +{tx}tx" if tx else text


def _send(client: httpx.Client, request: Request) -> tuple[httpx.Response, Any]:
    body = request.encoded_body()
    headers = {"content-type": "application/json"} if request.body is not None else {}
    response = client.request(request.method, request.path, content=body or None, headers=headers)
    try:
        content = response.json()
    except ValueError:
        content = response.text
    return response, content


def inspect(server: Server, workloads: dict[str, Workload], token: str, reference: Inspection | None) -> Inspection:
    """Sample every workload (and the memory request) on ``server``, compared with ``reference``."""
    result = Inspection()
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=120) as client:
        for key, workload in workloads.items():
            samples = []
            try:
                for request in workload.requests[:SAMPLES]:
                    response, content = _send(client, request)
                    samples.append(
                        Sample(
                            response.status_code,
                            workload.normalise(content),
                            int(response.headers.get(QUERIES_HEADER, -1)),
                            int(response.headers.get(TX_HEADER, 0)),
                        )
                    )
            finally:
                if workload.writes:
                    restore(out=lambda _: None)
            result.samples[key] = samples
            problem = _problem(workload.status, samples, reference.samples.get(key) if reference else None)
            if problem:
                result.problems[key] = problem
        _measure_memory(client, result, reference)
    return result


def _problem(status: int, samples: list[Sample], expected: list[Sample] | None) -> str | None:
    for number, sample in enumerate(samples):
        if sample.status != status:
            return f"request {number + 1}: status {sample.status}, expected {status}: {str(sample.content)[:300]}"
        if expected is not None:
            difference = first_difference(expected[number].content, sample.content)
            if difference:
                return f"request {number + 1}: {difference}"
    return None


def _measure_memory(client: httpx.Client, result: Inspection, reference: Inspection | None) -> None:
    peaks = []
    for _ in range(MEMORY_ROUNDS):
        response, content = _send(client, MEMORY_REQUEST)
        if response.status_code != 200:
            result.memory_problem = f"status {response.status_code}"
            return
        if MEMORY_HEADER in response.headers:  # not from a server the suite cannot instrument (bolt)
            peaks.append(int(response.headers[MEMORY_HEADER]))
    result.memory_peak = statistics.median(peaks) if peaks else None
    result.memory_body = len(response.content)
    result.samples["memory"] = [Sample(200, content, int(response.headers.get(QUERIES_HEADER, -1)), 0)]
    if reference is not None and "memory" in reference.samples:
        result.memory_problem = first_difference(reference.samples["memory"][0].content, content)


def first_difference(expected: Any, actual: Any, where: str = "$") -> str | None:
    """Where two JSON values first differ (dict key order ignored, list order not), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            missing, extra = sorted(expected.keys() - actual.keys()), sorted(actual.keys() - expected.keys())
            return f"{where}: keys differ (missing {missing}, extra {extra})"
        for key in expected:
            difference = first_difference(expected[key], actual[key], f"{where}.{key}")
            if difference:
                return difference
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: {len(actual)} items, expected {len(expected)}"
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            difference = first_difference(left, right, f"{where}[{index}]")
            if difference:
                return difference
        return None
    if type(expected) is not type(actual) or expected != actual:
        return f"{where}: {actual!r}, expected {expected!r}"
    return None
