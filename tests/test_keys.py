"""Row keys as cheap dictionary keys (``djfapi.orm.keys``): the same groups as the keys themselves."""

from __future__ import annotations

import uuid

from djfapi.orm.keys import hashable_key, hashable_keys
from testproject.api import companies
from testproject.business.models import Company, CompanyDepartment


def test_uuids_group_by_their_int_and_other_keys_stay_as_they_are() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    copy = uuid.UUID(str(first))  # equal, not the same object: what two rows of one value hold

    assert hashable_keys([first, second, copy]) == [first.int, second.int, first.int]
    assert hashable_key(copy) == hashable_key(first) != hashable_key(second)
    assert hashable_keys(["a", 1]) == ["a", 1]
    assert hashable_keys([]) == []


def test_a_page_of_uuid_keyed_parents_gets_each_its_own_children(db: None) -> None:
    made = [Company.objects.create(tenant_id="t", name=f"c{number}") for number in range(3)]
    for company in made[:2]:
        CompanyDepartment.objects.create(company=company, name=f"{company.name} d")
    reader = companies.read_view(item=False, selection=None).reader
    assert reader is not None

    items = reader.read(Company.objects.filter(tenant_id="t").order_by("name"))

    assert [[d["name"] for d in item["departments"]] for item in items] == [["c0 d"], ["c1 d"], []]
