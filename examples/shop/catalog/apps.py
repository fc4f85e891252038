from django.apps import AppConfig


class CatalogConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "catalog"

    def ready(self) -> None:
        # The change feed captures the writes of a model once a node with subscribe=True
        # is declared for it. Importing the tree here makes every process publish its
        # writes (the admin, manage.py shell, management commands), not only the API's.
        from catalog import api  # noqa: F401
