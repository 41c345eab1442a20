"""Reads of a user's API tokens."""

from django.db.models import QuerySet

from accounts.models import ApiToken, User
from core.db import get_by_public_id_or_404


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first."""
    return ApiToken.objects.filter(user=user).select_related("organization").order_by("-created_at")


def api_token_of_user_or_404(user: User, public_id: str) -> ApiToken:
    """One of the user's tokens; anybody else's id is a 404."""
    return get_by_public_id_or_404(api_tokens_of(user), public_id)
