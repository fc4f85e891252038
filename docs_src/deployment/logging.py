"""myproject/settings.py (excerpt): djfapi's access log as JSON lines on stdout."""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "djfapi.ops.logs.JSONFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "loggers": {"djfapi": {"handlers": ["stdout"], "level": "INFO"}},
}
