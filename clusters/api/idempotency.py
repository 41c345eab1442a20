"""Idempotency-Key: a duplicate POST gets the first answer and changes nothing twice.

The key's row is inserted first, in the same transaction as the work it guards: a concurrent
duplicate blocks on the unique index until the first commits, then reads its answer; if the
first failed (rolled back), the duplicate does the work itself.
"""

import hashlib
import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Organization
from clusters.models import IdempotencyKey
from core.api import exception_handler
from core.refusals import Refused

HEADER = "Idempotency-Key"


MAX_KEY_LENGTH = 255


CLAIM_SQL = """
INSERT INTO clusters_idempotencykey (organization_id, key, fingerprint, created_at)
VALUES (%s, %s, %s, now())
ON CONFLICT (organization_id, key) DO NOTHING
RETURNING id
"""


def idempotent(request: Request, organization: Organization, respond: Callable[[], Response]) -> Response:
    """`respond()`'s answer, or, for a repeated Idempotency-Key, the answer the first request got."""
    key = request.headers.get(HEADER)
    if key is None:
        return respond()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Refused(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters.", code="invalid", status=400
        )
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        while (claimed := _claim(organization, key, fingerprint)) is None:
            first = IdempotencyKey.objects.filter(organization=organization, key=key).first()
            if first is not None:
                return _replay(first, fingerprint)
            # Purged between the claim and the read (past its retention): the key is free again.
        response = _answer(request, respond)
        body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        IdempotencyKey.objects.filter(pk=claimed).update(status_code=response.status_code, response_body=body)
        return response


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(organization: Organization, key: str, fingerprint: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, [organization.pk, key, fingerprint])
        row = cursor.fetchone()
    return row[0] if row else None


def _replay(first: IdempotencyKey, fingerprint: str) -> Response:
    if first.fingerprint != fingerprint:
        raise Refused(
            f"This {HEADER} was already used for a different request; use a new key.",
            code="idempotency_key_reused",
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(first.response_body, status=first.status_code, headers={"Idempotent-Replayed": "true"})


def _answer(request: Request, respond: Callable[[], Response]) -> Response:
    """The response, with a refusal rendered as the API renders it, so it is stored and replayed too."""
    try:
        return respond()
    except Exception as refusal:
        response = exception_handler(refusal, {"request": request})
        if response is None:
            raise
        return response
