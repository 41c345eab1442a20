"""The agent's HTTP API over real HTTP: readings, auth, bad requests, leases."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from typing import Any

import httpx
import pytest

from nodeagent.app import hash_token
from nodeagent.backends.simulated import SimulatedNode, simulated_gpu_uuid
from nodeagent.server import start_node_in_thread
from tests.nodeagent.fakes import TOKEN, FleetServer

NODE = "tx1-c01-n001"
LEASE = "LSE-01HXAMPLE42-abc"
ACCOUNT = "vp-lse01hxample"
GPU_KEYS = {
    "index",
    "uuid",
    "name",
    "utilization_pct",
    "memory_used_bytes",
    "memory_total_bytes",
    "temperature_c",
    "power_draw_w",
    "power_limit_w",
    "ecc_uncorrectable_volatile",
    "last_xid",
    "lost",
}


def put_lease(
    fs: FleetServer, keys: list[str], gpus: list[int] | None = None, lease: str = LEASE
) -> httpx.Response:
    """Install a lease on the test node."""
    body = {"gpu_indices": [0, 1] if gpus is None else gpus, "ssh_public_keys": keys}
    return fs.client.put(fs.url(NODE, f"v1/leases/{lease}"), json=body)


def assert_error(response: httpx.Response, status: int, code: str, words: str) -> None:
    """The response is the JSON error the agent promises, naming what is wrong."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert words in body["detail"]


def test_it_answers_gpus_in_the_shape_the_poller_parses(served_fleet: FleetServer) -> None:
    response = served_fleet.client.get(served_fleet.url(NODE, "v1/gpus"))
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"node", "backend", "degraded", "error", "read_at", "leases", "gpus"}
    assert (body["node"], body["backend"], body["degraded"], body["error"]) == (
        NODE,
        "simulated",
        False,
        None,
    )
    assert datetime.fromisoformat(body["read_at"]).utcoffset().total_seconds() == 0
    assert [set(gpu) for gpu in body["gpus"]] == [GPU_KEYS] * 8
    assert body["gpus"][7]["uuid"] == simulated_gpu_uuid(NODE, 7)


def test_each_node_answers_under_its_own_prefix(served_fleet: FleetServer) -> None:
    bodies = [
        served_fleet.client.get(served_fleet.url(h, "v1/gpus")).json() for h in served_fleet.fleet.hostnames
    ]
    assert [b["node"] for b in bodies] == served_fleet.fleet.hostnames
    assert bodies[0]["gpus"][0]["uuid"] != bodies[1]["gpus"][0]["uuid"]


def test_health_needs_no_token(served_fleet: FleetServer) -> None:
    response = httpx.get(served_fleet.url(NODE, "v1/health"))
    assert response.json() == {"status": "ok", "backend": "simulated", "node": NODE, "gpus": 8}


def test_it_refuses_a_request_without_a_token(served_fleet: FleetServer) -> None:
    assert_error(httpx.get(served_fleet.url(NODE, "v1/gpus")), 401, "unauthorized", "Bearer")


def test_it_refuses_a_wrong_token(served_fleet: FleetServer) -> None:
    response = httpx.get(served_fleet.url(NODE, "v1/gpus"), headers={"Authorization": "Bearer nope"})
    assert_error(response, 401, "unauthorized", "not this agent's token")


def test_it_refuses_a_token_sent_with_another_scheme(served_fleet: FleetServer) -> None:
    response = httpx.get(served_fleet.url(NODE, "v1/gpus"), headers={"Authorization": f"Basic {TOKEN}"})
    assert_error(response, 401, "unauthorized", "Bearer")


def test_it_refuses_lease_calls_without_a_token(served_fleet: FleetServer) -> None:
    response = httpx.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    assert_error(response, 401, "unauthorized", "Bearer")


def test_it_answers_404_for_an_unknown_node(served_fleet: FleetServer) -> None:
    assert_error(
        served_fleet.client.get(served_fleet.url("nowhere", "v1/gpus")), 404, "unknown_node", "nowhere"
    )


def test_it_answers_json_for_an_unknown_path_and_method(served_fleet: FleetServer) -> None:
    assert_error(served_fleet.client.get(served_fleet.url(NODE, "v2/x")), 404, "not_found", "/v2/x")
    assert_error(
        served_fleet.client.post(served_fleet.url(NODE, "v1/gpus")), 405, "method_not_allowed", "POST"
    )


def test_it_installs_a_leases_keys_on_disk(served_fleet: FleetServer, ssh_keys: dict[str, str]) -> None:
    keys = [ssh_keys["ed25519"], ssh_keys["ecdsa"], ssh_keys["rsa"]]
    response = put_lease(served_fleet, keys, [1, 0])
    assert response.json() == {
        "lease_id": LEASE,
        "account": ACCOUNT,
        "gpu_indices": [0, 1],
        "installed_keys": 3,
        "changed": True,
        "sessions_closed": 0,
    }
    assert served_fleet.keys_file(NODE, ACCOUNT).read_text().splitlines() == keys
    assert not served_fleet.keys_file("tx1-c01-n002", ACCOUNT).exists()


