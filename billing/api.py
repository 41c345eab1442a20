"""Billing API: invoices, their PDFs and state changes, exports, usage, revenue, Stripe's webhook."""

from datetime import UTC, datetime, time
from decimal import Decimal

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.context import current_organization
from accounts.permissions import CanBook, CanSeeInvoices, IsStaffFinance
from billing import exports
from billing.choices import InvoiceStatus
from billing.errors import BillingError
from billing.models import Invoice, InvoiceLine
from billing.periods import month_of
from billing.selectors import (
    ExportFilter,
    Scope,
    billing_scope,
    filtered_invoice_lines,
    filtered_invoices,
    invoice_visible_or_404,
    revenue_summary,
    usage_by_hour,
    usage_hours_visible_to,
)
from billing.services.documents import invoice_pdf_render
from billing.services.invoicing import credit_note_create, invoice_finalize, invoice_mark_paid, invoice_void
from billing.services.stripe_sync import WebhookRefused, stripe_webhook_receive
from voltpark.api import ApiError


class CanSeeMoney(BasePermission):
    """Staff finance, or an owner or finance member of the organization the request acts in."""

    message = CanSeeInvoices.message

    def has_permission(self, request: Request, view: APIView) -> bool:
        if IsStaffFinance().has_permission(request, view):
            return True
        check = CanSeeInvoices()
        allowed = check.has_permission(request, view)
        self.message = check.message
        return allowed


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


class FilterSerializer(serializers.Serializer):
    period_from = serializers.DateField(required=False, help_text="Periods starting on or after (UTC).")
    period_to = serializers.DateField(required=False, help_text="Periods starting before (UTC).")
    status = serializers.CharField(required=False, help_text="Comma-separated: draft,open,paid,void.")
    region = serializers.SlugField(required=False)

    def to_filter(self) -> ExportFilter:
        data = self.validated_data
        statuses = tuple(s for s in data.get("status", "").split(",") if s)
        unknown = set(statuses) - set(InvoiceStatus.values)
        if unknown:
            raise ApiError(code="invalid", detail=f"Unknown status: {', '.join(sorted(unknown))}.")
        return ExportFilter(
            period_from=_midnight(data.get("period_from")),
            period_to=_midnight(data.get("period_to")),
            statuses=statuses,
            region=data.get("region"),
        )


def _midnight(day: object) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None  # type: ignore[arg-type]


def _scope(request: Request) -> Scope:
    return billing_scope(
        request.user, getattr(request, "organization", None) or current_organization(request)
    )


def _filters(request: Request) -> ExportFilter:
    query = FilterSerializer(data={k: v for k, v in request.query_params.items() if k != "format"})
    query.is_valid(raise_exception=True)
    return query.to_filter()


def _refusal(error: BillingError) -> ApiError:
    return ApiError(code=error.code, detail=error.message, status_code=status.HTTP_409_CONFLICT)


class InvoiceListApi(APIView):
    """The invoices the caller may see: its organization's, or every one for staff finance."""

    permission_classes = [CanSeeMoney]

    @extend_schema(parameters=[FilterSerializer], responses=InvoiceSerializer(many=True))
    def get(self, request: Request) -> Response:
        invoices = filtered_invoices(_scope(request), _filters(request))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(invoices, request, view=self)
        return paginator.get_paginated_response(InvoiceSerializer(page, many=True).data)


