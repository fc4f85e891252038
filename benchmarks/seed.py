"""Seed the benchmark database with the testproject domain at a realistic size.

Two tenants of ``companies`` companies each; every company has 4 departments of 3
teams, 2 cost centres and 10 employees. The data is deterministic (seeded random
ids, values computed from positions), so two runs — and SQLite and PostgreSQL — serve
the same content. Rows are written with ``bulk_create`` in one transaction; a database
that already holds exactly this size is reused after undoing what the write workloads
may have left behind (see ``restore``).
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from django.core.management import call_command
from django.db import connection, transaction

from benchmarks.config import DEFAULT_COMPANIES, OTHER_TENANT, TENANT
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
    EmployeeSkill,
    Skill,
)

DEPARTMENTS = 4
TEAMS = 3
COSTCENTERS = 2
EMPLOYEES = 10
DEPARTMENT_NAMES = ("Engineering", "Sales", "Legal", "Support")
COSTCENTER_NAMES = ("Operations", "Research")

WRITE_MARKER = "bench-w4"
"""Departments the create workload makes are named with this prefix, and removed afterwards."""

_EPOCH = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
_FIRST_HIRE = datetime.date(2010, 1, 1)
_BATCH = 1000

Print = Callable[[str], None]


def expected_counts(companies: int) -> dict[str, int]:
    """Row counts per model of a database seeded with ``companies`` per tenant."""
    total = 2 * companies
    return {
        "companies": total,
        "departments": total * DEPARTMENTS,
        "teams": total * DEPARTMENTS * TEAMS,
        "costcenters": total * COSTCENTERS,
        "employees": total * EMPLOYEES,
    }


def current_counts() -> dict[str, int]:
    return {
        "companies": Company.objects.count(),
        "departments": CompanyDepartment.objects.count(),
        "teams": CompanyDepartmentTeam.objects.count(),
        "costcenters": CompanyCostcenter.objects.count(),
        "employees": Employee.objects.count(),
    }


def department_budget(index: int, position: int) -> Decimal:
    """A department's seeded budget; halves only, so float sums on SQLite stay exact."""
    return Decimal(f"{((index * DEPARTMENTS + position) * 7919) % 90000 + 1000}.50")


def company_status(index: int) -> str:
    if index % 50 == 49:
        return Company.Status.DELETED  # soft-deleted: every contender must leave it out
    if index % 10 == 3:
        return Company.Status.INACTIVE
    return Company.Status.ACTIVE


def _salary(index: int, number: int) -> Decimal:
    return Decimal(f"{40000 + ((index * 10 + number) * 104729) % 80000}.00")


def _uuids(rng: random.Random) -> Iterator[uuid.UUID]:
    while True:
        yield uuid.UUID(int=rng.getrandbits(128), version=4)


def _rows(companies: int) -> dict[str, list[Any]]:
    """Every row of the seeded database, as unsaved model instances."""
    ids = _uuids(random.Random(20261123))
    rows: dict[str, list[Any]] = {name: [] for name in expected_counts(0)}
    for tenant_number, tenant in enumerate((TENANT, OTHER_TENANT)):
        for index in range(companies):
            company = Company(
                id=next(ids),
                tenant_id=tenant,
                name=f"Company {index:05d}",
                status=company_status(index),
                is_verified=index % 3 == 0,
                created_at=_EPOCH + datetime.timedelta(hours=index * 7 + tenant_number),
            )
            rows["companies"].append(company)
            departments = []
            for position, department_name in enumerate(DEPARTMENT_NAMES):
                department = CompanyDepartment(
                    id=next(ids),
                    company=company,
                    name=f"{department_name} {index}",
                    budget=department_budget(index, position),
                )
                departments.append(department)
                rows["teams"].extend(
                    CompanyDepartmentTeam(
                        id=next(ids),
                        department=department,
                        name=f"Team {team + 1}",
                        size=(index + position + team) % 12 + 1,
                    )
                    for team in range(TEAMS)
                )
            rows["departments"].extend(departments)
            rows["costcenters"].extend(
                CompanyCostcenter(company=company, code=f"CC-{index:05d}-{number + 1}", name=name)
                for number, name in enumerate(COSTCENTER_NAMES)
            )
            for number in range(EMPLOYEES):
                kind = (Employee.Type.OWNER, Employee.Type.ADMIN)[number] if number < 2 else Employee.Type.MEMBER
                rows["employees"].append(
                    Employee(
                        id=next(ids),
                        company=company,
                        user_id=f"user-{index:05d}-{number:02d}",
                        type=kind,
                        department=None if number % 5 == 4 else departments[number % DEPARTMENTS],
                        salary=None
                        if number % 7 == 6
                        else Decimal(f"{40000 + ((index * 10 + number) * 104729) % 80000}.00"),
                        # distinct within a company, so "-hired_at" has no ties
                        hired_at=_FIRST_HIRE + datetime.timedelta(days=(index * 37 + number * 101) % 5000),
                    )
                )
    return rows


