"""djfapi's Django system checks (``manage.py check``; ``create_app`` runs them too)."""

from __future__ import annotations
