"""Quota requests API: an owner asks for more quota and reads the organization's requests; staff
admins read the queue and decide."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, CanBook, IsStaffAdmin, OrganizationRequest
from accounts.models import GPU_QUOTA_MAX
from core.db import get_by_public_id_or_404
from programs.models import ANSWER_MAX_LENGTH, NOTE_MAX_LENGTH, QuotaRequest
from programs.selectors.quota_requests import quota_request_queue, quota_requests_of
from programs.services.quota_requests import quota_request_approve, quota_request_create, quota_request_reject


class QuotaRequestSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.CharField(source="organization.slug", read_only=True)
    gpus = serializers.IntegerField(min_value=1, max_value=GPU_QUOTA_MAX)
    why = serializers.CharField(max_length=ANSWER_MAX_LENGTH)
    needed_until = serializers.DateField(required=False, allow_null=True, default=None)

    class Meta:
        model = QuotaRequest
        fields = [
            "id",
            "organization",
            "gpus",
            "needed_until",
            "why",
            "quota_before",
            "status",
            "requested_at",
            "decided_at",
            "decision_note",
            "granted_gpu_quota",
            "expires_at",
            "expired_at",
        ]
        read_only_fields = [
            "quota_before",
            "status",
            "requested_at",
            "decided_at",
            "decision_note",
            "granted_gpu_quota",
            "expires_at",
            "expired_at",
        ]


class QuotaApproveSerializer(serializers.Serializer):
    gpu_quota = serializers.IntegerField(min_value=1, max_value=GPU_QUOTA_MAX)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=NOTE_MAX_LENGTH)


class QuotaRejectSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class QuotaRequestListApi(APIView):
    """The organization's quota requests (owners and members), or a new one (owners only)."""

    permission_classes = [CanBook]

    @extend_schema(responses=QuotaRequestSerializer(many=True))
    def get(self, request: OrganizationRequest) -> Response:
        return Response(QuotaRequestSerializer(quota_requests_of(request.organization), many=True).data)

    @extend_schema(request=QuotaRequestSerializer, responses={201: QuotaRequestSerializer})
    def post(self, request: OrganizationRequest) -> Response:
        data = QuotaRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = quota_request_create(
            actor=request.user, organization=request.organization, **data.validated_data
        )
        return Response(QuotaRequestSerializer(created).data, status=status.HTTP_201_CREATED)


class QuotaRequestQueueApi(APIView):
    """Staff admins: quota requests waiting for a decision, oldest first."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(responses=QuotaRequestSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(QuotaRequestSerializer(quota_request_queue(), many=True).data)


class QuotaRequestApproveApi(APIView):
    """Staff admins: approve with a quota and, if given, when it expires."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(request=QuotaApproveSerializer, responses=QuotaRequestSerializer)
    def post(self, request: AuthenticatedRequest, request_id: str) -> Response:
        quota_request = get_by_public_id_or_404(QuotaRequest.objects.all(), request_id)
        data = QuotaApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = quota_request_approve(actor=request.user, request=quota_request, **data.validated_data)
        return Response(QuotaRequestSerializer(decided).data)


class QuotaRequestRejectApi(APIView):
    """Staff admins: reject with a note for the owner."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(request=QuotaRejectSerializer, responses=QuotaRequestSerializer)
    def post(self, request: AuthenticatedRequest, request_id: str) -> Response:
        quota_request = get_by_public_id_or_404(QuotaRequest.objects.all(), request_id)
        data = QuotaRejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = quota_request_reject(actor=request.user, request=quota_request, **data.validated_data)
        return Response(QuotaRequestSerializer(decided).data)
