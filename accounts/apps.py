from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, organizations, roles, API tokens and SSH keys."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import adapters
        from accounts.api import schema  # noqa: F401  (registers the OpenAPI extension)

        adapters.connect_mfa_audit()
        adapters.connect_sso_audit()
