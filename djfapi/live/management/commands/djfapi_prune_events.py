"""``manage.py djfapi_prune_events [--older-than SECONDS]``: delete old change events.

Streams prune the outbox themselves every ``LIVE_PRUNE_INTERVAL`` seconds while they
run; this command is for processes that never serve streams (a cron job, a worker).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from djfapi.live.outbox import prune_events, retention


class Command(BaseCommand):
    help = "Delete change events older than DJFAPI['LIVE_RETENTION'] seconds (or --older-than)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Seconds; default: DJFAPI['LIVE_RETENTION'] (86400)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        deleted = prune_events(older_than)
        seconds = retention() if older_than is None else older_than
        self.stdout.write(f"Deleted {deleted} change events older than {seconds:g} seconds.")
