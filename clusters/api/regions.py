"""Fleet API: regions and their capacity."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.selectors.capacity import regions_with_capacity


class RegionSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    us_state = serializers.CharField()
    gpus_total = serializers.IntegerField()
    gpus_healthy = serializers.IntegerField(help_text="GPUs that are healthy on available nodes.")
    gpus_general = serializers.IntegerField()
    gpus_early_stage = serializers.IntegerField()


class RegionListApi(APIView):
    """Every region with its GPUs in total, healthy, and in each pool."""

    @extend_schema(responses=RegionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(RegionSerializer(regions_with_capacity(), many=True).data)
