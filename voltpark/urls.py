"""URL map: pages at the root, the API under /api/v1/."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

# Swagger UI's page carries one inline <style> and data: icons; its script is served separately
# (the split view), so only this page relaxes the content security policy, for styles and images.
swagger_ui = csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("clusters.api_urls")),
    path("", include("billing.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", swagger_ui, name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("", include("accounts.urls")),
    path("", include("clusters.urls")),
    path("", include("billing.urls")),
    path("", include("billing.finance_urls")),
]
