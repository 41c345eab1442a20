"""The content security policy: nothing from other sites, no inline script or style, never framed."""

import re

import pytest
from django.contrib.staticfiles import finders

from tests.voltpark.helpers import assert_no_inline_code, assert_strict, directives

PAGES_ANONYMOUS = ["/", "/login/", "/signup/", "/password/reset/"]
PAGES_SIGNED_IN = [
    "/",
    "/organization/",
    "/account/ssh-keys/",
    "/account/tokens/",
    "/email/",
    "/password/change/",
]


@pytest.mark.parametrize("url", PAGES_ANONYMOUS)
def test_anonymous_pages_carry_the_policy_and_no_inline_code(client, db, url) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response.content.decode())


@pytest.mark.parametrize("url", PAGES_SIGNED_IN)
def test_signed_in_pages_carry_the_policy_and_no_inline_code(client, alice, globex, url) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory.create(user=alice, organization=globex)  # two organizations: the switcher renders too
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 200
    assert_strict(response)
    assert_no_inline_code(response.content.decode())


def test_refusals_carry_the_policy_too(client, fiona) -> None:
    client.force_login(fiona)
    response = client.get("/organization/")
    assert response.status_code == 403
    assert_strict(response)


def test_only_the_api_docs_relax_styles_and_load_their_script_from_a_file(client, alice) -> None:
    client.force_login(alice)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    policy = directives(response)
    assert "'unsafe-inline'" in policy["style-src"] and "'unsafe-inline'" not in policy.get("script-src", "")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.content.decode())


def test_htmx_comes_from_the_pinned_npm_package() -> None:
    path = finders.find("vendor/htmx/htmx.min.js")
    if path is None:
        pytest.skip("node_modules is absent (npm not installed): pages work without htmx")
    with open(path, encoding="utf-8") as handle:
        assert '"2.0.11"' in handle.read()


def test_the_layout_loads_htmx_and_tells_it_not_to_inject_styles(client, db) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<script src="/static/vendor/htmx/htmx.min.js" defer></script>' in page
    assert '"includeIndicatorStyles": false' in page