class InvoiceDetailApi(APIView):
    """One invoice with its lines."""

    permission_classes = [CanSeeMoney]

    @extend_schema(responses=InvoiceDetailSerializer)
    def get(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        return Response(InvoiceDetailSerializer(invoice).data)


class InvoicePdfApi(APIView):
    """The invoice as a PDF (finalized invoices only)."""

    permission_classes = [CanSeeMoney]

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(description="The PDF.")})
    def get(self, request: Request, invoice_id: str) -> HttpResponse:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        try:
            pdf = invoice_pdf_render(invoice=invoice)
        except BillingError as error:
            raise _refusal(error) from None
        response = HttpResponse(bytes(pdf.content), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
        return response


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class CreditNoteSerializer(ReasonSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


class _InvoiceActionApi(APIView):
    permission_classes = [IsStaffFinance]
    body: type[serializers.Serializer] | None = None

    def post(self, request: Request, invoice_id: str) -> Response:
        invoice = invoice_visible_or_404(_scope(request), invoice_id)
        data = {}
        if self.body is not None:
            body = self.body(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
        try:
            result = self.act(request, invoice, data)
        except BillingError as error:
            raise _refusal(error) from None
        code = status.HTTP_201_CREATED if result.pk != invoice.pk else status.HTTP_200_OK
        return Response(InvoiceDetailSerializer(result).data, status=code)

    def act(self, request: Request, invoice: Invoice, data: dict) -> Invoice:
        raise NotImplementedError


class InvoiceFinalizeApi(_InvoiceActionApi):
    """Staff finance: draft → open, numbered."""

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    def post(self, request: Request, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: Request, invoice: Invoice, data: dict) -> Invoice:
        return invoice_finalize(actor=request.user, invoice=invoice)


class InvoiceMarkPaidApi(_InvoiceActionApi):
    """Staff finance: open → paid, for money received outside Stripe."""

    @extend_schema(request=None, responses=InvoiceDetailSerializer)
    def post(self, request: Request, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: Request, invoice: Invoice, data: dict) -> Invoice:
        return invoice_mark_paid(actor=request.user, invoice=invoice)


class InvoiceVoidApi(_InvoiceActionApi):
    """Staff finance: open → void; the number stays taken."""

    body = ReasonSerializer

    @extend_schema(request=ReasonSerializer, responses=InvoiceDetailSerializer)
    def post(self, request: Request, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: Request, invoice: Invoice, data: dict) -> Invoice:
        return invoice_void(actor=request.user, invoice=invoice, reason=data["reason"])


class CreditNoteCreateApi(_InvoiceActionApi):
    """Staff finance: a correction of an open or paid invoice, as a new numbered credit note."""

    body = CreditNoteSerializer

    @extend_schema(request=CreditNoteSerializer, responses={201: InvoiceDetailSerializer})
    def post(self, request: Request, invoice_id: str) -> Response:
        return super().post(request, invoice_id)

    def act(self, request: Request, invoice: Invoice, data: dict) -> Invoice:
        return credit_note_create(
            actor=request.user, invoice=invoice, amount=data["amount"], reason=data["reason"]
        )


def _csv(name: str, header: list[str], rows: object) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        exports.csv_stream(header, rows),
        content_type="text/csv; charset=utf-8; header=present",  # type: ignore[arg-type]
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _xlsx(name: str, title: str, header: list[str], rows: object) -> FileResponse:
    handle = exports.xlsx_file(title, header, rows)  # type: ignore[arg-type]
    return FileResponse(
        handle,
        as_attachment=True,
        filename=name,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


class _ExportApi(APIView):
    permission_classes = [CanSeeMoney]

    @extend_schema(
        parameters=[FilterSerializer], responses={(200, "text/csv"): OpenApiResponse(description="File")}
    )
    def get(self, request: Request) -> HttpResponse:
        return self.export(_scope(request), _filters(request))

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        raise NotImplementedError


class InvoicesCsvApi(_ExportApi):
    """Invoices as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        rows = exports.invoice_rows(filtered_invoices(scope, wanted))
        return _csv("invoices.csv", exports.INVOICE_COLUMNS, rows)


class InvoicesXlsxApi(_ExportApi):
    """Invoices as an XLSX workbook."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        rows = exports.invoice_rows(filtered_invoices(scope, wanted))
        return _xlsx("invoices.xlsx", "Invoices", exports.INVOICE_COLUMNS, rows)


class InvoiceLinesCsvApi(_ExportApi):
    """Invoice lines as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        rows = exports.line_rows(filtered_invoice_lines(scope, wanted))
        return _csv("invoice-lines.csv", exports.LINE_COLUMNS, rows)


class InvoiceLinesXlsxApi(_ExportApi):
    """Invoice lines as an XLSX workbook."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        rows = exports.line_rows(filtered_invoice_lines(scope, wanted))
        return _xlsx("invoice-lines.xlsx", "Invoice lines", exports.LINE_COLUMNS, rows)


class FocusCsvApi(_ExportApi):
    """FOCUS 1.2 cost and usage rows, one per lease and hour, as CSV."""

    def export(self, scope: Scope, wanted: ExportFilter) -> HttpResponse:
        rows = exports.focus_rows(usage_hours_visible_to(scope, wanted))
        return _csv("focus.csv", exports.FOCUS_COLUMNS, rows)


class UsageQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="`from`; default: start of this month.")
    end = serializers.DateTimeField(required=False, help_text="`to`; default: now.")


class UsageHourSerializer(serializers.Serializer):
    hour = serializers.DateTimeField()
    gpu_seconds = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=24, decimal_places=12)


class CanSeeUsage(BasePermission):
    """Every member of the organization sees its usage."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return CanBook().has_permission(request, view) or CanSeeInvoices().has_permission(request, view)


class UsageApi(APIView):
    """The organization's usage by clock hour in [from, to)."""

    permission_classes = [CanSeeUsage]

    @extend_schema(responses=UsageHourSerializer(many=True))
    def get(self, request: Request) -> Response:
        params = {"start": request.query_params.get("from"), "end": request.query_params.get("to")}
        query = UsageQuerySerializer(data={k: v for k, v in params.items() if v})
        query.is_valid(raise_exception=True)
        now = timezone.now()
        start = query.validated_data.get("start") or month_of(now)
        end = query.validated_data.get("end") or now
        rows = usage_by_hour(request.organization, start, end)
        return Response(UsageHourSerializer(rows, many=True).data)


class RevenueRowSerializer(serializers.Serializer):
    month = serializers.DateTimeField()
    region = serializers.CharField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    gpu_hours_sold = serializers.DecimalField(max_digits=16, decimal_places=3)
    gpu_hours_available = serializers.DecimalField(max_digits=16, decimal_places=3)
    utilization = serializers.DecimalField(max_digits=6, decimal_places=4)


class RevenueApi(APIView):
    """Staff finance: revenue and fleet utilization by month and region."""

    permission_classes = [IsStaffFinance]

    @extend_schema(parameters=[FilterSerializer], responses=RevenueRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        wanted = _filters(request)
        now = timezone.now()
        start = wanted.period_from or month_of(now)
        end = wanted.period_to or now
        return Response(RevenueRowSerializer(revenue_summary(start, end), many=True).data)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """Stripe's webhook: signature checked, each event stored once, the invoice's state re-read."""
    try:
        outcome = stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except WebhookRefused as refused:
        return JsonResponse({"code": refused.code, "detail": refused.message}, status=400)
    return JsonResponse({"status": outcome})
