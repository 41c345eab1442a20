"""manage.py enforce_leases [--once]: start, end and fail due leases; warn owners before ends."""

import time
from argparse import ArgumentParser

from django.conf import settings
from django.core.management.base import BaseCommand

from clusters.services.lifecycle import EnforceReport, gpus_cleanup_check, leases_enforce


class Command(BaseCommand):
    help = "Enforce leases once (--once) or every LEASE_SWEEP_INTERVAL_S seconds, and print what changed."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")

    def handle(self, *args: object, **options: object) -> None:
        while True:
            self._print(leases_enforce(), gpus_cleanup_check())
            if options["once"]:
                return
            time.sleep(settings.LEASE_SWEEP_INTERVAL_S)

    def _print(self, report: EnforceReport, cleaned: int) -> None:
        self.stdout.write(
            f"Leases: {report.started} started, {report.ended} ended, {report.failed} failed, "
            f"{report.waiting} waiting for their nodes; {report.notices} ending notices sent; "
            f"{cleaned} GPUs reported clean."
        )
        for line in report.problems:
            self.stdout.write(self.style.WARNING(line))
