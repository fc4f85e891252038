"""Seed the growth benchmark's PostgreSQL database by SQL: a million companies in seconds.

``bulk_create`` would take minutes per million rows; ``INSERT ... SELECT`` over
``generate_series`` writes them inside the server. The layout follows the issue that
asked for this benchmark: 100 tenants share 90% of the companies and one big tenant
(``alpha``, the one every request is made as) holds 10%; each company has 2
departments. 1% of the names end in "(Acme)" (what ``name__icontains=acme`` finds,
spread evenly through the name order, so a page of matches reads ~100 rows per match), 8%
of the companies are inactive and 2% soft-deleted. ``setseed`` makes every run write
the same rows. The tables are vacuumed and analysed afterwards, as autovacuum would
leave them, so the planner knows the sizes and index-only scans work.
"""

from __future__ import annotations

import time

from django.db import connection

BIG_TENANT = "alpha"
TENANTS = 100
DEPARTMENTS = 2

_COMPANIES = """
INSERT INTO business_company (id, tenant_id, name, status, is_verified, created_at)
SELECT
    gen_random_uuid(),
    CASE WHEN r.t < 0.1 THEN %(big)s ELSE 't' || lpad(floor(r.t * 1000)::int %% %(tenants)s || '', 3, '0') END,
    'Company ' || substr(md5(i::text), 1, 12) || CASE WHEN r.n < 0.01 THEN ' (Acme)' ELSE '' END,
    CASE WHEN r.s < 0.02 THEN 'deleted' WHEN r.s < 0.10 THEN 'inactive' ELSE 'active' END,
    r.v < 0.3,
    now() - make_interval(secs => i)
FROM generate_series(1, %(rows)s) AS i
CROSS JOIN LATERAL (SELECT random() AS t, random() AS n, random() AS s, random() AS v, i AS k) AS r
"""

_DEPARTMENTS = """
INSERT INTO business_companydepartment (id, company_id, name, budget)
SELECT gen_random_uuid(), c.id, 'Department ' || d, (d * 1000)::numeric(14, 2)
FROM business_company AS c CROSS JOIN generate_series(1, %(departments)s) AS d
"""

_TABLES = (
    "business_employee",
    "business_companycostcenter",
    "business_companydepartmentteam",
    "business_companydepartment",
    "business_company",
)


def company_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM business_company")
        return int(cursor.fetchone()[0])


def seed(rows: int) -> float:
    """Replace every company with ``rows`` new ones (and their departments); the seconds it took."""
    if connection.vendor != "postgresql":
        raise SystemExit("the growth benchmark runs on PostgreSQL: set DATABASE_URL=postgres://...")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)} CASCADE")
        cursor.execute("SELECT setseed(0.17)")
        cursor.execute(_COMPANIES, {"big": BIG_TENANT, "tenants": TENANTS, "rows": rows})
        cursor.execute(_DEPARTMENTS, {"departments": DEPARTMENTS})
    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        for table in ("business_company", "business_companydepartment"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started
