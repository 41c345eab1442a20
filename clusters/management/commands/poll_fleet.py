"""manage.py poll_fleet [--once]: poll every node's agent, store the readings, apply health rules."""

import time
from argparse import ArgumentParser

from django.conf import settings
from django.core.management.base import BaseCommand

from clusters.services.telemetry import SweepReport, fleet_poll

SHOWN = 20


class Command(BaseCommand):
    help = "Poll the fleet once (--once) or every POLL_INTERVAL_S seconds, and print what was found."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")

    def handle(self, *args: object, **options: object) -> None:
        while True:
            self._print(fleet_poll())
            if options["once"]:
                return
            time.sleep(settings.POLL_INTERVAL_S)

    def _print(self, report: SweepReport) -> None:
        self.stdout.write(
            f"Polled {report.nodes} nodes in {report.seconds:.2f}s: {report.answered} answered, "
            f"{len(report.unreachable)} unreachable; {report.gpus_read} GPU readings, "
            f"{report.samples_stored} samples stored."
        )
        if report.unreachable:
            names = ", ".join(report.unreachable[:SHOWN])
            more = f" and {len(report.unreachable) - SHOWN} more" if len(report.unreachable) > SHOWN else ""
            self.stdout.write(f"Unreachable: {names}{more}")
        for line in report.events_opened:
            self.stdout.write(self.style.WARNING(f"Health event: {line}"))
        if report.nodes_made_unhealthy:
            self.stdout.write(self.style.ERROR("Now unhealthy: " + ", ".join(report.nodes_made_unhealthy)))
        if report.events_ended:
            self.stdout.write(f"Health events ended: {report.events_ended}")