_MODELS = {
    "companies": Company,
    "departments": CompanyDepartment,
    "teams": CompanyDepartmentTeam,
    "costcenters": CompanyCostcenter,
    "employees": Employee,
}


def prepare_database(out: Print = print) -> None:
    """Create the PostgreSQL database when it does not exist yet, then migrate."""
    if connection.vendor == "postgresql":
        ensure_postgres_database(out)
    call_command("migrate", interactive=False, verbosity=0)


def ensure_postgres_database(out: Print) -> None:
    """Create the settings' PostgreSQL database when the server has none of that name."""
    # Asked of the maintenance database: Django's pool would only time out on a missing one.
    import psycopg

    config = connection.settings_dict
    params = {
        "dbname": "postgres",
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
    }
    name = config["NAME"]
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            out(f"creating PostgreSQL database {name!r}")
            admin.execute(f'CREATE DATABASE "{name}"')


def restore(out: Print = print) -> None:
    """Undo what the write workloads change: created departments, patched budgets.

    On PostgreSQL the touched tables are vacuumed too, so that every cell starts from
    the same physical state rather than from the previous cell's dead rows.
    """
    deleted, _ = CompanyDepartment.objects.filter(name__startswith=WRITE_MARKER).delete()
    changed = []
    for department in CompanyDepartment.objects.only("id", "name", "budget"):
        label, _, number = department.name.rpartition(" ")
        if label not in DEPARTMENT_NAMES or not number.isdigit():
            continue
        expected = department_budget(int(number), DEPARTMENT_NAMES.index(label))
        if department.budget != expected:
            department.budget = expected
            changed.append(department)
    if changed:
        CompanyDepartment.objects.bulk_update(changed, ["budget"], batch_size=_BATCH)
    if deleted or changed:
        out(f"restored the seeded state ({deleted} rows of created departments removed, {len(changed)} budgets reset)")
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            # Dead rows of created-then-deleted departments would otherwise linger until autovacuum.
            with connection.cursor() as cursor:
                for model in (CompanyDepartment, CompanyDepartmentTeam, Employee):
                    cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def seed(companies: int = DEFAULT_COMPANIES, *, force: bool = False, out: Print = print) -> None:
    """Make the database hold exactly the seeded data for ``companies`` per tenant."""
    prepare_database(out)
    restore(out)
    expected = expected_counts(companies)
    if not force and current_counts() == expected:
        out(f"reusing the seeded {connection.vendor} database ({_describe(expected)})")
        return
    started = datetime.datetime.now()
    rows = _rows(companies)
    with transaction.atomic():
        _wipe()
        for name in ("companies", "departments", "teams", "costcenters", "employees"):
            _MODELS[name].objects.bulk_create(rows[name], batch_size=_BATCH)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seconds = (datetime.datetime.now() - started).total_seconds()
    out(f"seeded the {connection.vendor} database in {seconds:.1f}s ({_describe(expected)})")


def _wipe() -> None:
    quote = connection.ops.quote_name
    # the seed writes no skills, but a database the demo or the tests used may hold some
    tables = [EmployeeSkill._meta.db_table, Skill._meta.db_table] + [
        _MODELS[name]._meta.db_table for name in ("employees", "teams", "costcenters", "departments", "companies")
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(quote(table) for table in tables)}")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {quote(table)}")


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {name}" for name, count in counts.items())
