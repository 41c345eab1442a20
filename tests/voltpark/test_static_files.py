"""Static files in production: collected once under content-hashed names, compressed, cached forever."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

MANIFEST = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


@pytest.mark.slow
def test_collected_files_are_linked_by_hashed_name_and_served_compressed_for_a_year(
    tmp_path: Path, db: None
) -> None:
    with override_settings(
        STORAGES=MANIFEST, STATIC_ROOT=tmp_path, WHITENOISE_AUTOREFRESH=False, WHITENOISE_USE_FINDERS=False
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        url = static("css/voltpark.css")
        page = Client().get("/login/")
        answer = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")

    assert url.startswith("/static/css/voltpark.") and url != "/static/css/voltpark.css"
    assert page.status_code == 200 and f'href="{url}"' in page.content.decode()
    assert answer.status_code == 200 and answer["Content-Encoding"] == "gzip"
    assert "immutable" in answer["Cache-Control"]
    assert (tmp_path / "staticfiles.json").exists()
