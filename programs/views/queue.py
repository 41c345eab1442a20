"""The staff admins' decision queue: early-stage applications and quota requests waiting, oldest
first, each with its organization's history and its approve and reject forms. The decisions
themselves are posted to early_stage.py and quota_requests.py."""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render

from accounts.models import AuditEntry
from accounts.views.decorators import AuthenticatedHttpRequest, staff_admin_required
from core.forms import add_service_error
from programs.forms.early_stage import ApproveForm, RejectForm
from programs.forms.quota_requests import QuotaApproveForm
from programs.models import EarlyStageApplication, QuotaRequest, StaffDecision
from programs.selectors.decisions import decision_histories, recent_decisions
from programs.selectors.early_stage import early_stage_queue
from programs.selectors.quota_requests import quota_request_queue


@dataclass(frozen=True)
class DecisionCard:
    """One waiting request with its organization's history and its two decision forms."""

    decision: StaffDecision
    history: list[AuditEntry]
    approve: Form
    reject: Form


def application_approve_form(
    application: EarlyStageApplication, data: QueryDict | None = None
) -> ApproveForm:
    """Prefilled with the GPUs asked for and the standard credit."""
    initial = ApproveForm.initial_for(application.gpus_wanted, application.organization.gpu_quota)
    return ApproveForm(data, prefix=f"approve-{application.public_id}", initial=initial)


def quota_approve_form(quota_request: QuotaRequest, data: QueryDict | None = None) -> QuotaApproveForm:
    """Prefilled with the quota asked for, until the day it is needed."""
    initial = {"gpu_quota": quota_request.gpus, "expires_on": quota_request.needed_until}
    return QuotaApproveForm(data, prefix=f"quota-approve-{quota_request.public_id}", initial=initial)


def _approve_form(decision: StaffDecision) -> Form:
    if isinstance(decision, QuotaRequest):
        return quota_approve_form(decision)
    assert isinstance(decision, EarlyStageApplication)
    return application_approve_form(decision)


def reject_form(decision: StaffDecision, data: QueryDict | None = None) -> RejectForm:
    kind = "quota-reject" if isinstance(decision, QuotaRequest) else "reject"
    return RejectForm(data, prefix=f"{kind}-{decision.public_id}")


def _cards(waiting: list[Any], bound: Form | None) -> list[DecisionCard]:
    """`bound`, the form just posted, replaces the blank one it was made from (same prefix)."""

    def pick(form: Form) -> Form:
        return bound if bound is not None and bound.prefix == form.prefix else form

    if not waiting:
        return []
    histories = decision_histories(type(waiting[0]), waiting)
    return [
        DecisionCard(
            decision,
            histories.get(decision.organization_id, []),
            pick(_approve_form(decision)),
            pick(reject_form(decision)),
        )
        for decision in waiting
    ]


def render_queue(
    request: AuthenticatedHttpRequest, bound: Form | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "cards": _cards(list(early_stage_queue()), bound),
        "quota_cards": _cards(list(quota_request_queue()), bound),
        "decided": recent_decisions(EarlyStageApplication),
        "quota_decided": recent_decisions(QuotaRequest),
    }
    return render(request, "staff/early_stage_queue.html", context, status=status)


def refused(request: AuthenticatedHttpRequest, form: Form, error: ValidationError) -> HttpResponse:
    """A service's refusal: next to its field when it names one, else a message above the queue."""
    if hasattr(error, "error_dict"):
        add_service_error(form, error)
        return render_queue(request, bound=form, status=400)
    messages.error(request, " ".join(error.messages))
    return redirect("early-stage-queue")


@staff_admin_required
def early_stage_queue_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Applications and quota requests waiting for a decision, oldest first, each with its history."""
    return render_queue(request)
