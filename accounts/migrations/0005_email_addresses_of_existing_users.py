"""Every user who signed up before django-allauth gets their address as allauth's primary email,
unverified: nobody ever showed it was theirs, so they confirm it before their next booking."""

from django.db import migrations


def add_unverified_addresses(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    EmailAddress = apps.get_model("account", "EmailAddress")
    known = EmailAddress.objects.values("user_id")
    EmailAddress.objects.bulk_create(
        (
            EmailAddress(user_id=user_id, email=email, primary=True, verified=False)
            for user_id, email in User.objects.exclude(pk__in=known).values_list("pk", "email").iterator()
        ),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_audit_entry_request_id"),
        ("account", "0009_emailaddress_unique_primary_email"),
    ]

    operations = [migrations.RunPython(add_unverified_addresses, migrations.RunPython.noop)]
