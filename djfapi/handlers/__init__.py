"""Upstream djfapi's ``djfapi.handlers`` package (deprecated; see ``djfapi.handlers.error``)."""
