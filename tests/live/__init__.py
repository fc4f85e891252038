"""Live-server test support: the demo under a real uvicorn, on a PostgreSQL database of its own.

``app`` is the ASGI app the live tests serve (the demo plus a few test-only endpoints);
``server`` starts and stops it, creates and drops its databases, watches its
connections in ``pg_stat_activity`` and drives concurrent load against it.
"""
