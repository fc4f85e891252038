"""Models of the demo domain (the djfapi README example).

The primary keys are deliberately mixed: UUIDs almost everywhere, but an integer key on
``CompanyCostcenter`` so that the generated routes are exercised with both id types.
Constraint names are part of the API: they appear in 409 error codes
(``integrity:<name>``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone


class Company(models.Model):
    """The tenant-scoped root resource; ``status=deleted`` is its soft delete."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"
        DELETED = "deleted", "Deleted"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant_id = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    is_verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "company"
        verbose_name_plural = "companies"
        # What djfapi's index advisor (manage.py check, djfapi.W110-W116) asks for: every
        # list of /companies reads one tenant's rows, so those indexes lead with tenant_id. (W115's trigram
        # index for name__icontains is PostgreSQL's only: api.py silences it, see there.)
        indexes = [
            # The default order, then status (a page read by its keys — deep offsets, name__icontains — never
            # leaves the index), then UPPER(name), which name__icontains tests on PostgreSQL (W116).
            models.Index(
                F("tenant_id"), F("name"), F("id"), F("status"), Upper("name"), name="company_tenant_id_n_169624_idx"
            ),
            models.Index(fields=["tenant_id", "status"], name="company_tenant_id_status_idx"),
            models.Index(fields=["tenant_id", "is_verified"], name="company_tenant_id_i_b5f26d_idx"),
            models.Index(fields=["tenant_id", "created_at"], name="company_tenant_id_c_7d3634_idx"),
            # The public /directory lists verified, active companies of every tenant, by name.
            models.Index(
                F("is_verified"), F("status"), F("name"), F("id"), Upper("name"), name="company_is_verified_7157b7_idx"
            ),
        ]
        # Codenames without the app prefix: with the app label ``business`` the user's
        # ``get_all_permissions()`` are exactly the API scope strings.
        permissions = [
            ("companies.read.any", "Read any company of the tenant"),
            ("companies.read.own", "Read companies the user owns or administers"),
            ("companies.create", "Create companies"),
            ("companies.update.any", "Update any company of the tenant"),
            ("companies.update.own", "Update companies the user owns or administers"),
            ("companies.delete.any", "Delete any company of the tenant"),
            ("companies.delete.own", "Delete companies the user owns or administers"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant_id})"


class CompanyDepartment(models.Model):
    """A department of a company; its ``budget`` is what the aggregate routes sum up."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=200)
    budget = models.DecimalField(max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = "department"
        indexes = [
            models.Index(fields=["company", "id"], name="companydepartment_c_437a55_idx"),
            models.Index(fields=["company", "budget"], name="companydepartment_c_3ac23e_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class CompanyDepartmentTeam(models.Model):
    """A team inside a department: the third nesting level of the routes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey(CompanyDepartment, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    size = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "team"
        indexes = [models.Index(fields=["department", "id"], name="companydepartmentte_8f839d_idx")]

    def __str__(self) -> str:
        return self.name


class CompanyCostcenter(models.Model):
    """A cost centre; integer primary key on purpose, ``code`` unique per company."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="costcenters")
    code = models.CharField(max_length=32)
    name = models.CharField(max_length=200)

    class Meta:
        verbose_name = "cost centre"
        indexes = [models.Index(fields=["company", "id"], name="companycostcenter_c_a4ccfe_idx")]
        constraints = [
            models.UniqueConstraint(fields=["company", "code"], name="company_costcenter_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Skill(models.Model):
    """A skill a company tracks; employees have many, and each is held by many (many-to-many)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="skill_company_name_unique")]
        indexes = [models.Index(fields=["company", "id"], name="skill_company_id_idx")]

    def __str__(self) -> str:
        return self.name


class Employee(models.Model):
    """A user's membership in a company; OWNER and ADMIN make a company the user's "own"."""

    class Type(models.TextChoices):
        OWNER = "OWNER", "Owner"
        ADMIN = "ADMIN", "Admin"
        MEMBER = "MEMBER", "Member"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="employees")
    user_id = models.CharField(max_length=64, db_index=True)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.MEMBER)
    department = models.ForeignKey(
        CompanyDepartment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="employees",
    )
    salary = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    hired_at = models.DateField()
    skills = models.ManyToManyField(Skill, through="EmployeeSkill", related_name="employees", blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "user_id"], name="employee_company_user_unique"),
        ]
        indexes = [
            models.Index(fields=["company", "id"], name="employee_company_id_idx"),
            models.Index(fields=["company", "salary"], name="employee_company_salary_idx"),
            models.Index(fields=["company", "type"], name="employee_company_type_idx"),
            models.Index(fields=["company", "department"], name="employee_company_de_e4e7a0_idx"),
            models.Index(fields=["company", "hired_at"], name="employee_company_hired_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} ({self.type})"


class EmployeeSkill(models.Model):
    """The custom ``through`` model of employees and skills: when a skill was recorded."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="skill_links")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="employee_links")
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["employee", "skill"], name="employee_skill_unique")]
