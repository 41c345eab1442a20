# The id of the request (or Celery task) that wrote each audit row; empty for the rows before it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_early_stage_moves_to_programs'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditentry',
            name='request_id',
            field=models.CharField(blank=True, db_default='', default='', max_length=64),
        ),
    ]
