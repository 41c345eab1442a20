"""URL map: pages at the root, the API under /api/v1/."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.api import api_not_found

# Swagger UI's page carries one inline <style> and data: icons; its script is served separately
# (the split view), so only this page relaxes the content security policy, for styles and images.
swagger_ui = csp_update({"style-src": ["'unsafe-inline'"], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

# allauth answers its rate limits through this view (a 429 with Retry-After, in the site's page).
handler429 = "accounts.views.auth.too_many_requests"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", swagger_ui, name="api-docs"),
    path("", include("accounts.urls")),
    path("", include("clusters.urls")),
    path("", include("programs.urls")),
    path("", include("billing.urls")),
    # Last: what no route above answers under /api/ is a JSON 404, not the site's HTML page.
    re_path(r"^api/", api_not_found),
]
