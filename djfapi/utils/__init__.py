"""Glue between FastAPI and Django."""
