"""Run-time API: lease telemetry for its organization, nodes and drain/undrain for staff, /metrics."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry, Organization, User
from clusters.choices import HealthEventKind, LeaseState, NodeState
from clusters.models import GpuSample, HealthEvent, LeaseTelemetryHour
from clusters.services.telemetry import fleet_poll
from tests.clusters.helpers import Fleet, gpus_of, lease_on
from tests.factories import NodeFactory


def telemetry_url(lease) -> str:
    return f"/api/v1/leases/{lease.public_id}/telemetry/"


def test_a_member_sees_the_samples_of_the_lease_gpus_since_a_moment(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, bob: User, api_as, settings
) -> None:
    settings.TELEMETRY_SAMPLE_INTERVAL_S = 1
    node = fleet_of(1).nodes[0]
    now = timezone.now()
    lease = lease_on(
        gpus_of(node, [0, 1]),
        organization=acme,
        booked_by=alice,
        start=now - timedelta(hours=2),
        end=now + timedelta(hours=1),
        state=LeaseState.ACTIVE,
    )
    fleet_poll(now=now - timedelta(minutes=90))
    fleet_poll(now=now - timedelta(minutes=30))

    answer = api_as(bob).get(telemetry_url(lease), {"since": (now - timedelta(hours=1)).isoformat()})

    assert answer.status_code == 200
    body = answer.json()
    assert body["lease"] == str(lease.public_id) and body["truncated"] is False
    assert [(g["index"], len(g["samples"])) for g in body["gpus"]] == [(0, 1), (1, 1)]
    assert set(body["gpus"][0]["samples"][0]) == {
        "at",
        "utilization_pct",
        "memory_used_bytes",
        "temperature_c",
        "power_draw_w",
    }
    since_hour = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    hours = [datetime.fromisoformat(h["hour"]) for h in body["hours"]]
    assert hours and min(hours) >= since_hour and body["hours"][-1]["energy_wh"] > 0
    assert GpuSample.objects.count() == 16 and LeaseTelemetryHour.objects.filter(lease=lease).count() == 2


def test_another_organization_gets_404_for_a_lease_telemetry(
    acme: Organization, alice: User, charlie: User, api_as
) -> None:
    lease = lease_on(gpus_of(NodeFactory.create()), organization=acme, booked_by=alice)

    answer = api_as(charlie).get(telemetry_url(lease))

    assert answer.status_code == 404 and "lease" not in answer.json()


def test_a_finance_member_may_not_read_telemetry_and_a_bad_since_is_refused(
    acme: Organization, alice: User, fiona: User, api_as
) -> None:
    lease = lease_on(gpus_of(NodeFactory.create()), organization=acme, booked_by=alice)

    assert api_as(fiona).get(telemetry_url(lease)).status_code == 403
    answer = api_as(alice).get(telemetry_url(lease), {"since": "yesterday"})
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_since"


def test_staff_list_nodes_with_their_open_health_events(stella: User, alice: User, api_as) -> None:
    sick = NodeFactory.create(state=NodeState.UNHEALTHY)
    NodeFactory.create()
    HealthEvent.objects.create(node=sick, gpu=sick.gpus.get(index=3), kind=HealthEventKind.ECC, detail="ECC")

    answer = api_as(stella).get("/api/v1/nodes/", {"state": "unhealthy"})

    assert answer.status_code == 200
    [row] = answer.json()["results"]
    assert (row["hostname"], row["gpus_total"], row["gpus_healthy"]) == (sick.hostname, 8, 8)
    assert [(e["kind"], e["gpu_index"]) for e in row["open_health_events"]] == [("ecc", 3)]
    assert api_as(alice).get("/api/v1/nodes/").status_code == 403


def test_staff_drain_a_node_with_a_reason_and_it_is_audited(stella: User, alice: User, api_as) -> None:
    node = NodeFactory.create()
    url = f"/api/v1/nodes/{node.public_id}/drain/"

    assert api_as(stella).post(url, {}, format="json").status_code == 400
    assert api_as(alice).post(url, {"reason": "mine"}, format="json").status_code == 403
    answer = api_as(stella).post(url, {"reason": "firmware upgrade"}, format="json")

    assert answer.status_code == 200 and answer.json()["state"] == "draining"
    node.refresh_from_db()
    assert (node.state, node.state_reason) == (NodeState.DRAINING, "firmware upgrade")
    entry = AuditEntry.objects.get(action="node.drained")
    assert entry.actor == stella and entry.before == {"state": "available"}
    again = api_as(stella).post(url, {"reason": "twice"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "node_state"


def test_only_an_admin_undrain_returns_an_unhealthy_node_and_ends_its_events(
    stella: User, alice: User, api_as
) -> None:
    node = NodeFactory.create(state=NodeState.UNHEALTHY, unreachable_sweeps=5)
    event = HealthEvent.objects.create(node=node, kind=HealthEventKind.UNREACHABLE)
    url = f"/api/v1/nodes/{node.public_id}/undrain/"

    assert api_as(alice).post(url, {"reason": "looks fine"}, format="json").status_code == 403
    answer = api_as(stella).post(url, {"reason": "agent restarted"}, format="json")

    assert answer.status_code == 200
    node.refresh_from_db()
    assert (node.state, node.unreachable_sweeps) == (NodeState.AVAILABLE, 0) and node.undrained_at is not None
    event.refresh_from_db()
    assert event.ended_at is not None
    assert AuditEntry.objects.filter(action="node.undrained", actor=stella).count() == 1


def test_metrics_speak_dcgm_exporter_names_with_fleet_labels_for_staff_or_the_scrape_token(
    fleet_of: Callable[..., Fleet], acme: Organization, alice: User, stella: User, settings
) -> None:
    settings.METRICS_SCRAPE_TOKEN = "scrape-secret"
    node = fleet_of(1).nodes[0]
    lease = lease_on(
        gpus_of(node, [0]),
        organization=acme,
        booked_by=alice,
        start=timezone.now() - timedelta(minutes=1),
        state=LeaseState.ACTIVE,
    )
    fleet_poll()
    staff = Client()
    staff.force_login(stella)

    answer = staff.get("/metrics")

    assert answer.status_code == 200
    text = answer.getvalue().decode()
    for name in (
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_XID_ERRORS",
    ):
        assert text.count(f"\n{name}{{") == 8, name
    util = next(
        line for line in text.splitlines() if line.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'gpu="0"' in line
    )
    assert f'node="{node.hostname}"' in util and 'region="us-tx-1"' in util
    assert f'lease="{lease.public_id}"' in util and f'cluster="{node.cluster.name}"' in util
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client().get("/metrics").status_code == 403
