"""DRF serializers with the testproject's response shapes (nested lists included).

``company_id`` and ``department_id`` are the foreign keys' raw values, as djfapi shows
them; a salary is shown only to callers with ``read.any`` (the view drops it otherwise).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.manager import BaseManager
from rest_framework import serializers

from testproject.business.models import (
    Company,
    CompanyCostcenter,
    CompanyDepartment,
    CompanyDepartmentTeam,
    Employee,
)


class PrimaryKeyOrderedList(serializers.ListSerializer):
    """Related rows not prefetched (in order) by the view are read in primary-key order, as in djfapi."""

    def to_representation(self, data: Any) -> list[Any]:
        if isinstance(data, BaseManager):
            data = data.all()
            if data._result_cache is None:  # not served from a prefetch
                data = data.order_by("pk")
        return super().to_representation(data)


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = CompanyDepartmentTeam
        fields = ["id", "name", "size"]
        read_only_fields = ["id"]
        list_serializer_class = PrimaryKeyOrderedList


class DepartmentSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = CompanyDepartment
        fields = ["id", "name", "budget"]


class CostcenterSerializer(serializers.ModelSerializer):
    class Meta:
        model = CompanyCostcenter
        fields = ["id", "code", "name"]


class CompanySerializer(serializers.ModelSerializer):
    departments = DepartmentSummarySerializer(many=True, read_only=True)
    costcenters = CostcenterSerializer(many=True, read_only=True)

    class Meta:
        model = Company
        fields = ["id", "tenant_id", "name", "status", "is_verified", "created_at", "departments", "costcenters"]
        read_only_fields = ["tenant_id", "is_verified", "created_at"]


class DepartmentSerializer(serializers.ModelSerializer):
    """A department with its teams; teams may be created with it (DRF leaves that to us)."""

    company_id = serializers.UUIDField(read_only=True)
    teams = TeamSerializer(many=True, required=False)

    class Meta:
        model = CompanyDepartment
        fields = ["id", "company_id", "name", "budget", "teams"]
        extra_kwargs = {"budget": {"min_value": 0}}

    def create(self, validated_data: dict[str, Any]) -> CompanyDepartment:
        teams = validated_data.pop("teams", [])
        with transaction.atomic():
            department = CompanyDepartment.objects.create(**validated_data)
            CompanyDepartmentTeam.objects.bulk_create(CompanyDepartmentTeam(department=department, **t) for t in teams)
        return department

    def update(self, instance: CompanyDepartment, validated_data: dict[str, Any]) -> CompanyDepartment:
        if "teams" in validated_data:
            raise serializers.ValidationError({"teams": "teams are changed through their own route"})
        return super().update(instance, validated_data)


class EmployeeSerializer(serializers.ModelSerializer):
    company_id = serializers.UUIDField(read_only=True)
    department_id = serializers.UUIDField(read_only=True, allow_null=True)
    skill_ids = serializers.PrimaryKeyRelatedField(many=True, read_only=True, source="skills")

    class Meta:
        model = Employee
        fields = ["id", "company_id", "user_id", "type", "department_id", "salary", "hired_at", "skill_ids"]
