"""Model and lookup helpers every app uses: opaque public ids and the 404 that hides them."""

import uuid

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
