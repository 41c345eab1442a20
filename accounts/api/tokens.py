"""Accounts API: the caller's API tokens, listed, made (the secret shown once) and revoked."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, require_sso
from accounts.choices import TokenScope
from accounts.models import ApiToken
from accounts.selectors.tokens import api_token_of_user_or_404, api_tokens_of
from accounts.selectors.viewer import current_organization
from accounts.services.tokens import api_token_create, api_token_revoke


class ApiTokenSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=TokenScope.choices))
    is_active = serializers.BooleanField(help_text="Neither revoked nor expired.")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "organization",
            "scopes",
            "expires_at",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class IssuedTokenSerializer(ApiTokenSerializer):
    secret = serializers.CharField(help_text="The token itself, shown only in this answer.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=TokenScope.choices),
        min_length=1,
        max_length=len(TokenScope.values),
        required=False,
        help_text="What the token may do (its user's role limits it further); default: every scope.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="Default: never.")


class ApiTokenListApi(ListAPIView):
    """The caller's API tokens, newest first, or make one (its secret is in this answer only)."""

    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        return api_tokens_of(self.request.user)  # type: ignore[arg-type]

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: IssuedTokenSerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made_with = request.auth if isinstance(request.auth, ApiToken) else None
        organization = current_organization(request)
        require_sso(request, organization)
        issued = api_token_create(
            user=request.user,
            organization=organization,
            made_with=made_with,
            **body.validated_data,
        )
        answer: dict[str, Any] = {**ApiTokenSerializer(issued.token).data, "secret": issued.secret}
        return Response(answer, status=status.HTTP_201_CREATED)


class ApiTokenDetailApi(APIView):
    """Revoke one of the caller's tokens: it is refused from the next request on."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: AuthenticatedRequest, token_id: str) -> Response:
        api_token_revoke(actor=request.user, token=api_token_of_user_or_404(request.user, token_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
