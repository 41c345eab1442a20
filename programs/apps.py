from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    """The early-stage program: applications, and staff's decisions (quota, pool, credit)."""

    name = "programs"
    default_auto_field = "django.db.models.BigAutoField"
