from django.urls import path

from clusters import api

urlpatterns = [
    path("regions/", api.RegionListApi.as_view(), name="api-regions"),
]