def test_installing_the_same_lease_twice_changes_nothing(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]])
    before = served_fleet.keys_file(NODE, ACCOUNT).stat().st_mtime_ns
    again = put_lease(served_fleet, [ssh_keys["ed25519"]])
    assert again.status_code == 200 and again.json()["changed"] is False
    assert served_fleet.keys_file(NODE, ACCOUNT).stat().st_mtime_ns == before


def test_installing_new_keys_replaces_the_old_ones(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]])
    response = put_lease(served_fleet, [ssh_keys["rsa"]])
    assert response.json()["changed"] is True
    assert served_fleet.keys_file(NODE, ACCOUNT).read_text() == ssh_keys["rsa"] + "\n"


def test_revoking_removes_the_keys_and_reports_clean_gpus(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]], [2, 3])
    response = served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    assert response.json() == {
        "lease_id": LEASE,
        "revoked": True,
        "processes_stopped": 2,
        "gpus_clean": True,
        "changed": True,
    }
    assert not served_fleet.keys_file(NODE, ACCOUNT).exists()


def test_the_readings_list_the_leases_installed_until_they_are_revoked(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    other = "lease-0002"
    put_lease(served_fleet, [ssh_keys["ed25519"]], [2, 3])
    put_lease(served_fleet, [ssh_keys["ed25519"]], [4], lease=other)

    def listed() -> list[str]:
        return served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).json()["leases"]

    assert listed() == sorted([LEASE, other])
    served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    assert listed() == [other]


def test_revoking_twice_answers_200_unchanged(served_fleet: FleetServer, ssh_keys: dict[str, str]) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]])
    served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    again = served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    assert again.status_code == 200
    assert again.json()["changed"] is False and again.json()["processes_stopped"] == 0


def test_a_revoked_lease_cannot_be_installed_again(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]])
    served_fleet.client.delete(served_fleet.url(NODE, f"v1/leases/{LEASE}"))
    assert_error(put_lease(served_fleet, [ssh_keys["ed25519"]]), 409, "lease_revoked", LEASE)
    assert not served_fleet.keys_file(NODE, ACCOUNT).exists()


def test_revoking_a_lease_never_seen_answers_404(served_fleet: FleetServer) -> None:
    response = served_fleet.client.delete(served_fleet.url(NODE, "v1/leases/never-seen-1"))
    assert_error(response, 404, "unknown_lease", "never-seen-1")


