"""Django admin for the demo domain, so the seeded data can be browsed and edited."""

from __future__ import annotations

from django.contrib import admin

from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)


class CompanyDepartmentInline(admin.TabularInline):
    model = CompanyDepartment
    extra = 0


class CompanyCostcenterInline(admin.TabularInline):
    model = CompanyCostcenter
    extra = 0


class CompanyDepartmentTeamInline(admin.TabularInline):
    model = CompanyDepartmentTeam
    extra = 0


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant_id", "status", "is_verified", "created_at")
    list_filter = ("status", "is_verified", "tenant_id")
    search_fields = ("name", "tenant_id", "id")
    date_hierarchy = "created_at"
    inlines = (CompanyDepartmentInline, CompanyCostcenterInline)


@admin.register(CompanyDepartment)
class CompanyDepartmentAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "budget")
    list_filter = ("company__tenant_id",)
    search_fields = ("name", "company__name")
    list_select_related = ("company",)
    inlines = (CompanyDepartmentTeamInline,)


@admin.register(CompanyDepartmentTeam)
class CompanyDepartmentTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "department", "size")
    list_filter = ("department__company__tenant_id",)
    search_fields = ("name", "department__name", "department__company__name")
    list_select_related = ("department",)


@admin.register(CompanyCostcenter)
class CompanyCostcenterAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "company")
    list_filter = ("company__tenant_id",)
    search_fields = ("code", "name", "company__name")
    list_select_related = ("company",)


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ("user_id", "company", "type", "department", "salary", "hired_at")
    list_filter = ("type", "company__tenant_id")
    search_fields = ("user_id", "company__name")
    date_hierarchy = "hired_at"
    list_select_related = ("company", "department")
    autocomplete_fields = ("company",)
