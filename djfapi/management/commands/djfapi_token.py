"""``manage.py djfapi_token --tenant T --user U --scope S [...]``: print a signed JWT.

For development: a token the project's own ``JWTToken()`` accepts, signed with
``settings.DJFAPI`` (see ``djfapi.security.tokens.mint_token``). stdout carries the
token and nothing else, so ``TOKEN=$(python manage.py djfapi_token ...)`` works. The
command loads no models, runs no system checks and never opens a database connection,
so it also works while the database is down or not migrated yet.

``python -m testproject token`` uses the same flags (``add_token_arguments``), so the
two cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from djfapi.security.tokens import mint_token


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the token flags to ``parser``; ``mint_from_options`` reads what they parse into."""
    parser.add_argument("--tenant", required=True, help="tenant id (claim ten)")
    parser.add_argument("--user", required=True, help="user id (claim sub)")
    parser.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        metavar="SCOPE",
        help="granted scope (claim aud); repeat for several, order is kept",
    )
    parser.add_argument("--critical", action="store_true", help="set crt: true (allows critical fields)")
    parser.add_argument(
        "--expires",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime in seconds from now; negative gives an expired token (default 3600)",
    )
    parser.add_argument(
        "--not-before",
        type=int,
        default=None,
        metavar="SECONDS",
        help="nbf this many seconds from now (default: valid at once)",
    )
    parser.add_argument("--issuer", default=None, help="iss claim (default: the configured JWT_ISSUER)")
    parser.add_argument(
        "--role",
        dest="roles",
        action="append",
        default=None,
        metavar="ROLE",
        help="role (claim rls); repeat for several",
    )
    parser.add_argument(
        "--kid",
        default=None,
        help="key id to sign with when JWT_SIGNING_KEY / JWT_KEY is a {kid: key} mapping (default: the first)",
    )


def mint_from_options(options: Mapping[str, Any]) -> str:
    """The token the parsed flags of ``add_token_arguments`` ask for.

    Raises ImproperlyConfigured (with the fix) when the settings cannot sign it.
    """
    return mint_token(
        tenant=options["tenant"],
        user=options["user"],
        scopes=options["scopes"],
        critical=options["critical"],
        expires=options["expires"],
        not_before=options["not_before"],
        issuer=options["issuer"],
        roles=options["roles"] or (),
        kid=options["kid"],
    )


class Command(BaseCommand):
    help = "Print a signed JWT for this project's API (stdout: the token only). For development and tests."

    # A token needs settings, not the database: no checks, no migration check, no connection.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        add_token_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = mint_from_options(options)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from error
        self.stdout.write(token)
