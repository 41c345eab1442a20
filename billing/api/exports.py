"""Export API: invoices, lines and FOCUS as CSV or XLSX, streamed."""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema
from openpyxl import Workbook
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, CanSeeMoney
from accounts.choices import TokenScope
from billing.api.filters import FilterSerializer, _filters, _scope
from billing.selectors.exports import (
    CHUNK,
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    ExportFilter,
    filtered_invoice_lines,
    filtered_invoices,
    invoice_rows,
    line_rows,
)
from billing.selectors.focus import FOCUS_COLUMNS, focus_rows
from billing.selectors.invoices import Scope


def csv_stream(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """RFC 4180 CSV as UTF-8 chunks of about CHUNK rows each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(row)
        if count % CHUNK == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def xlsx_file(title: str, header: list[str], rows: Iterable[list[Any]]) -> IO[bytes]:
    """An XLSX workbook in a temporary file, written row by row (openpyxl's write-only mode)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title)
    sheet.append(header)
    for row in rows:
        sheet.append([_cell(value) for value in row])
    handle = tempfile.TemporaryFile()  # noqa: SIM115 (the response streams it, then closes it)
    workbook.save(handle)
    handle.seek(0)
    return handle


def _cell(value: Any) -> Any:
    # Dates (naive UTC, billing/selectors/exports.py) and amounts go in as Excel dates and numbers.
    if isinstance(value, Decimal | int | float | str | datetime) or value is None:
        return value
    return str(value)


def _csv(name: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_stream(header, rows),
        content_type="text/csv; charset=utf-8; header=present",
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _xlsx(name: str, title: str, header: list[str], rows: Iterable[list[Any]]) -> FileResponse:
    handle = xlsx_file(title, header, rows)
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


class _ExportApi(APIView):
    permission_classes = [CanSeeMoney]
    token_scope = TokenScope.BILLING
    throttle_scope = "exports"

    @extend_schema(
        parameters=[FilterSerializer], responses={(200, "text/csv"): OpenApiResponse(description="File")}
    )
    def get(self, request: AuthenticatedRequest) -> HttpResponseBase:
        return self.export(_scope(request), _filters(request))

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        raise NotImplementedError


class InvoicesCsvApi(_ExportApi):
    """Invoices as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        rows = invoice_rows(filtered_invoices(scope, wanted))
        return _csv("invoices.csv", INVOICE_COLUMNS, rows)


class InvoicesXlsxApi(_ExportApi):
    """Invoices as an XLSX workbook."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        rows = invoice_rows(filtered_invoices(scope, wanted), excel=True)
        return _xlsx("invoices.xlsx", "Invoices", INVOICE_COLUMNS, rows)


class InvoiceLinesCsvApi(_ExportApi):
    """Invoice lines as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        rows = line_rows(filtered_invoice_lines(scope, wanted))
        return _csv("invoice-lines.csv", LINE_COLUMNS, rows)


class InvoiceLinesXlsxApi(_ExportApi):
    """Invoice lines as an XLSX workbook."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        rows = line_rows(filtered_invoice_lines(scope, wanted), excel=True)
        return _xlsx("invoice-lines.xlsx", "Invoice lines", LINE_COLUMNS, rows)


class FocusCsvApi(_ExportApi):
    """FOCUS 1.2 cost and usage rows (usage by lease and hour, reservations, credits) as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponseBase:
        rows = focus_rows(scope, wanted)
        return _csv("focus.csv", FOCUS_COLUMNS, rows)
