"""Command line of the demo: ``python -m testproject [serve|token|migrate|seed]``.

``serve`` (the default) needs no set-up at all: it migrates the database, seeds demo data
when empty, prints where to go and a ready-to-use token, and runs uvicorn. ``token``
prints nothing but a signed token on stdout, so it composes in shells
(``TOKEN=$(python -m testproject token ...)``), and never touches the database.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from djfapi.management.commands.djfapi_token import add_token_arguments

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEMO_TOKEN_LIFETIME = 24 * 3600


def _configure_django(*, setup: bool = True) -> None:
    """Point Django at the demo settings (unless the caller chose others) and load apps."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    if setup:
        import django

        django.setup()


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


def _describe_database() -> str:
    """Engine and database name (plus host and port when set); never the credentials."""
    from django.db import connection

    config = connection.settings_dict
    description = f"{connection.vendor} {config.get('NAME')}"
    host, port = config.get("HOST"), config.get("PORT")
    if host:
        description += f" on {host}:{port}" if port else f" on {host}"
    return description


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _serve(args: argparse.Namespace) -> int:
    """Prepare the database, print the banner and run the app until interrupted."""
    _configure_django()
    from django.conf import settings
    from django.db import connections

    from testproject.seed import DEMO_TENANT, DEMO_USER, ensure_admin_user, ensure_demo_user, seed_demo_data
    from testproject.tokens import ALL_SCOPES, mint_token

    _migrate()
    seeded = seed_demo_data()
    admin_username, admin_password = ensure_admin_user()
    _, demo_password = ensure_demo_user()
    database = _describe_database()
    # The main thread's connection is not needed while serving; do not keep it open.
    connections.close_all()

    import uvicorn

    from testproject.asgi import app  # imported before the banner: fail before promising a URL

    if settings.USING_DEVELOPMENT_JWT_KEY:
        print(
            "WARNING: using the development JWT key; set DJFAPI_JWT_SECRET in production",
            file=sys.stderr,
            flush=True,
        )

    url = _base_url(args.host, args.port)
    token = mint_token(tenant=DEMO_TENANT, user=DEMO_USER, scopes=ALL_SCOPES, expires=DEMO_TOKEN_LIFETIME)
    if admin_password is not None:
        admin_login = f"(user {admin_username!r}, password {admin_password!r})"
    else:
        admin_login = f"(superuser {admin_username!r} already existed)"
    lines = [
        "djfapi testproject",
        f"  URL:      {url}",
        f"  API docs: {url}/docs",
        f"  Admin:    {url}/admin/ {admin_login}",
        f"  Database: {database}" + (" (demo data seeded)" if seeded else ""),
        f"  Demo token: tenant {DEMO_TENANT!r}, user {DEMO_USER!r}, all scopes, valid 24 h:",
        f"export TOKEN={token}",
        f'curl -H "Authorization: Bearer $TOKEN" {url}/companies',
    ]
    if demo_password is not None:
        lines.append(
            f"  Log in:   POST {url}/auth/token with user {DEMO_USER!r}, password {demo_password!r} "
            f"(refresh at /auth/refresh, log out at /auth/logout)"
        )
    print("\n".join(lines), flush=True)

    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _token(args: argparse.Namespace) -> int:
    """Print one signed token; settings are read but no app or database is loaded."""
    _configure_django(setup=False)
    from django.core.exceptions import ImproperlyConfigured

    from djfapi.management.commands.djfapi_token import mint_from_options

    try:
        token = mint_from_options(vars(args))
    except ImproperlyConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(token + "\n")
    return 0


def _migrate_command(args: argparse.Namespace) -> int:
    _configure_django()
    _migrate(verbosity=1)
    return 0


def _seed_command(args: argparse.Namespace) -> int:
    _configure_django()
    from testproject.seed import ensure_admin_user, ensure_demo_user, seed_demo_data

    _migrate()
    print("demo data seeded" if seed_demo_data() else "database not empty; nothing seeded")
    demo_username, demo_password = ensure_demo_user()
    if demo_password is not None:
        print(f"created the demo user {demo_username!r} with password {demo_password!r}")
    username, password = ensure_admin_user()
    if password is not None:
        print(f"created superuser {username!r} with password {password!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``serve`` options also work without naming ``serve``."""
    parser = argparse.ArgumentParser(
        prog="python -m testproject",
        description="djfapi demo project: serve the API, or mint tokens for it.",
    )
    parser.set_defaults(handler=_serve)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    commands = parser.add_subparsers(title="commands", metavar="{serve,token,migrate,seed}")

    serve = commands.add_parser("serve", help="migrate, seed demo data when empty and serve (the default)")
    # SUPPRESS: values given before "serve" are kept unless repeated after it.
    serve.add_argument("--host", default=argparse.SUPPRESS, help=f"interface to bind (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=argparse.SUPPRESS, help=f"port (default {DEFAULT_PORT})")
    serve.set_defaults(handler=_serve)

    token = commands.add_parser("token", help="print a signed JWT for the demo API (stdout: the token only)")
    # The flags of ``manage.py djfapi_token``, from the same definition: the two cannot drift apart.
    add_token_arguments(token)
    token.set_defaults(handler=_token)

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.set_defaults(handler=_migrate_command)

    seed = commands.add_parser("seed", help="migrate, seed demo data when empty and ensure the admin user")
    seed.set_defaults(handler=_seed_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
