# The price book moves to clusters (docs/decisions.md: booking copies the price onto the lease,
# and clusters sits below billing); its table is renamed there (clusters 0007), so this
# migration changes only Django's state.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_usage_invoices_credits_stripe'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='PriceBookEntry')],
            database_operations=[],
        ),
    ]
