"""Demo data and the admin account, so ``python -m testproject`` is usable at once.

Seeding happens only on an empty database (no ``Company`` at all), so restarting the
demo never duplicates rows nor overwrites what a user changed through the API.
"""

from __future__ import annotations

import datetime
import os
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction

from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)

DEMO_TENANT = "demo"
OTHER_TENANT = "other"
DEMO_USER = "demo-user"

_OWNER = Employee.Type.OWNER
_ADMIN = Employee.Type.ADMIN
_MEMBER = Employee.Type.MEMBER

# name, status, departments (name, budget, teams (name, size)), costcenters (code, name),
# employees (user id, type, index of department or None, salary or None, hired at).
_DEMO_COMPANIES = [
    (
        "Acme Corp",
        Company.Status.ACTIVE,
        [
            ("Engineering", "250000.00", [("Rockets", 5), ("Anvils", 3)]),
            ("Sales", "120000.50", [("Road Runner Accounts", 2)]),
            ("Legal", "80000.00", [("Claims", 1)]),
        ],
        [("ACME-100", "Research"), ("ACME-200", "Operations")],
        [
            (DEMO_USER, _OWNER, 0, "98000.00", datetime.date(2019, 3, 1)),
            ("wile.coyote", _ADMIN, 0, "87000.00", datetime.date(2020, 7, 15)),
            ("road.runner", _MEMBER, 1, "54000.00", datetime.date(2022, 1, 10)),
            ("elmer.fudd", _MEMBER, None, None, datetime.date(2023, 9, 4)),
        ],
    ),
    (
        "Globex",
        Company.Status.ACTIVE,
        [
            ("Research", "500000.00", [("Doomsday Devices", 4), ("Lasers", 2)]),
            ("Human Resources", "60000.00", [("Recruiting", 2)]),
        ],
        [("GLX-1", "Headquarters"), ("GLX-2", "Volcano Lair")],
        [
            ("hank.scorpio", _OWNER, 0, "250000.00", datetime.date(2015, 5, 20)),
            (DEMO_USER, _MEMBER, 1, "61000.00", datetime.date(2021, 11, 2)),
            ("homer.simpson", _MEMBER, 0, "42000.00", datetime.date(2024, 2, 29)),
        ],
    ),
    (
        "Initech",
        Company.Status.INACTIVE,
        [
            ("Software", "90000.00", [("TPS Reports", 6)]),
            ("Facilities", "15000.75", [("Basement", 1), ("Parking", 2)]),
        ],
        [("INI-10", "Software"), ("INI-20", "Facilities")],
        [
            ("bill.lumbergh", _OWNER, None, "150000.00", datetime.date(2010, 6, 1)),
            ("peter.gibbons", _ADMIN, 0, "48000.00", datetime.date(2016, 8, 8)),
            ("milton.waddams", _MEMBER, 1, "21000.00", datetime.date(2005, 4, 1)),
            ("michael.bolton", _MEMBER, 0, None, datetime.date(2017, 12, 12)),
        ],
    ),
]

_OTHER_COMPANIES = [
    (
        "Umbrella",
        Company.Status.ACTIVE,
        [("Pharmaceuticals", "750000.00", [("Virology", 8)])],
        [("UMB-1", "Raccoon City"), ("UMB-2", "Arctic")],
        [
            ("albert.wesker", _OWNER, 0, "300000.00", datetime.date(2012, 10, 31)),
            ("jill.valentine", _MEMBER, None, "52000.00", datetime.date(2018, 3, 3)),
            ("chris.redfield", _MEMBER, 0, "53000.00", datetime.date(2018, 3, 4)),
        ],
    ),
]


# Verified companies are listed by the public directory (GET /directory, no token needed).
_VERIFIED = {"Acme Corp", "Umbrella"}


def _create_company(tenant: str, spec: tuple) -> Company:
    """Create one company with its whole tree from a ``_DEMO_COMPANIES`` entry."""
    name, status, departments, costcenters, employees = spec
    company = Company.objects.create(tenant_id=tenant, name=name, status=status, is_verified=name in _VERIFIED)
    created_departments = []
    for department_name, budget, teams in departments:
        department = CompanyDepartment.objects.create(company=company, name=department_name, budget=Decimal(budget))
        created_departments.append(department)
        CompanyDepartmentTeam.objects.bulk_create(
            CompanyDepartmentTeam(department=department, name=team_name, size=size) for team_name, size in teams
        )
    CompanyCostcenter.objects.bulk_create(
        CompanyCostcenter(company=company, code=code, name=cc_name) for code, cc_name in costcenters
    )
    Employee.objects.bulk_create(
        Employee(
            company=company,
            user_id=user_id,
            type=employee_type,
            department=created_departments[index] if index is not None else None,
            salary=Decimal(salary) if salary is not None else None,
            hired_at=hired_at,
        )
        for user_id, employee_type, index, salary, hired_at in employees
    )
    return company


def seed_demo_data() -> bool:
    """Fill an empty database with the demo tenants; return whether it seeded anything.

    Tenant ``demo`` has three companies (``demo-user`` owns Acme Corp and is a member of
    Globex; Initech is inactive); tenant ``other`` has one, to try cross-tenant 404s. Acme
    Corp and Umbrella are verified, so the public directory lists one of each tenant.
    """
    with transaction.atomic():
        if Company.objects.exists():
            return False
        for spec in _DEMO_COMPANIES:
            _create_company(DEMO_TENANT, spec)
        for spec in _OTHER_COMPANIES:
            _create_company(OTHER_TENANT, spec)
    return True


DEMO_USER_PASSWORD_DEFAULT = "demo-password"
#: What the demo user may do: read every company of the tenant, create companies, change and delete their own.
DEMO_USER_PERMISSIONS = (
    "companies.read.any",
    "companies.read.own",
    "companies.create",
    "companies.update.own",
    "companies.delete.own",
)


def ensure_demo_user() -> tuple[str, str | None]:
    """Create the Django user ``demo-user`` (who logs in at ``POST /auth/token``) unless it exists.

    Its permissions become the scopes of its tokens (``djfapi.auth.claims``). Returns
    ``(username, password)`` when it was just created, ``(username, None)`` otherwise.
    """
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    if user_model.objects.filter(username=DEMO_USER).exists():
        return DEMO_USER, None
    password = os.environ.get("DJFAPI_DEMO_USER_PASSWORD", DEMO_USER_PASSWORD_DEFAULT)
    user = user_model.objects.create_user(username=DEMO_USER, password=password)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="business", codename__in=DEMO_USER_PERMISSIONS)
    )
    return DEMO_USER, password


def ensure_admin_user() -> tuple[str, str | None]:
    """Create the superuser ``admin`` when there is no superuser yet.

    Returns ``(username, password)`` when it was just created, ``(username, None)`` when
    a superuser already existed (its password is unknown and never printed).
    """
    user_model = get_user_model()
    existing = user_model.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        return existing.get_username(), None
    password = os.environ.get("DJFAPI_DEMO_ADMIN_PASSWORD", "admin")
    user_model.objects.create_superuser(username="admin", email="admin@example.com", password=password)
    return "admin", password
