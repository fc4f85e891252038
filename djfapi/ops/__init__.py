"""Running djfapi in production: health checks, request ids and access logs, Sentry.

* ``health``   — ``/health`` (liveness) and ``/health/ready`` (the databases answer);
* ``requests`` — ``X-Request-ID`` on every response and one access-log line per request;
* ``logs``     — a JSON log formatter;
* ``context``  — who the request is for, shared by the logs and Sentry;
* ``sentry``   — one call that enables Sentry with the right integrations and tags.
"""
