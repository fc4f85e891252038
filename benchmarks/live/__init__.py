"""Benchmarks of the change feed (``djfapi.live``), one module per job.

From the repository root::

    python -m benchmarks.live [--quick] [...]        # fan-out: N subscribers of one feed (fanout)
    python -m benchmarks.live scale [--quick] [...]  # 1,000 subscribers, 100 users, 10 tenants (scale)

Either runs on SQLite, or on PostgreSQL when ``DATABASE_URL`` is set (a scratch
database is created next to the one it names). The modules:

* ``fanout`` / ``scale``: the two benchmarks (phases, checks, report, command line);
* ``app``: the server, the demo app plus the commit time of every outbox event;
* ``seeding``: the tenants, users and companies of ``scale`` (run in a subprocess);
* ``database`` / ``server``: the scratch database, the uvicorn child, its memory and CPU;
* ``sse`` / ``writes``: the subscribers (plain asyncio sockets) and the open-loop writers;
* ``harness`` / ``stats``: what both benchmarks share, and percentiles.

Results are printed and written as JSON to the work directory (``benchmarks/.work/``,
or ``BENCH_WORK_DIR``), next to the server's log.
"""
