"""Model and lookup helpers every app uses: opaque public ids and the 404 that hides them."""

import json
import uuid
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404


class PublicIdModel(models.Model):
    """A model reached in URLs by an opaque random id, never by its sequential key."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True


def get_by_public_id_or_404(queryset: QuerySet, public_id: object):
    """The row of `queryset` with this public id; a malformed or foreign id is a 404."""
    try:
        return queryset.get(public_id=public_id)
    except (queryset.model.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("Not found.") from None


def row_json(instance: models.Model) -> str:
    """The instance's columns but its primary key, as the JSON object `jsonb_populate_record` reads.

    For services that insert a row Django built (defaults, every field) from inside a database
    function, without an INSERT of their own.
    """
    meta = instance._meta
    columns = {
        field.column: _json_value(field.value_from_object(instance))
        for field in meta.concrete_fields
        if not field.primary_key
    }
    return json.dumps(columns)


def _json_value(value: object) -> object:
    if isinstance(value, date):  # datetimes too: aware ones keep their offset
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value
