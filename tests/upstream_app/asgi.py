# The project's ASGI module, as upstream projects wrote it (without python-jose's
# JOSEError handler, which needs python-jose installed; djfapi does not use it).
from django.core.exceptions import ObjectDoesNotExist
from django.db.utils import IntegrityError
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from djfapi.handlers.error import (
    generic_exception_handler,
    http_exception_handler,
    integrity_error_handler,
    object_does_not_exist_handler,
)

from . import handwritten, routers

app = FastAPI(title="upstream")

app.include_router(routers.router.router)
app.include_router(handwritten.router, prefix="/manage/companies", tags=["manage"])

app.add_exception_handler(HTTPException, http_exception_handler)
app.add_exception_handler(Exception, generic_exception_handler)
app.add_exception_handler(ObjectDoesNotExist, object_does_not_exist_handler)
app.add_exception_handler(IntegrityError, integrity_error_handler)
