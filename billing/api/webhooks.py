"""Stripe's webhook."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.services.stripe_sync import stripe_webhook_receive


class WebhookOutcomeSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="applied, duplicate or ignored")


class StripeWebhookApi(APIView):
    """Stripe's webhook: signature checked, each event stored once, the invoice's state re-read.

    Stripe signs the raw body, so it is read as sent (request.body), never parsed first.
    """

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses=WebhookOutcomeSerializer)
    def post(self, request: Request) -> Response:
        outcome = stripe_webhook_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        return Response({"status": outcome})
