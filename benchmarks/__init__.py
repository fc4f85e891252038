"""djfapi's benchmark suite: djfapi against a hand-written baseline, DRF and django-ninja.

Not part of the test run (pytest collects ``tests/`` only). From the repository root::

    pip install -e '.[bench]'
    python -m benchmarks                      # seed if needed, check, measure, print the tables
    python -m benchmarks --quick              # the same with 0.5s warm-up + 2s cells: a smoke run
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_bench python -m benchmarks
    python -m benchmarks seed [--companies N] [--force]
    python -m benchmarks profile [--contender djfapi|baseline] [--workloads W1,W2,W3] [--requests N]

Options of a run: ``--contenders baseline,djfapi,drf,ninja`` (the baseline always runs:
every ratio is to it), ``--workloads W1,...,W6``, ``--duration S`` and ``--warmup S``
per cell (default 10 and 2), ``--concurrency 1,16``, ``--rounds N`` (repeat the sweep,
keep each cell's best; default 1), ``--companies N`` (per tenant, default 1,000).
The database is an SQLite file in ``benchmarks/.work/`` (override the directory with
``BENCH_WORK_DIR``) unless ``DATABASE_URL`` is set; a PostgreSQL database that does
not exist yet is created. On PostgreSQL every contender uses Django's connection pool;
on SQLite the FastAPI contenders keep connections (``BENCH_CONN_MAX_AGE``, default 60 s)
and the Django-ASGI ones close them per request (see ``benchmarks.settings``).
Results are also written as JSON to the work directory, with the servers' logs and
the profiles.

What a run does:

1. **Seed** (``benchmarks.seed``): two tenants of 1,000 companies, each with 4
   departments of 3 teams, 2 cost centres and 10 employees (58,000 rows, bulk
   created, deterministic); an existing database of that size is reused.
2. **Contenders** (``benchmarks.contenders``), each served alone by uvicorn (one
   worker) in its own process: ``baseline`` (hand-written FastAPI + ORM),
   ``djfapi`` (``testproject.app.create_app()``), ``drf`` and ``ninja`` (through
   Django's ASGI handler, settings ``benchmarks.settings``). All verify the same JWT.
3. **Checks** (``benchmarks.checks``), untimed, on an instrumented server: the first
   responses of every workload must equal the baseline's in content, or that cell is
   not timed; SQL statements per request; tracemalloc peak for a 1,000-company page.
4. **Cells** (``benchmarks.loadgen``, a separate process): W1-W6 at each concurrency,
   the contenders one after the other within each cell (all servers up, idle but the
   one measured), warm-up then a timed window; requests/s, p50, p99, errors, and the
   CPU used by the server, by the generator and by everything else on the machine,
   plus the generator's ceiling against a bare ASGI app.

The workloads (``benchmarks.workloads``): W1 ``GET /companies?limit=50``; W2
``GET /companies/{id}``; W3 ``GET /companies/{id}/employees?type=MEMBER&order_by=-hired_at&limit=50``;
W4 ``POST /companies/{id}/departments``; W5 ``PATCH /companies/{id}/departments/{id}``;
W6 ``GET /companies/aggregate/sum/departments__budget?group_by=id``. Writes go to
companies no read workload uses and are undone after every write cell.
"""
