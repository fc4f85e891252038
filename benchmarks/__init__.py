"""djfapi's benchmark suite: djfapi against a careful hand-written baseline, django-bolt, DRF and django-ninja.

Not part of the test run (pytest collects ``tests/`` only). From the repository root::

    pip install -e '.[bench]'
    python -m benchmarks                      # seed if needed, check, measure, print the tables
    python -m benchmarks --rounds 3           # the sweep three times: each cell's median and range
    python -m benchmarks --quick              # the same with 0.5s warm-up + 2s cells: a smoke run
    python -m benchmarks --quick --workloads W1,W4 --contenders baseline,djfapi,bolt
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/djfapi_bench python -m benchmarks
    python -m benchmarks seed [--companies N] [--force]
    python -m benchmarks profile [--contender djfapi|baseline] [--workloads W1,W2,W3] [--requests N]
    DATABASE_URL=postgres://... python -m benchmarks growth [--sizes 10000,100000,1000000] [--runs 3]
    python -m benchmarks workers [--rounds N] [--concurrency C]   # djfapi with 1 and 2 uvicorn workers

Options of a run: ``--contenders baseline,djfapi,bolt,drf,ninja`` (the default; the
baseline always runs: every ratio is to it; ``instances``, the earlier baseline that
builds model instances, ``limits`` and ``limits-redis``, the demo with its rate limits
counted in process or in Redis — ``djfapi`` runs with them off —, only when named;
``python -m benchmarks.ratelimit_cost`` times the count alone), ``--workloads W1,...,W6``, ``--duration S``
and ``--warmup S`` per cell (default 10 and 2), ``--concurrency 1,16``, ``--rounds N``
(repeat the sweep; every ratio is taken within a round, and the tables show each
cell's median over the rounds with their range; default 1), ``--pg-connections
persistent|pool``, ``--companies N`` (per tenant, default 1,000). The database is an
SQLite file in ``benchmarks/.work/`` (override the directory with ``BENCH_WORK_DIR``)
unless ``DATABASE_URL`` is set; a PostgreSQL database that does not exist yet is
created. On PostgreSQL the contenders whose worker threads outlive a request
(baseline, djfapi, bolt) keep persistent connections, ``CONN_MAX_AGE=60`` with
``CONN_HEALTH_CHECKS`` as djfapi's deployment guide documents, and the ones in
Django's ASGI handler (drf, ninja), which could never reuse one, take Django's pool
(``--pg-connections pool``: the pool for everyone); on SQLite the former keep
connections (``BENCH_CONN_MAX_AGE``, default 60 s) and the latter close them per
request (see ``benchmarks.settings``). Results are also written as JSON to the work
directory, with the servers' logs and the profiles.

What a run does:

1. **Seed** (``benchmarks.seed``): two tenants of 1,000 companies, each with 4
   departments of 3 teams, 2 cost centres and 10 employees (58,000 rows, bulk
   created, deterministic); an existing database of that size is reused.
2. **Contenders** (``benchmarks.contenders``), each served alone in its own process
   (one worker): ``baseline`` (hand-written FastAPI + ORM, the careful way: ``values()``
   rows, one query per nested list, plain dicts), ``djfapi``
   (``testproject.app.create_app()``), ``drf`` and ``ninja`` (through Django's ASGI
   handler, settings ``benchmarks.settings``), all under uvicorn, and ``bolt``
   (django-bolt on the baseline's database code, under its own Rust server, in a
   Python ≥ 3.12 virtualenv made on demand). All verify the same JWT.
3. **Checks** (``benchmarks.checks``), untimed, on an instrumented server: the first
   responses of every workload must equal the baseline's in content, or that cell is
   not timed; SQL statements per request; tracemalloc peak for a 1,000-company page
   (not for bolt, whose server the suite cannot wrap).
4. **Cells** (``benchmarks.loadgen``, a separate process): W1-W6 at each concurrency,
   the contenders one after the other within each cell (all servers up, idle but the
   one measured), warm-up then a timed window; requests/s, p50, p99, errors, and the
   CPU used by the server, by the generator and by everything else on the machine,
   plus the generator's ceiling against a bare ASGI app.
5. **Tables** (``benchmarks.report``): every cell; requests/s as a ratio to the
   baseline per contender, workload and concurrency; SQL statements per request and
   the writes' p99 at the highest concurrency, also against the baseline's; memory.

The workloads (``benchmarks.workloads``): W1 ``GET /companies?limit=50``; W2
``GET /companies/{id}``; W3 ``GET /companies/{id}/employees?type=MEMBER&order_by=-hired_at&limit=50``;
W4 ``POST /companies/{id}/departments``; W5 ``PATCH /companies/{id}/departments/{id}``;
W6 ``GET /companies/aggregate/sum/departments__budget?group_by=id``. Writes go to
companies no read workload uses and are undone after every write cell.
"""
