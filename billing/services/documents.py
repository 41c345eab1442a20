"""Rendering and storing a finalized invoice's PDF, once."""

from django.db import transaction

from billing.errors import InvoiceStateError
from billing.models import Invoice, InvoicePdf
from billing.pdf import invoice_pdf_bytes


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
