"""Fleet API: regions and their capacity."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors.viewer import current_organization
from clusters.models import Region
from clusters.selectors.capacity import gpus_free_now, regions_with_capacity, visitor_pools


class RegionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    us_state = serializers.CharField()
    gpus_total = serializers.IntegerField()
    gpus_healthy = serializers.IntegerField(help_text="GPUs that are healthy on available nodes.")
    gpus_free_now = serializers.SerializerMethodField(
        help_text="GPUs an on-demand lease of the caller's organization could take now (its pools)."
    )
    gpus_general = serializers.IntegerField()
    gpus_early_stage = serializers.IntegerField()

    def get_gpus_free_now(self, region: Region) -> int:
        return self.context["free_now"].get(region.pk, 0)


class RegionListApi(APIView):
    """Every region with its GPUs in total, healthy, free now for the caller, and in each pool."""

    @extend_schema(responses=RegionSerializer(many=True))
    def get(self, request: Request) -> Response:
        free_now = gpus_free_now(pools=visitor_pools(current_organization(request)))
        return Response(
            RegionSerializer(regions_with_capacity(), many=True, context={"free_now": free_now}).data
        )
