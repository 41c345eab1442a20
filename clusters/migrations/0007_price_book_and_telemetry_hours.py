# The price book, moved from billing: the existing table is adopted (state only), then renamed.
# LeaseUsageHour is telemetry, not billed usage: renamed LeaseTelemetryHour with its constraint.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clusters', '0006_gpu_and_node_fillfactor_for_hot_updates'),
        ('billing', '0003_price_book_moves_to_clusters'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='PriceBookEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('reserved', 'Reserved'), ('on_demand', 'On-demand')], max_length=20)),
                        ('price_per_gpu_hour', models.DecimalField(decimal_places=4, max_digits=10, validators=[django.core.validators.MinValueValidator(0)])),
                        ('currency', models.CharField(default='USD', max_length=3)),
                        ('effective_from', models.DateTimeField(default=django.utils.timezone.now)),
                        ('region', models.ForeignKey(blank=True, help_text='Empty: the price everywhere without a regional price.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='prices', to='clusters.region')),
                    ],
                    options={
                        'db_table': 'billing_pricebookentry',
                        'verbose_name_plural': 'price book entries',
                        'indexes': [models.Index(fields=['kind', 'effective_from'], name='price_kind_from')],
                        'constraints': [models.UniqueConstraint(fields=('kind', 'region', 'effective_from'), name='price_once_per_kind_region_instant', nulls_distinct=False)],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='pricebookentry', table=None),
        migrations.RenameModel(old_name='LeaseUsageHour', new_name='LeaseTelemetryHour'),
        migrations.RemoveConstraint(model_name='leasetelemetryhour', name='lease_usage_hour_once'),
        migrations.AddConstraint(
            model_name='leasetelemetryhour',
            constraint=models.UniqueConstraint(fields=('lease', 'hour'), name='lease_telemetry_hour_once'),
        ),
    ]
