"""The django-bolt contender: the careful engineer's database work behind django-bolt.

django-bolt (Django ORM behind a Rust/Actix HTTP server, msgspec for parsing and
rendering) needs Python 3.12 or later, and the suite runs on the project's own
Python. So it lives apart: ``benchmarks.contenders.bolt.venv`` makes its virtualenv
on demand in the work directory and gives the command line of its server, bolt's own
``runbolt`` (one process, bolt's default worker threads); ``benchmarks.contenders.bolt.api``
is the ``BoltAPI`` that server discovers (``BOLT_API`` in ``benchmarks.settings``),
imported only there.
"""
