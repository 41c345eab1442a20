"""Balance API: what is left and how fast it goes, the ledger, the owner's limits, card and top-ups."""

from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import CanPay, CanSeeInvoices, OrganizationRequest
from accounts.choices import TokenScope
from billing.choices import LedgerKind, PaymentTerms
from billing.models import LedgerEntry
from billing.selectors.balance import Balance, balance_of
from billing.services.accounts import SETTINGS_FIELDS, SpendSettings, account_settings_update
from billing.services.payments import card_setup_start, top_up_start


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2, **kwargs)


class CardSchema(serializers.Serializer):
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)


class BalanceSchema(serializers.Serializer):
    currency = serializers.CharField()
    terms = serializers.ChoiceField(choices=PaymentTerms.choices)
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="The ledger's sum.")
    not_yet_debited = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="On-demand usage run since the last debit."
    )
    available = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Balance less that usage."
    )
    credit_left = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="Part of it that is credit."
    )
    spend_rate_per_hour = serializers.DecimalField(
        max_digits=14, decimal_places=4, help_text="What running on-demand leases cost per hour."
    )
    reserved_running_per_hour = serializers.DecimalField(
        max_digits=14, decimal_places=4, help_text="Running reserved leases per hour (already paid)."
    )
    runway_hours = serializers.FloatField(allow_null=True, help_text="Hours until it runs out at that rate.")
    runs_out_at = serializers.DateTimeField(allow_null=True)
    month_spend = serializers.DecimalField(max_digits=14, decimal_places=2)
    monthly_spend_limit = _money(allow_null=True)
    low_balance_threshold = _money(allow_null=True)
    auto_top_up_threshold = _money(allow_null=True)
    auto_top_up_amount = _money(allow_null=True)
    card = CardSchema(allow_null=True)
    credit_limit = _money()
    suspended = serializers.BooleanField()
    suspended_reason = serializers.CharField()


def balance_json(found: Balance) -> dict[str, Any]:
    account = found.account
    runway = found.runway
    card = (
        {
            "brand": account.card_brand,
            "last4": account.card_last4,
            "exp_month": account.card_exp_month,
            "exp_year": account.card_exp_year,
        }
        if account.has_card
        else None
    )
    return {
        "currency": "USD",
        "terms": account.terms,
        "balance": str(found.balance),
        "not_yet_debited": str(found.not_yet_debited),
        "available": str(found.available),
        "credit_left": str(found.credit_left),
        "spend_rate_per_hour": str(found.rate.on_demand_per_hour),
        "reserved_running_per_hour": str(found.rate.reserved_per_hour),
        "runway_hours": None if runway is None else round(runway.total_seconds() / 3600, 2),
        "runs_out_at": found.runs_out_at.isoformat() if found.runs_out_at else None,
        "month_spend": str(found.month_spend),
        "monthly_spend_limit": _text(account.monthly_spend_limit),
        "low_balance_threshold": _text(account.low_balance_threshold),
        "auto_top_up_threshold": _text(account.auto_top_up_threshold),
        "auto_top_up_amount": _text(account.auto_top_up_amount),
        "card": card,
        "credit_limit": str(account.credit_limit),
        "suspended": account.suspended_at is not None,
        "suspended_reason": account.suspended_reason,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class BalanceApi(APIView):
    """The organization's balance, credit, spend rate and runway (owners and finance members)."""

    permission_classes = [CanSeeInvoices]
    token_scope = TokenScope.BILLING

    @extend_schema(responses=BalanceSchema)
    def get(self, request: OrganizationRequest) -> Response:
        return Response(balance_json(balance_of(request.organization, timezone.now())))


class LedgerEntrySerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=LedgerKind.choices)

    class Meta:
        model = LedgerEntry
        fields = ["sequence", "at", "kind", "amount", "balance_after", "description"]


class LedgerApi(ListAPIView):
    """The organization's ledger, newest entry first."""

    permission_classes = [CanSeeInvoices]
    token_scope = TokenScope.BILLING
    serializer_class = LedgerEntrySerializer

    def get_queryset(self) -> Any:
        organization = self.request.organization  # type: ignore[attr-defined]
        return LedgerEntry.objects.filter(organization=organization).order_by("-sequence")


class SettingsSerializer(serializers.Serializer):
    monthly_spend_limit = _money(allow_null=True, required=False)
    low_balance_threshold = _money(allow_null=True, required=False)
    auto_top_up_threshold = _money(allow_null=True, required=False)
    auto_top_up_amount = _money(allow_null=True, required=False)


class BalanceSettingsApi(APIView):
    """Set the monthly spend limit, the low-balance warning and automatic top-up (null turns one off)."""

    permission_classes = [CanPay]
    token_scope = TokenScope.BILLING

    @extend_schema(request=SettingsSerializer, responses=BalanceSchema)
    def put(self, request: OrganizationRequest) -> Response:
        body = SettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        account_settings_update(
            actor=request.user,
            organization=request.organization,
            wanted=SpendSettings(**{name: data.get(name) for name in SETTINGS_FIELDS}),
        )
        return Response(balance_json(balance_of(request.organization, timezone.now())))


class TopUpSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="USD")


class RedirectSchema(serializers.Serializer):
    url = serializers.URLField(help_text="Stripe's hosted page: send the owner there.")


class TopUpApi(APIView):
    """Start a top-up: Stripe Checkout's page for the amount (the balance grows once Stripe says paid)."""

    permission_classes = [CanPay]
    token_scope = TokenScope.BILLING

    @extend_schema(request=TopUpSerializer, responses={201: RedirectSchema})
    def post(self, request: OrganizationRequest) -> Response:
        body = TopUpSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        url = top_up_start(
            actor=request.user, organization=request.organization, amount=body.validated_data["amount"]
        )
        return Response({"url": url}, status=status.HTTP_201_CREATED)


class CardSetupApi(APIView):
    """Start adding a card: Stripe Checkout's page in setup mode."""

    permission_classes = [CanPay]
    token_scope = TokenScope.BILLING

    @extend_schema(request=None, responses={201: RedirectSchema})
    def post(self, request: OrganizationRequest) -> Response:
        url = card_setup_start(actor=request.user, organization=request.organization)
        return Response({"url": url}, status=status.HTTP_201_CREATED)
