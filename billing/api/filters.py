"""Query filters shared by the invoice, export and revenue APIs."""

from datetime import UTC, datetime, time

from rest_framework import serializers

from accounts.api.permissions import AuthenticatedRequest
from accounts.selectors.viewer import current_organization
from billing.choices import InvoiceStatus
from billing.selectors.exports import (
    ExportFilter,
)
from billing.selectors.invoices import Scope, billing_scope


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
            raise serializers.ValidationError({"status": f"Unknown status: {', '.join(sorted(unknown))}."})
        return ExportFilter(
            period_from=_midnight(data.get("period_from")),
            period_to=_midnight(data.get("period_to")),
            statuses=statuses,
            region=data.get("region"),
        )


def _midnight(day: object) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None  # type: ignore[arg-type]


def _scope(request: AuthenticatedRequest) -> Scope:
    return billing_scope(
        request.user, getattr(request, "organization", None) or current_organization(request)
    )


def _filters(request: AuthenticatedRequest) -> ExportFilter:
    query = FilterSerializer(data={k: v for k, v in request.query_params.items() if k != "format"})
    query.is_valid(raise_exception=True)
    return query.to_filter()
