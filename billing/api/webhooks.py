"""Stripe's webhook."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services.stripe_sync import WebhookRefused, stripe_webhook_receive


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
