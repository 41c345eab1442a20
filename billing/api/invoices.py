"""Invoices API: list, detail, PDF, and staff finance's state changes."""

from decimal import Decimal
from typing import cast

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, CanSeeMoney, IsStaffFinance
from accounts.choices import TokenScope
from billing.api.filters import FilterSerializer, _filters, _scope
from billing.models import Invoice, InvoiceLine
from billing.selectors.exports import (
    filtered_invoices,
)
from billing.selectors.invoices import invoice_visible_or_404
from billing.services.documents import invoice_pdf_render
from billing.services.invoicing import credit_note_create, invoice_finalize, invoice_mark_paid, invoice_void


class InvoiceLineSerializer(serializers.ModelSerializer):
    region = serializers.CharField(source="region.code", default=None)
    lease = serializers.UUIDField(source="lease.public_id", default=None)

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "kind",
            "description",
            "region",
            "lease",
            "gpus",
            "gpu_hours",
            "price_per_gpu_hour",
            "amount",
        ]


class InvoiceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    organization = serializers.CharField(source="organization.slug")
    pay_url = serializers.CharField(source="stripe_hosted_url")

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "organization",
            "period_start",
            "period_end",
            "currency",
            "subtotal",
            "credits",
            "total",
            "issued_at",
            "paid_at",
            "voided_at",
            "pay_url",
        ]


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines"]


class InvoiceListApi(ListAPIView):
    """The invoices the caller may see, a page at a time: its organization's, or all for staff finance."""

    permission_classes = [CanSeeMoney]
    token_scope = TokenScope.BILLING
    serializer_class = InvoiceSerializer

    @extend_schema(parameters=[FilterSerializer])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Invoice]:
        request = cast(AuthenticatedRequest, self.request)
        return filtered_invoices(_scope(request), _filters(request))


class InvoiceDetailApi(APIView):
    """One invoice with its lines."""

    permission_classes = [CanSeeMoney]
    token_scope = TokenScope.BILLING

    @extend_schema(responses=InvoiceDetailSerializer)
    def get(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        return Response(InvoiceDetailSerializer(invoice).data)


class InvoicePdfApi(APIView):
    """The invoice as a PDF (finalized invoices only)."""

    permission_classes = [CanSeeMoney]
    token_scope = TokenScope.BILLING
    throttle_scope = "exports"

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The PDF.")})
    def get(self, request: AuthenticatedRequest, invoice_id: str) -> HttpResponse:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        pdf = invoice_pdf_render(invoice=invoice)
        response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        return response


class InvoiceChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class CreditNoteSerializer(InvoiceChangeSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


class _InvoiceActionApi(APIView):
    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING
    body: type[serializers.Serializer] | None = None

    def post(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        data = {}
        if self.body is not None:
            body = self.body(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        result = self.act(request, invoice, data)
        code = status.HTTP_201_CREATED if result.pk != invoice.pk else status.HTTP_200_OK
        return Response(InvoiceDetailSerializer(result).data, status=code)

    def act(self, request: AuthenticatedRequest, invoice: Invoice, data: dict) -> Invoice:
        raise NotImplementedError


class InvoiceFinalizeApi(_InvoiceActionApi):
    """Staff finance: draft → open, numbered."""

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    def post(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: AuthenticatedRequest, invoice: Invoice, data: dict) -> Invoice:
        return invoice_finalize(actor=request.user, invoice=invoice)


class InvoiceMarkPaidApi(_InvoiceActionApi):
    """Staff finance: open → paid, for money received outside Stripe."""

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    def post(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: AuthenticatedRequest, invoice: Invoice, data: dict) -> Invoice:
        return invoice_mark_paid(actor=request.user, invoice=invoice)


class InvoiceVoidApi(_InvoiceActionApi):
    """Staff finance: open → void; the number stays taken."""

    body = InvoiceChangeSerializer

    @extend_schema(request=InvoiceChangeSerializer, responses=InvoiceDetailSerializer)
    def post(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: AuthenticatedRequest, invoice: Invoice, data: dict) -> Invoice:
        return invoice_void(actor=request.user, invoice=invoice, reason=data["reason"])


class CreditNoteCreateApi(_InvoiceActionApi):
    """Staff finance: a correction of an open or paid invoice, as a new numbered credit note."""

    body = CreditNoteSerializer

    @extend_schema(request=CreditNoteSerializer, responses={201: InvoiceDetailSerializer})
    def post(self, request: AuthenticatedRequest, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: AuthenticatedRequest, invoice: Invoice, data: dict) -> Invoice:
        return credit_note_create(
            actor=request.user, invoice=invoice, amount=data["amount"], reason=data["reason"]
        )
