"""URLs of the DRF contender: the testproject's paths, without trailing slashes.

Companies come from a router; departments and employees are nested under a company
with plain ``path()``s, as DRF has no nested router of its own.
"""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from benchmarks.contenders.drf.views import CompanyViewSet, DepartmentViewSet, EmployeeViewSet

router = SimpleRouter(trailing_slash=False)
router.register("companies", CompanyViewSet, basename="company")

_collection = {"get": "list", "post": "create"}
_item = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    *router.urls,
    path("companies/<uuid:company_pk>/departments", DepartmentViewSet.as_view(_collection)),
    path("companies/<uuid:company_pk>/departments/<uuid:pk>", DepartmentViewSet.as_view(_item)),
    path("companies/<uuid:company_pk>/employees", EmployeeViewSet.as_view(_collection)),
    path(
        "companies/<uuid:company_pk>/employees/<uuid:pk>",
        EmployeeViewSet.as_view({k: v for k, v in _item.items() if k != "delete"}),
    ),
]
