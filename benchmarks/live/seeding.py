"""The population of ``benchmarks.live.scale``: tenants, users, and one company per user.

``python -m benchmarks.live.seeding TENANTS USERS`` (with ``DATABASE_URL`` and the demo's
settings) migrates the database, then gives user ``n`` (``user-000`` ...) tenant
``n % TENANTS`` (``tenant-00`` ...) and a company of that tenant that it owns (an
``OWNER`` employee row, which is what the demo's ``own`` scope looks for), and prints
the layout as JSON lines: ``{"user", "tenant", "company"}``.
"""

from __future__ import annotations

import datetime
import json
import os
import sys


def tenant_name(index: int) -> str:
    return f"tenant-{index:02d}"


def user_name(index: int) -> str:
    return f"user-{index:03d}"


def main(argv: list[str]) -> int:
    tenants, users = int(argv[0]), int(argv[1])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from testproject.business.models import Company, Employee

    call_command("migrate", verbosity=0)
    layout = []
    with transaction.atomic():
        for index in range(users):
            user, tenant = user_name(index), tenant_name(index % tenants)
            company = Company.objects.create(tenant_id=tenant, name=f"{user}'s company")
            Employee.objects.create(
                company=company, user_id=user, type=Employee.Type.OWNER, hired_at=datetime.date(2020, 1, 1)
            )
            layout.append({"user": user, "tenant": tenant, "company": str(company.pk)})
    for row in layout:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
