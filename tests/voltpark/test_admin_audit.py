"""Every change made in the Django admin goes to the audit trail, in the change's transaction: an
addition, a change and the "delete selected" action's many deletions (which Django logs in bulk)."""

import pytest

from accounts.models import AuditEntry, SshKey, User
from tests.factories import UserFactory, mfa_enable


@pytest.fixture
def root(db) -> User:
    """A staff admin with every permission and a second factor, as the admin requires."""
    return mfa_enable(UserFactory.create(email="root@voltpark.example", is_staff=True, is_superuser=True))


def test_a_change_in_the_admin_is_audited_with_what_changed(client, root, alice, acme) -> None:
    client.force_login(root)
    answer = client.post(
        f"/admin/accounts/user/{alice.pk}/change/",
        {"email": alice.email, "full_name": "Alice Renamed", "is_active": "on"},
    )
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    entry = AuditEntry.objects.get(action="admin.change")
    assert (entry.actor, entry.object_type, entry.object_id) == (root, "User", str(alice.pk))
    assert "Full name" in entry.after["change"] and entry.request_id


def test_the_admins_bulk_deletion_audits_each_object(client, root, alice) -> None:
    keys = [
        SshKey.objects.create(
            user=alice, name=f"k{i}", key_type="ssh-ed25519", bits=256, public_key="x", fingerprint=f"f{i}"
        )
        for i in range(3)
    ]
    client.force_login(root)
    answer = client.post(
        "/admin/accounts/sshkey/",
        {"action": "delete_selected", "_selected_action": [k.pk for k in keys], "post": "yes"},
    )
    assert answer.status_code == 302
    assert not SshKey.objects.filter(pk__in=[k.pk for k in keys]).exists()  # (Alice's own key stays)
    deleted = AuditEntry.objects.filter(action="admin.delete", actor=root)
    assert sorted(deleted.values_list("object_id", flat=True)) == sorted(str(k.public_id) for k in keys)


def test_an_addition_in_the_admin_is_audited(client, root) -> None:
    client.force_login(root)
    answer = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "new@acme.example",
            "password1": "a-long-enough-pass-9",
            "password2": "a-long-enough-pass-9",
            "usable_password": "true",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[-2000:]
    entry = AuditEntry.objects.get(action="admin.add")
    assert entry.object_id == str(User.objects.get(email="new@acme.example").pk)


def test_keys_deleted_in_the_admin_leave_the_live_leases_first(client, root, alice, monkeypatch) -> None:
    from accounts.services import ssh_keys

    withdrawn: list[list[int]] = []
    monkeypatch.setattr(ssh_keys, "_withdrawn_hooks", [lambda **kw: withdrawn.append(sorted(kw["key_ids"]))])
    keys = [
        SshKey.objects.create(
            user=alice, name=f"w{i}", key_type="ssh-ed25519", bits=256, public_key="x", fingerprint=f"w{i}"
        )
        for i in range(2)
    ]
    client.force_login(root)
    client.post(
        "/admin/accounts/sshkey/",
        {"action": "delete_selected", "_selected_action": [k.pk for k in keys], "post": "yes"},
    )
    client.post(f"/admin/accounts/sshkey/{alice.ssh_keys.first().pk}/delete/", {"post": "yes"})
    assert withdrawn[0] == sorted(k.pk for k in keys) and len(withdrawn) == 2
    assert not SshKey.objects.filter(user=alice).exists()
