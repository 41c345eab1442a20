from django.apps import AppConfig


class ClustersConfig(AppConfig):
    """The fleet, leases on it, placement, lifecycle, telemetry and health."""

    name = "clusters"
    default_auto_field = "django.db.models.BigAutoField"
