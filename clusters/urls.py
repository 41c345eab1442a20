from django.urls import path

from clusters import views

urlpatterns = [
    path("", views.home, name="home"),
]

# --- Run time: the Prometheus scrape endpoint (no trailing slash, as scrapers expect).
from clusters.metrics import metrics  # noqa: E402

urlpatterns += [path("metrics", metrics, name="metrics")]
