"""manage.py agent_tokens_rotate: re-encrypt every node's agent token under the newest key."""

from django.core.management.base import BaseCommand, CommandError

from clusters.services.agent_tokens import agent_tokens_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every node's agent token under the first key of AGENT_TOKEN_KEYS; after it, keys "
        "listed after the first can be dropped. Fails, naming them, if some token no key opens."
    )

    def handle(self, *args: object, **options: object) -> None:
        report = agent_tokens_rotate()
        self.stdout.write(f"Re-encrypted {report.rotated} agent tokens under the newest key.")
        if report.unreadable:
            raise CommandError(
                f"{len(report.unreadable)} nodes have an agent token no key of AGENT_TOKEN_KEYS opens "
                f"(set them again with their agent's token): {', '.join(report.unreadable[:20])}"
            )
