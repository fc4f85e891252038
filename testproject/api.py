"""The demo's router tree: companies with departments (and their teams), cost centres,
skills and employees (who have skills: many-to-many), secured by scoped JWTs and
filtered per tenant; and a public directory of verified companies that anyone may read
(``public=["get"]``). Companies, departments and employees have change feeds
(``.../subscribe``, see ``djfapi.live``). Employees take bulk creates, and two hooks
keep every company with at least one owner.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from djfapi.auth.router import auth_router
from djfapi.errors import Conflict, ValidationFailed
from djfapi.ratelimit import RateLimit
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.routing.hooks import WriteEvent
from djfapi.schemas import Access
from djfapi.security.jwt import JWTToken
from testproject.business import models, schemas

OWNER = models.Employee.Type.OWNER

token = JWTToken(scheme_name="DemoToken", description="A token from `python -m testproject token ...`")


def company_objects_filter(access: Access | None) -> Q:
    """The caller's tenant; with an ``own`` scope, only companies they own or administer."""
    assert access is not None
    q = Q(tenant_id=access.tenant_id)
    if access.scope is None or access.scope.selector != "any":
        owned = models.Employee.objects.filter(
            company=OuterRef("pk"),
            user_id=access.user_id,
            type__in=[models.Employee.Type.OWNER, models.Employee.Type.ADMIN],
        )
        q &= Q(Exists(owned))
    return q


employees = DjangoRouterSchema(
    name="employees",
    model=models.Employee,
    get=schemas.Employee,
    create=schemas.EmployeeCreate,
    update=schemas.EmployeeUpdate,
    create_multi=100,  # POST a list to hire a whole team at once, all or nothing
    aggregate_fields=["salary", "id"],
    aggregate_group_by=["type", "department_id", "hired_at__year"],
    subscribe=True,
)


@employees.hook("before_update")
def keep_an_owner_when_demoting(event: WriteEvent) -> None:
    """A company never loses its last owner: demoting them is refused (422)."""
    employee = event.instance
    if event.previous.get("type") == OWNER and employee.type != OWNER and not _other_owners(employee).exists():
        raise ValidationFailed(
            "the last owner of a company cannot be demoted; make someone else an owner first",
            loc=("body", "type"),
            value=employee.type,
        )


@employees.hook("before_delete")
def keep_an_owner_when_removing(event: WriteEvent) -> None:
    """A company never loses its last owner: removing them is refused (409)."""
    employee = event.instance
    if employee.type == OWNER and not _other_owners(employee).exists():
        raise Conflict(
            "The last owner of a company cannot be removed; make someone else an owner first.",
            code="last_owner",
        )


def _other_owners(employee: models.Employee) -> QuerySet[models.Employee]:
    # Two requests demoting a company's two owners at once must not both pass: each
    # first locks the company row (the same lock for both, so they queue, never deadlock).
    list(models.Company.objects.select_for_update().filter(pk=employee.company_id).values_list("pk", flat=True))
    return models.Employee.objects.filter(company_id=employee.company_id, type=OWNER).exclude(pk=employee.pk)


companies = DjangoRouterSchema(
    name="companies",
    model=models.Company,
    get=schemas.Company,
    create=schemas.CompanyCreate,
    update=schemas.CompanyUpdate,
    delete_status=models.Company.Status.DELETED,
    security=token,
    security_scopes=SecurityScopes(
        get=["business.companies.read.any", "business.companies.read.own"],
        post=["business.companies.create"],
        patch=["business.companies.update.any", "business.companies.update.own"],
        put=["business.companies.update.any", "business.companies.update.own"],
        delete=["business.companies.delete.any", "business.companies.delete.own"],
    ),
    objects_filter=company_objects_filter,
    # Per token subject: reads (list, get, aggregate) and writes each have a budget (429 beyond).
    rate_limits={"get": settings.DEMO_RATE_LIMITS["read"], "post": settings.DEMO_RATE_LIMITS["write"]},
    subscribe=True,
    pagination_options={"default_limit": 100, "max_limit": 1000, "default_order_by": ["name"]},
    filter_fields=["id", "name", "status", "is_verified", "created_at", "departments__count", "employees__type"],
    # name__icontains asks PostgreSQL for a trigram index on UPPER(name) (djfapi.W115). The demo
    # runs on SQLite too, where no GIN index can be declared, so W115 is silenced here; the
    # growth benchmark creates that index by SQL (benchmarks/growth_seed.py).
    silenced_checks=["djfapi.W115"],
    order_fields=["name", "status", "created_at", "departments__count", "id"],
    aggregate_fields=["id", "departments__count", "departments__budget"],
    aggregate_group_by=["status", "created_at__year", "id"],
    children=[
        DjangoRouterSchema(
            name="departments",
            model=models.CompanyDepartment,
            get=schemas.Department,
            create=schemas.DepartmentCreate,
            update=schemas.DepartmentUpdate,
            aggregate_fields=["budget", "teams__count"],
            subscribe=True,
            children=[
                DjangoRouterSchema(
                    name="teams",
                    model=models.CompanyDepartmentTeam,
                    get=schemas.Team,
                    create=schemas.TeamCreate,
                    update=schemas.TeamCreate,
                ),
            ],
        ),
        DjangoRouterSchema(
            name="costcenters",
            model=models.CompanyCostcenter,
            get=schemas.Costcenter,
            create=schemas.CostcenterCreate,
            update=schemas.CostcenterCreate,
        ),
        DjangoRouterSchema(
            name="skills",
            model=models.Skill,
            get=schemas.Skill,
            create=schemas.SkillCreate,
            update=schemas.SkillCreate,
        ),
        employees,
    ],
)

router = companies.router


def directory_filter(access: Access | None) -> Q:
    """The public directory: active, verified companies of every tenant, for anyone."""
    return Q(is_verified=True, status=models.Company.Status.ACTIVE)


directory = DjangoRouterSchema(
    name="directory",
    model=models.Company,
    get=schemas.CompanyListing,
    delete=False,
    security=token,
    public=["get"],  # GET /directory and GET /directory/{company_id} need no token
    rate_limits={"get": RateLimit(settings.DEMO_RATE_LIMITS["directory"], key="address")},
    objects_filter=directory_filter,
    pagination_options={"default_limit": 50, "max_limit": 200, "default_order_by": ["name"]},
    filter_fields=["name"],
    order_fields=["name"],
    silenced_checks=["djfapi.W115"],  # as for companies above: the demo runs on SQLite too
)

# POST /auth/token (login), /auth/refresh, /auth/logout, /auth/revoke and GET /auth/jwks.json
auth = auth_router(security=token)
