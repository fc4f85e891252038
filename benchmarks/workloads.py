"""The six workloads, as concrete requests against the seeded database.

Read workloads rotate over the first companies of the benchmark tenant (by name, the
testproject's default order); write workloads use the last ones, which no read
workload touches. W4 creates departments named ``bench-w4 ...`` and W5 sets budgets;
``benchmarks.seed.restore`` undoes both after every write cell, so the database never
grows during a run and W6's sums always see the seeded budgets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.config import MAX_LIMIT, TENANT
from benchmarks.seed import DEPARTMENT_NAMES, WRITE_MARKER
from testproject.business.models import Company, CompanyDepartment

TARGETS = 100
"""Distinct companies each rotating workload cycles through."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None  # JSON-able

    def encoded_body(self) -> bytes:
        return json.dumps(self.body).encode() if self.body is not None else b""


def _identity(value: Any) -> Any:
    return value


def mask_ids(value: Any) -> Any:
    """Replace generated primary keys (``"id"`` at any depth) by a placeholder."""
    if isinstance(value, dict):
        return {key: "<generated>" if key == "id" else mask_ids(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_ids(item) for item in value]
    return value


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    requests: tuple[Request, ...]
    status: int = 200
    writes: bool = False
    normalise: Callable[[Any], Any] = _identity


def build() -> dict[str, Workload]:
    """The workloads, with ids read from the seeded database."""
    companies = list(
        Company.objects.filter(tenant_id=TENANT)
        .exclude(status=Company.Status.DELETED)
        .order_by("name", "pk")
        .values_list("pk", flat=True)
    )
    if len(companies) < 2 * TARGETS:
        raise RuntimeError(f"the benchmark needs at least {2 * TARGETS} visible companies; seed a larger database")
    readers, writers = companies[:TARGETS], companies[-TARGETS:]
    departments = dict(
        CompanyDepartment.objects.filter(company__in=writers, name__startswith=DEPARTMENT_NAMES[0]).values_list(
            "company_id", "pk"
        )
    )
    employees = "type=MEMBER&order_by=-hired_at&limit=50"
    workloads = [
        Workload("W1", "list 50 companies (nested departments, costcenters)", (Request("GET", "/companies?limit=50"),)),
        Workload("W2", "get one company (nested lists)", tuple(Request("GET", f"/companies/{c}") for c in readers)),
        Workload(
            "W3",
            "list employees: type=MEMBER, -hired_at, limit 50",
            tuple(Request("GET", f"/companies/{c}/employees?{employees}") for c in readers),
        ),
        Workload(
            "W4",
            "create a department (with one team)",
            tuple(
                Request(
                    "POST",
                    f"/companies/{c}/departments",
                    {"name": f"{WRITE_MARKER} {n}", "budget": "1000.50", "teams": [{"name": "Core", "size": 3}]},
                )
                for n, c in enumerate(writers)
            ),
            status=201,
            writes=True,
            normalise=mask_ids,
        ),
        Workload(
            "W5",
            "patch a department's budget",
            tuple(
                Request("PATCH", f"/companies/{c}/departments/{departments[c]}", {"budget": budget})
                for budget in ("1500.50", "2500.50")
                for c in writers
            ),
            writes=True,
        ),
        Workload(
            "W6",
            "aggregate: sum of department budgets by company",
            (Request("GET", "/companies/aggregate/sum/departments__budget?group_by=id"),),
        ),
    ]
    return {workload.key: workload for workload in workloads}


MEMORY_REQUEST = Request("GET", f"/companies?limit={MAX_LIMIT}")
"""A ``max_limit`` page of companies with their nested lists: the memory measurement."""
