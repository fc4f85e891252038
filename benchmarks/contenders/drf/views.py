"""DRF viewsets: companies (with the budget aggregate as an extra action), and the
departments and employees of a company nested under its URL.

Each viewset prefetches what its serializer nests, in primary-key order, as a DRF user
who has met N+1 queries would. Nested routes look their company up first (404 when it
is not the caller's), like djfapi. Pagination is ``LimitOffsetPagination`` answering
``{"items": [...]}`` without a COUNT, which is what djfapi does unless ``?total=true``.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.models import Prefetch, QuerySet, Sum
from django.shortcuts import get_object_or_404
from rest_framework import filters, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from benchmarks.contenders.common import visible_companies
from benchmarks.contenders.drf.serializers import CompanySerializer, DepartmentSerializer, EmployeeSerializer
from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)

SALARY_SCOPE = "business.companies.read.any"


class ItemsPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000

    def paginate_queryset(self, queryset: QuerySet[Any], request: Any, view: Any = None) -> list[Any]:
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        return list(queryset[self.offset : self.offset + self.limit])

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"items": data})


class PrimaryKeyLastOrdering(filters.OrderingFilter):
    """``?order_by=-hired_at``; the primary key breaks ties, so pages are stable."""

    ordering_param = "order_by"

    def get_ordering(self, request: Any, queryset: QuerySet[Any], view: Any) -> list[str]:
        return [*(super().get_ordering(request, queryset, view) or ()), "pk"]


class BudgetSumSerializer(serializers.Serializer):
    value = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    id = serializers.UUIDField()


class CompanyViewSet(viewsets.ModelViewSet):
    serializer_class = CompanySerializer
    pagination_class = ItemsPagination

    def get_queryset(self) -> QuerySet[Company]:
        return (
            visible_companies(self.request.caller)
            .prefetch_related(
                Prefetch("departments", queryset=CompanyDepartment.objects.order_by("pk")),
                Prefetch("costcenters", queryset=CompanyCostcenter.objects.order_by("pk")),
            )
            .order_by("name", "pk")
        )

    def perform_create(self, serializer: Any) -> None:
        serializer.save(tenant_id=self.request.caller.tenant_id)

    def perform_destroy(self, instance: Company) -> None:
        instance.status = Company.Status.DELETED
        instance.save(update_fields=["status"])

    @action(detail=False, url_path="aggregate/sum/departments__budget")
    def budget_sums(self, request: Any) -> Response:
        if request.query_params.getlist("group_by") != ["id"]:
            raise ValidationError({"group_by": "only id is supported"})
        rows = visible_companies(request.caller).values("id").annotate(value=Sum("departments__budget")).order_by("id")
        return Response({"values": BudgetSumSerializer(rows, many=True).data})


class CompanyChildViewSet(viewsets.ModelViewSet):
    """A viewset under ``/companies/<company_pk>/``: the company must be visible (else 404)."""

    pagination_class = ItemsPagination

    @cached_property
    def company(self) -> Company:
        return get_object_or_404(visible_companies(self.request.caller), pk=self.kwargs["company_pk"])

    def perform_create(self, serializer: Any) -> None:
        serializer.save(company=self.company)


class DepartmentViewSet(CompanyChildViewSet):
    serializer_class = DepartmentSerializer

    def get_queryset(self) -> QuerySet[CompanyDepartment]:
        teams = Prefetch("teams", queryset=CompanyDepartmentTeam.objects.order_by("pk"))
        return CompanyDepartment.objects.filter(company=self.company).prefetch_related(teams).order_by("pk")


class EmployeeViewSet(CompanyChildViewSet):
    serializer_class = EmployeeSerializer
    filter_backends = [PrimaryKeyLastOrdering]
    ordering_fields = ["user_id", "type", "hired_at", "salary", "id"]
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Employee]:
        rows = Employee.objects.filter(company=self.company).prefetch_related("skills")
        types = self.request.query_params.getlist("type")
        return rows.filter(type__in=types) if types else rows

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)
        if not self.request.caller.has(SALARY_SCOPE):
            fields = serializer.child.fields if hasattr(serializer, "child") else serializer.fields
            fields.pop("salary")
        return serializer
