"""An application written for upstream djfapi 0.0.70, as its users wrote them.

The only edits are the ``djdantic`` imports, now ``djfapi`` ones (each marked
``# was: djdantic...``). ``routers.py`` is the router tree of upstream's README; the
rest is what a real upstream project around it did: hand-written routes with
``transfer_to_orm``, ``Pagination``/``depends_pagination``, ``djfapi.exceptions`` and
``JWTToken(name=, auto_error=, algorithm=)``, and the exception handlers of
``djfapi.handlers.error``. ``tests/test_upstream_compat.py`` runs it.

The Django models are the demo's (``models.py`` only gives them the README's names).
"""
