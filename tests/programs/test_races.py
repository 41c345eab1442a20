"""Early-stage decisions that race: threads, each with its own database connection."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from billing.models import CreditGrant
from programs.choices import ApplicationStatus
from programs.models import EarlyStageApplication
from programs.services.early_stage import early_stage_apply, early_stage_approve, early_stage_reject
from tests.factories import mfa_enable
from tests.races import errors_of, race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_application_approved_and_rejected_at_once_is_decided_once(alice, acme, stella) -> None:
    application = early_stage_apply(
        actor=alice,
        organization=acme,
        what_we_build="Protein folding models",
        stage="seed",
        funding="$2M seed",
        gpus_wanted=32,
        why="Training runs",
    )
    other_admin = mfa_enable(User.objects.create(email="sam@voltpark.example", is_staff=True, password="!"))
    approve = lambda: early_stage_approve(  # noqa: E731
        actor=stella,
        application=application,
        gpu_quota=64,
        credit_amount=Decimal("5000"),
        credit_expires_at=timezone.now() + timedelta(days=90),
    )
    results = race(
        [approve, lambda: early_stage_reject(actor=other_admin, application=application, note="No")]
    )
    refused = errors_of(results)
    assert len(refused) == 1 and isinstance(refused[0], ValidationError)
    assert "already" in str(refused[0])
    decided = EarlyStageApplication.objects.get(pk=application.pk)
    grants = CreditGrant.objects.filter(organization=acme).count()
    audits = AuditEntry.objects.filter(action__in=["early_stage.approve", "early_stage.reject"]).count()
    assert audits == 1
    if decided.status == ApplicationStatus.APPROVED:
        assert grants == 1 and Organization.objects.get(pk=acme.pk).gpu_quota == 64
    else:
        assert decided.status == ApplicationStatus.REJECTED
        assert grants == 0 and Organization.objects.get(pk=acme.pk).early_stage_approved is False
