"""Helpers of the project-wide tests: reading a page's content security policy and markup, and the
API's OpenAPI schema."""

import functools
import re
from typing import Any


def directives(response) -> dict[str, str]:
    """The response's content security policy, each directive by its name."""
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def assert_strict(response) -> None:
    """The policy allows only our own origin, no inline code, and no framing."""
    policy = directives(response)
    assert policy["default-src"] == "default-src 'self'"
    assert policy["script-src"] == "script-src 'self'"
    assert policy["style-src"] == "style-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "unsafe" not in response["Content-Security-Policy"]


def assert_no_inline_code(html: str) -> None:
    """The page has no inline script, style or event handler, and loads nothing from another site.

    A `<script type="application/json">` is data for a script file (allauth's pages pass theirs so),
    which the browser never runs, so the policy allows it and so does this check.
    """
    code = r"<script(?![^>]*\bsrc=)(?![^>]*\btype=\"application/json\")[^>]*>"
    assert not re.search(code, html), "inline <script>"
    assert "<style" not in html, "inline <style>"
    assert not re.search(r"\sstyle=", html), "style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "a resource from another site"


@functools.cache
def openapi_schema() -> dict[str, Any]:
    """The API's OpenAPI schema as /api/v1/schema/ serves it."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def paginated_list_paths() -> list[str]:
    """Every GET without path parameters whose answer is a page (it takes `limit` and `offset`)."""
    paths = []
    for path, operations in openapi_schema()["paths"].items():
        parameters = {p["name"] for p in operations.get("get", {}).get("parameters", [])}
        if "{" not in path and {"limit", "offset"} <= parameters:
            paths.append(path)
    return sorted(paths)
