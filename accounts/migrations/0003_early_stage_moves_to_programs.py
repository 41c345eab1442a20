# The early-stage program's model moves to the programs app (docs/decisions.md); its table is
# renamed there (programs 0001), so this migration changes only Django's state.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_early_stage_applications'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='EarlyStageApplication')],
            database_operations=[],
        ),
    ]
