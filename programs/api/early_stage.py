"""Early-stage program API: an organization applies and reads its applications; staff decide."""

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import AuthenticatedRequest, CanBook, IsStaffAdmin, OrganizationRequest
from accounts.models import GPU_QUOTA_MAX
from core.db import get_by_public_id_or_404
from programs.models import NOTE_MAX_LENGTH, EarlyStageApplication
from programs.selectors.early_stage import early_stage_applications_of, early_stage_queue
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject


class ApplicationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.CharField(source="organization.slug", read_only=True)

    class Meta:
        model = EarlyStageApplication
        fields = [
            "id",
            "organization",
            "what_we_build",
            "stage",
            "funding",
            "gpus_wanted",
            "why",
            "status",
            "submitted_at",
            "decided_at",
            "decision_note",
            "granted_gpu_quota",
        ]
        read_only_fields = ["status", "submitted_at", "decided_at", "decision_note", "granted_gpu_quota"]


class ApproveSerializer(serializers.Serializer):
    gpu_quota = serializers.IntegerField(min_value=1, max_value=GPU_QUOTA_MAX)
    credit_amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    credit_expires_at = serializers.DateTimeField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=NOTE_MAX_LENGTH)


class RejectSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class ApplicationListApi(APIView):
    """The organization's applications (owners and members, as on the page), or a new one (owners).

    Finance members see the organization's money and nothing else, so not its applications.
    """

    permission_classes = [CanBook]

    @extend_schema(responses=ApplicationSerializer(many=True))
    def get(self, request: OrganizationRequest) -> Response:
        applications = early_stage_applications_of(request.organization)
        return Response(ApplicationSerializer(applications, many=True).data)

    @extend_schema(request=ApplicationSerializer, responses={201: ApplicationSerializer})
    def post(self, request: OrganizationRequest) -> Response:
        data = ApplicationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        application = early_stage_apply(
            actor=request.user, organization=request.organization, **data.validated_data
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicationQueueApi(APIView):
    """Staff admins: applications waiting for a decision, oldest first."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(responses=ApplicationSerializer(many=True))
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(ApplicationSerializer(early_stage_queue(), many=True).data)


class ApplicationApproveApi(APIView):
    """Staff admins: approve with a GPU quota and a credit grant."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(request=ApproveSerializer, responses=ApplicationSerializer)
    def post(self, request: AuthenticatedRequest, application_id: str) -> Response:
        application = get_by_public_id_or_404(EarlyStageApplication.objects.all(), application_id)
        data = ApproveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = early_stage_approve(actor=request.user, application=application, **data.validated_data)
        return Response(ApplicationSerializer(decided).data)


class ApplicationRejectApi(APIView):
    """Staff admins: reject with a note for the applicant."""

    permission_classes = [IsStaffAdmin]

    @extend_schema(request=RejectSerializer, responses=ApplicationSerializer)
    def post(self, request: AuthenticatedRequest, application_id: str) -> Response:
        application = get_by_public_id_or_404(EarlyStageApplication.objects.all(), application_id)
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = early_stage_reject(actor=request.user, application=application, **data.validated_data)
        return Response(ApplicationSerializer(decided).data)
