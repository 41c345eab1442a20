"""The OpenAPI schema says what the API answers: a real body for every success, the shared `Error`
body for every error it can give, JSON-only request bodies, and pages where a list pages."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.generics import ListAPIView

ERROR_REF = {"$ref": "#/components/schemas/Error"}
FILES = {"text/csv", "application/pdf", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def is_bare_object(body: dict) -> bool:
    return body.get("type") == "object" and not body.get("properties") and "$ref" not in body


def test_every_success_answer_has_a_real_body(schema) -> None:
    bare = []
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                continue
            for media_type, content in (response.get("content") or {}).items():
                body = content.get("schema", {})
                if media_type not in FILES and (
                    is_bare_object(body) or is_bare_object(body.get("items", {}))
                ):
                    bare.append(f"{method.upper()} {path} {code}")
    assert bare == []


@pytest.mark.parametrize(
    ("path", "method", "component"),
    [
        ("/api/v1/availability/", "get", "AvailabilitySchema"),
        ("/api/v1/regions/{code}/timeline/", "get", "TimelineSchema"),
        ("/api/v1/quotes/", "post", "QuoteSchema"),
    ],
)
def test_capacity_answers_are_described_field_by_field(schema, path, method, component) -> None:
    body = schema["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"#/components/schemas/{component}"}
    assert {"free_gpus", "total", "hours"} & set(schema["components"]["schemas"][component]["properties"])


def test_every_operation_documents_its_errors_with_the_shared_body(schema) -> None:
    missing = []
    for path, method, operation in operations(schema):
        public = not operation.get("security") or {} in operation["security"]
        expected = (
            {"400"} | (set() if public else {"401", "403", "429"}) | ({"404"} if "{" in path else set())
        )
        if method in {"post", "put", "patch", "delete"}:
            expected |= {"409"}
        for code in sorted(expected):
            body = operation["responses"].get(code, {}).get("content", {}).get("application/json", {})
            if body.get("schema") != ERROR_REF:
                missing.append(f"{method.upper()} {path} {code}")
    assert missing == []
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "detail"] and "fields" in error["properties"]


def test_request_bodies_are_json_only(schema) -> None:
    others = {
        f"{method.upper()} {path}: {media_type}"
        for path, method, operation in operations(schema)
        for media_type in operation.get("requestBody", {}).get("content", {})
        if media_type != "application/json"
    }
    assert others == set()


def test_every_list_that_pages_is_documented_as_a_page(schema) -> None:
    from django.urls import get_resolver

    paged = []
    for pattern in get_resolver().url_patterns:
        for entry in getattr(pattern, "url_patterns", [pattern]):
            view = getattr(getattr(entry, "callback", None), "cls", None)
            if view is not None and issubclass(view, ListAPIView):
                paged.append("/" + str(entry.pattern).replace("<str:", "{").replace(">", "}"))
    assert len(paged) >= 6
    for path in paged:
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert body["$ref"].startswith("#/components/schemas/Paginated"), path
        page = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        assert {"count", "next", "previous", "results"} <= set(page["properties"])
