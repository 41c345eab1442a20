"""A URL map with stand-ins for pages still being built, to show their nav entries appear once routed."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from voltpark.urls import urlpatterns as real_urlpatterns


def stand_in(request: HttpRequest) -> HttpResponse:
    return HttpResponse("stand-in")


urlpatterns = [
    *real_urlpatterns,
    *(
        path(f"{name}/", stand_in, name=name)
        for name in [
            "booking",
            "lease-list",
            "billing",
            "fleet",
            "early-stage-queue",
            "staff-leases",
            "finance",
        ]
    ),
]
