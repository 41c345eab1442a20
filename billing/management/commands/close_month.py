"""`manage.py close_month YYYY-MM`: invoice every organization with usage in that month."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.services.invoicing import month_close
from billing.services.refusals import MonthNotOver
from core.periods import parse_month


class Command(BaseCommand):
    help = "Meter a finished month and give each organization with usage one invoice; safe to run twice."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("month", help="The month to close, as YYYY-MM (UTC).")
        parser.add_argument("--keep-drafts", action="store_true", help="Leave the new invoices as drafts.")

    def handle(self, *args: Any, month: str, keep_drafts: bool, **options: Any) -> None:
        try:
            start = parse_month(month)
        except ValueError:
            raise CommandError(f"Give the month as YYYY-MM, for example 2026-03; not {month!r}.") from None
        try:
            result = month_close(period_start=start, finalize=not keep_drafts)
        except MonthNotOver as error:
            raise CommandError(error.detail) from None
        self.stdout.write(
            f"{month}: {result.invoices_created} invoices created ({result.finalized} finalized), "
            f"{result.invoices_existing} already existed."
        )
