"""Invoice PDFs: rendered once, stored, served."""

from io import BytesIO

from django.db import transaction
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.models import Invoice, InvoicePdf
from billing.services.refusals import InvoiceStateError

_STYLES = getSampleStyleSheet()


def invoice_pdf_bytes(invoice: Invoice) -> bytes:
    """Render a finalized invoice; the same invoice always renders the same content."""
    buffer = BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Voltpark {invoice.get_kind_display()} {invoice.number}",
        author="Voltpark",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
    )
    document.build(
        [*_header(invoice), Spacer(1, 6 * mm), _lines_table(invoice), Spacer(1, 4 * mm), _totals(invoice)]
    )
    return buffer.getvalue()


def _header(invoice: Invoice) -> list[Paragraph]:
    organization = invoice.organization
    return [
        Paragraph(f"Voltpark {invoice.get_kind_display()} {invoice.number}", _STYLES["Title"]),
        Paragraph(f"Billed to: {organization.name} ({organization.billing_email})", _STYLES["Normal"]),
        Paragraph(
            f"Period: {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d} (UTC); "
            f"issued {invoice.issued_at:%Y-%m-%d}",
            _STYLES["Normal"],
        ),
    ]


def _lines_table(invoice: Invoice) -> Table:
    rows = [["Description", "Region", "GPUs", "GPU-hours", "Price/GPU-h", f"Amount ({invoice.currency})"]]
    for line in invoice.lines.select_related("region").order_by("position"):
        rows.append(
            [
                Paragraph(line.description, _STYLES["BodyText"]),
                line.region.code if line.region else "",
                str(line.gpus or ""),
                str(line.gpu_hours) if line.gpu_hours is not None else "",
                str(line.price_per_gpu_hour) if line.price_per_gpu_hour is not None else "",
                str(line.amount),
            ]
        )
    table = Table(rows, colWidths=[70 * mm, 20 * mm, 12 * mm, 22 * mm, 22 * mm, 28 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    return table


def _totals(invoice: Invoice) -> Table:
    rows = [["Subtotal", invoice.subtotal], ["Credits", -invoice.credits], ["Total", invoice.total]]
    table = Table(rows, colWidths=[40 * mm, 30 * mm], hAlign="RIGHT")
    table.setStyle(
        TableStyle([("ALIGN", (1, 0), (1, -1), "RIGHT"), ("FONTNAME", (0, 2), (-1, 2), "Helvetica-Bold")])
    )
    return table


@transaction.atomic
def invoice_pdf_render(*, invoice: Invoice) -> InvoicePdf:
    """The invoice's stored PDF, rendered now if it is not there yet; safe to run twice."""
    if not invoice.is_finalized:
        raise InvoiceStateError("A draft has no PDF; finalize it first.")
    existing = InvoicePdf.objects.filter(invoice=invoice).first()
    if existing is not None:
        return existing
    content = invoice_pdf_bytes(invoice)
    InvoicePdf.objects.bulk_create([InvoicePdf(invoice=invoice, content=content)], ignore_conflicts=True)
    return InvoicePdf.objects.get(invoice=invoice)
