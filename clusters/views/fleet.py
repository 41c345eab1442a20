"""Staff fleet pages: the grid, a node's page, drain and undrain."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.views.decorators import AuthenticatedHttpRequest, staff_admin_required
from clusters.choices import NodeState
from clusters.forms.fleet import FleetFilterForm, ReasonForm
from clusters.models import Node
from clusters.selectors.fleet import NodeUse, fleet_grid, node_for_staff, node_page_data, open_health_events
from clusters.services.health import UNDRAINABLE_STATES, NodeStateError, node_drain, node_undrain

# Each state has a shape as well as a color, so the grid reads without color vision.
STATE_GLYPHS: dict[str, str] = {
    NodeState.AVAILABLE: "●",
    NodeState.DRAINING: "◐",
    NodeState.MAINTENANCE: "■",
    NodeState.UNHEALTHY: "▲",
    NodeState.OFFLINE: "✕",
}


# An available node also shows how much of it is leased now, by shape and fill.
USE_GLYPHS: dict[str, str] = {NodeUse.FREE: "○", NodeUse.PARTLY: "◔", NodeUse.BUSY: "●"}


def _legend() -> list[tuple[str, str, str]]:
    """(CSS classes, label, glyph) of each look a node can have in the grid."""
    available = [
        (f"state-available use-{use}", f"Available, {NodeUse.LABELS[use]}", glyph)
        for use, glyph in USE_GLYPHS.items()
    ]
    others = [
        (f"state-{state}", label, STATE_GLYPHS[state])
        for state, label in NodeState.choices
        if state != NodeState.AVAILABLE
    ]
    return available + others


@staff_admin_required
def fleet(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every region and cluster as a grid of nodes by state and health, and the open health events."""
    form = FleetFilterForm(request.GET or None)
    wanted = form.cleaned_data if form.is_valid() else {}
    context = {
        "form": form,
        "regions": fleet_grid(region=wanted.get("region", ""), state=wanted.get("state", "")),
        "events": open_health_events(),
        "legend": _legend(),
        "glyphs": STATE_GLYPHS,
        "use_glyphs": USE_GLYPHS,
        "use_labels": NodeUse.LABELS,
    }
    return render(request, "staff/fleet.html", context)


def _node_page(
    request: AuthenticatedHttpRequest, node: Node, form: ReasonForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "node": node,
        "form": form or ReasonForm(),
        "can_drain": node.state == NodeState.AVAILABLE,
        "can_undrain": node.state in UNDRAINABLE_STATES,
        "glyph": STATE_GLYPHS[node.state],
        **node_page_data(node),
    }
    return render(request, "staff/node.html", context, status=status)


@staff_admin_required
def fleet_node(request: AuthenticatedHttpRequest, node_id: str) -> HttpResponse:
    """One node: its GPUs' latest readings, the leases on it, its health events; drain or undrain it."""
    return _node_page(request, node_for_staff(node_id))


def _change_state(request: AuthenticatedHttpRequest, node_id: str, change, done: str) -> HttpResponse:
    node = node_for_staff(node_id)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _node_page(request, node, form, status=400)
    try:
        change(node=node, actor=request.user, reason=form.cleaned_data["reason"])
    except NodeStateError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"{node.hostname} {done}.")
    return redirect("fleet-node", node_id=node.public_id)


@staff_admin_required
@require_POST
def fleet_node_drain(request: AuthenticatedHttpRequest, node_id: str) -> HttpResponse:
    """Take an available node out of placement; its running leases continue."""
    return _change_state(request, node_id, node_drain, "is draining: no new leases are placed on it")


@staff_admin_required
@require_POST
def fleet_node_undrain(request: AuthenticatedHttpRequest, node_id: str) -> HttpResponse:
    """Return a drained or unhealthy node to placement; its open health events end."""
    return _change_state(request, node_id, node_undrain, "is back in service")
