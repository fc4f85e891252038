from collections.abc import Sequence
from uuid import UUID

from django.db import transaction

from djfapi.live import publish
from testproject.business.models import Company


def deactivate(ids: Sequence[UUID]) -> None:
    with transaction.atomic():
        Company.objects.filter(pk__in=ids).update(status="inactive")  # sends no signal
        for pk in ids:
            publish(Company, pk, "UPDATE")  # so publish it, in the same transaction