def test_two_leases_with_the_same_account_name_conflict(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    put_lease(served_fleet, [ssh_keys["ed25519"]], lease="abcdefghijkl-1")
    response = put_lease(served_fleet, [ssh_keys["ed25519"]], lease="abcdefghijkl-2")
    assert_error(response, 409, "account_conflict", "vp-abcdefghijkl")


def test_it_refuses_malformed_json(served_fleet: FleetServer) -> None:
    response = served_fleet.client.put(served_fleet.url(NODE, f"v1/leases/{LEASE}"), content=b"{not json")
    assert_error(response, 400, "malformed_json", "not valid JSON")


def test_it_refuses_json_that_is_not_an_object(served_fleet: FleetServer) -> None:
    response = served_fleet.client.put(served_fleet.url(NODE, f"v1/leases/{LEASE}"), json=[1, 2])
    assert_error(response, 400, "invalid_body", "JSON object")


def test_it_refuses_a_body_over_64_kib(served_fleet: FleetServer) -> None:
    body = json.dumps({"gpu_indices": [0], "ssh_public_keys": ["x" * 70_000]}).encode()
    response = served_fleet.client.put(served_fleet.url(NODE, f"v1/leases/{LEASE}"), content=body)
    assert_error(response, 413, "body_too_large", "65536 bytes")


def test_it_refuses_a_chunked_body_over_64_kib(served_fleet: FleetServer) -> None:
    chunks = iter([b'{"gpu_indices": [0], "ssh_public_keys": ["', b"x" * 70_000, b'"]}'])
    response = served_fleet.client.put(served_fleet.url(NODE, f"v1/leases/{LEASE}"), content=chunks)
    assert_error(response, 413, "body_too_large", "65536 bytes")


def test_it_refuses_a_string_that_is_not_an_ssh_key(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    response = put_lease(served_fleet, [ssh_keys["ed25519"], "not a key"])
    assert_error(response, 400, "invalid_ssh_key", "ssh_public_keys[1]")
    assert not served_fleet.keys_file(NODE, ACCOUNT).exists()


def test_it_refuses_a_gpu_index_out_of_range(served_fleet: FleetServer, ssh_keys: dict[str, str]) -> None:
    assert_error(put_lease(served_fleet, [ssh_keys["ed25519"]], [7, 8]), 400, "gpu_index_out_of_range", "8")


def test_it_refuses_gpu_indices_that_are_not_distinct_integers(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    cases: list[tuple[list[Any], str]] = [
        ([], "non-empty"),
        ([1, 1], "repeat"),
        (["0"], "integers"),
        ([True], "integers"),
    ]
    for gpus, words in cases:
        assert_error(put_lease(served_fleet, [ssh_keys["ed25519"]], gpus), 400, "invalid_body", words)


def test_a_revoked_lease_is_installed_again_only_for_a_later_placement(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    url = served_fleet.url(NODE, f"v1/leases/{LEASE}")
    body = {"gpu_indices": [0, 1], "ssh_public_keys": [ssh_keys["ed25519"]]}
    assert served_fleet.client.put(url, json={**body, "placement": 7}).status_code == 200
    served_fleet.client.delete(url)
    for late_retry in ({}, {"placement": 7}, {"placement": 6}):
        assert_error(served_fleet.client.put(url, json={**body, **late_retry}), 409, "lease_revoked", LEASE)
    assert not served_fleet.keys_file(NODE, ACCOUNT).exists()

    assert served_fleet.client.put(url, json={**body, "placement": 8}).status_code == 200

    assert served_fleet.keys_file(NODE, ACCOUNT).read_text() == f"{ssh_keys['ed25519']}\n"


def test_it_refuses_a_placement_that_is_not_a_whole_number(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    url = served_fleet.url(NODE, f"v1/leases/{LEASE}")
    for placement in (-1, "7", True, 1.5, 2**63):
        body = {"gpu_indices": [0], "ssh_public_keys": [ssh_keys["ed25519"]], "placement": placement}
        response = served_fleet.client.put(url, json=body)
        assert_error(response, 400, "invalid_body", "placement")
        assert response.json()["field"] == "placement"
    assert not served_fleet.keys_file(NODE, ACCOUNT).exists()


def test_it_refuses_keys_that_are_not_a_list(served_fleet: FleetServer) -> None:
    response = served_fleet.client.put(
        served_fleet.url(NODE, f"v1/leases/{LEASE}"), json={"gpu_indices": [0]}
    )
    assert_error(response, 400, "invalid_body", "ssh_public_keys")


def test_it_refuses_a_lease_id_that_names_no_account(
    served_fleet: FleetServer, ssh_keys: dict[str, str]
) -> None:
    assert_error(
        put_lease(served_fleet, [ssh_keys["ed25519"]], lease="---"), 400, "invalid_lease_id", "lease id"
    )


def test_it_keeps_serving_after_a_request_that_sends_garbage(served_fleet: FleetServer) -> None:
    host, port = served_fleet.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=2) as raw:
        raw.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)
    assert served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")).status_code == 200


def test_a_bug_answers_500_json_and_the_agent_keeps_serving(
    served_fleet: FleetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(served_fleet.fleet.node(NODE), "read_gpus", broken)
    assert_error(served_fleet.client.get(served_fleet.url(NODE, "v1/gpus")), 500, "internal_error", "log")
    assert served_fleet.client.get(served_fleet.url("tx1-c01-n002", "v1/gpus")).status_code == 200


def test_every_handler_of_the_agent_is_a_coroutine(tmp_path) -> None:
    import asyncio
    import warnings

    from nodeagent.app import hash_token
    from nodeagent.backends.simulated import SimulatedFleet, SimulatedNode
    from nodeagent.simulator import create_fleet_app, create_simulated_node_app

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # aiohttp warns about plain functions
        apps = [
            create_fleet_app(SimulatedFleet([NODE], tmp_path / "fleet"), hash_token(TOKEN)),
            create_simulated_node_app(SimulatedNode(NODE, tmp_path / "node"), hash_token(TOKEN)),
        ]
    handlers = [route.handler for app in apps for route in app.router.routes()]
    names = {"health", "gpus", "put_lease", "delete_lease", "get_faults", "post_fault", "delete_faults"}
    assert {handler.__name__ for handler in handlers} == names
    assert all(asyncio.iscoroutinefunction(handler) for handler in handlers)


def test_a_real_nodes_agent_serves_no_simulator_route(tmp_path) -> None:
    from nodeagent.app import create_node_app, hash_token
    from nodeagent.backends.simulated import SimulatedNode

    app = create_node_app(SimulatedNode(NODE, tmp_path / "node"), hash_token(TOKEN))
    paths = {route.resource.canonical for route in app.router.routes()}
    assert paths == {"/v1/health", "/v1/gpus", "/v1/leases/{lease_id}"}


def test_while_a_token_is_rotated_the_old_and_the_new_one_are_both_accepted(tmp_path) -> None:
    node = SimulatedNode(NODE, tmp_path)
    hashes = ",".join(hash_token(token) for token in ("old-token", "new-token"))
    url, stop = start_node_in_thread(node, token_sha256=hashes)
    try:
        answers = {
            token: httpx.get(f"{url}/v1/gpus", headers={"Authorization": f"Bearer {token}"}).status_code
            for token in ("old-token", "new-token", "other-token")
        }
    finally:
        stop()
    assert answers == {"old-token": 200, "new-token": 200, "other-token": 401}


def test_it_will_not_start_with_a_token_hash_that_is_not_sha256_hex(tmp_path) -> None:
    with pytest.raises(ValueError, match="64 lowercase hex"):
        start_node_in_thread(SimulatedNode(NODE, tmp_path), token_sha256=hash_token("a") + ",abc")
