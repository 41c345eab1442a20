# An index on when each Idempotency-Key was made, for the purge that deletes keys past their retention.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently: bookings keep inserting keys while the index is made.
    atomic = False

    dependencies = [
        ('clusters', '0007_price_book_and_telemetry_hours'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='idempotencykey',
            index=models.Index(fields=['created_at'], name='idempotency_key_created_at'),
        ),
    ]
