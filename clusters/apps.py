from django.apps import AppConfig


class ClustersConfig(AppConfig):
    """The fleet, leases on it, placement, lifecycle, telemetry and health."""

    name = "clusters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Accounts (below clusters) withdraws a deleted key, or a removed member's keys, through this
        # registration: the keys leave every live lease in the same transaction.
        from accounts.services.ssh_keys import keys_withdrawn_register
        from clusters.services.lease_keys import lease_keys_withdraw

        keys_withdrawn_register(lease_keys_withdraw)
