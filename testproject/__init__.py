"""The demo project and test bed for djfapi: a Django project plus a FastAPI app."""
