"""Staff finance on an organization's account: its balance, invoice terms, a bank transfer received,
lifting a suspension."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, IsStaffFinance
from accounts.choices import TokenScope
from accounts.models import Organization
from billing.api.balance import BalanceSchema, balance_json
from billing.choices import PaymentTerms
from billing.selectors.balance import balance_of
from billing.services.accounts import account_lift_suspension, account_set_terms
from billing.services.top_ups import top_up_amount, top_up_record


def _organization(slug: str) -> Organization:
    return get_object_or_404(Organization, slug=slug)


def _answer(organization: Organization) -> Response:
    return Response(balance_json(balance_of(organization, timezone.now())))


class AccountApi(APIView):
    """An organization's balance, terms and standing (staff finance)."""

    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING

    @extend_schema(responses=BalanceSchema)
    def get(self, request: AuthenticatedRequest, slug: str) -> Response:
        return _answer(_organization(slug))


class TermsSerializer(serializers.Serializer):
    terms = serializers.ChoiceField(choices=PaymentTerms.choices)
    net_days = serializers.IntegerField(min_value=0, max_value=120, required=False)
    credit_limit = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)


class TermsApi(APIView):
    """Put an organization on invoice terms (net days, credit limit), or back to prepaid."""

    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING

    @extend_schema(request=TermsSerializer, responses=BalanceSchema)
    def put(self, request: AuthenticatedRequest, slug: str) -> Response:
        organization = _organization(slug)
        body = TermsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account_set_terms(actor=request.user, organization=organization, **body.validated_data)
        return _answer(organization)


class TransferSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="USD received")
    reference = serializers.CharField(max_length=100, help_text="The bank's reference, recorded once.")


class TransferApi(APIView):
    """A bank transfer received: added to the balance once per reference."""

    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING

    @extend_schema(request=TransferSerializer, responses=BalanceSchema)
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        organization = _organization(slug)
        body = TransferSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        top_up_record(
            organization=organization,
            amount=top_up_amount(data["amount"]),
            external_id=f"transfer:{data['reference']}",
            description=f"Bank transfer {data['reference']}",
            actor=request.user,
        )
        return _answer(organization)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class LiftSuspensionApi(APIView):
    """Let a suspended organization book again (an overdue invoice settled, a dispute resolved)."""

    permission_classes = [IsStaffFinance]
    token_scope = TokenScope.BILLING

    @extend_schema(request=ReasonSerializer, responses=BalanceSchema)
    def post(self, request: AuthenticatedRequest, slug: str) -> Response:
        organization = _organization(slug)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account_lift_suspension(
            actor=request.user, organization=organization, reason=body.validated_data["reason"]
        )
        return _answer(organization)
