"""Running djfapi in production: health checks, request ids and access logs, API docs, Sentry.

* ``health``   — ``/health`` (liveness) and ``/health/ready`` (the databases answer);
* ``requests`` — ``X-Request-ID`` on every response and one access-log line per request;
* ``logs``     — a JSON log formatter;
* ``docs``     — Swagger UI and ReDoc served from local files (no CDN);
* ``context``  — who the request is for, shared by the logs and Sentry;
* ``sentry``   — one call that enables Sentry with the right integrations and tags.
"""
