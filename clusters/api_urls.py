from django.urls import path

from clusters import api, booking_api

urlpatterns = [
    path("regions/", api.RegionListApi.as_view(), name="api-regions"),
    # --- Booking
    path("regions/<slug:code>/timeline/", booking_api.TimelineApi.as_view(), name="api-region-timeline"),
    path("availability/", booking_api.AvailabilityApi.as_view(), name="api-availability"),
    path("quotes/", booking_api.QuoteApi.as_view(), name="api-quotes"),
    path("leases/", booking_api.LeaseListApi.as_view(), name="api-leases"),
    path("leases/<str:lease_id>/", booking_api.LeaseDetailApi.as_view(), name="api-lease"),
    path("leases/<str:lease_id>/extend/", booking_api.LeaseExtendApi.as_view(), name="api-lease-extend"),
    path("leases/<str:lease_id>/release/", booking_api.LeaseReleaseApi.as_view(), name="api-lease-release"),
    path("leases/<str:lease_id>/cancel/", booking_api.LeaseCancelApi.as_view(), name="api-lease-cancel"),
]
