"""Model pieces shared by every app."""

import uuid

from django.db import models


class PublicIdModel(models.Model):
    """A model reached in URLs by an opaque random id, never by its sequential key."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True
