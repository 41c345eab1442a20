"""Accounts API: the caller's SSH keys."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest
from accounts.models import SshKey
from accounts.selectors.ssh_keys import ssh_key_of_user_or_404, ssh_keys_of
from accounts.services.ssh_keys import ssh_key_add, ssh_key_delete


class SshKeySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)

    class Meta:
        model = SshKey
        fields = ["id", "name", "key_type", "bits", "fingerprint", "public_key", "created_at"]
        read_only_fields = fields


class SshKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    public_key = serializers.CharField(max_length=16384)


class SshKeyListApi(APIView):
    """List the caller's SSH keys, or add one."""

    @extend_schema(responses=SshKeySerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(SshKeySerializer(ssh_keys_of(request.user), many=True).data)

    @extend_schema(request=SshKeyCreateSerializer, responses={201: SshKeySerializer})
    def post(self, request: AuthenticatedRequest) -> Response:
        data = SshKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = ssh_key_add(user=request.user, **data.validated_data)
        return Response(SshKeySerializer(key).data, status=status.HTTP_201_CREATED)


class SshKeyDetailApi(APIView):
    """Remove one of the caller's SSH keys."""

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, key_id: str) -> Response:
        ssh_key_delete(user=request.user, key=ssh_key_of_user_or_404(request.user, key_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
