# The early-stage application model, moved from accounts: the existing table is adopted
# (state only), then renamed to this app's name.

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0003_early_stage_moves_to_programs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='EarlyStageApplication',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                        ('what_we_build', models.TextField()),
                        ('stage', models.CharField(choices=[('pre_seed', 'Pre-seed'), ('seed', 'Seed'), ('series_a', 'Series A'), ('later', 'Series B or later'), ('research', 'Research group')], max_length=20)),
                        ('funding', models.CharField(help_text="Funding raised so far, in the applicant's words.", max_length=200)),
                        ('gpus_wanted', models.PositiveIntegerField(validators=[django.core.validators.MinValueValidator(1)])),
                        ('why', models.TextField()),
                        ('status', models.CharField(choices=[('pending', 'Pending review'), ('approved', 'Approved'), ('rejected', 'Rejected')], default='pending', max_length=10)),
                        ('submitted_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('decision_note', models.TextField(blank=True)),
                        ('granted_gpu_quota', models.PositiveIntegerField(blank=True, null=True)),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='early_stage_applications', to='accounts.organization')),
                        ('submitted_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_earlystageapplication',
                        'indexes': [models.Index(fields=['status', 'submitted_at'], name='early_stage_queue')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'pending')), fields=('organization',), name='early_stage_one_pending_per_org')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='earlystageapplication', table=None),
    ]
