"""Sign-up, log-in and log-out follow a `next` on this site and never one that leaves it, whether
it comes in the query string or in the form, in any of the shapes browsers read as another host."""

import pytest

from accounts.models import User

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
# Each of these is another host to a browser: a full URL, scheme-relative, backslashes that
# browsers read as slashes, and a scheme with no slashes.
OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "https:evil.example",
]
DANA = {"email": "dana@startup.example", "full_name": "Dana Diaz", "password1": "a-long-enough-pass-9"}


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("where", ["query", "form"])
def test_sign_up_never_redirects_off_site(client, db, target, where) -> None:
    response = _post(client, "/signup/", DANA, target, where)
    # Where a new person goes without a (safe) next: the welcome page.
    assert response.status_code == 302 and response["Location"] == "/welcome/"
    assert User.objects.filter(email=DANA["email"]).exists()


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("where", ["query", "form"])
def test_log_in_never_redirects_off_site(client, alice, target, where) -> None:
    response = _post(client, "/login/", {"login": alice.email, "password": PASSWORD}, target, where)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(alice.pk)


@pytest.mark.parametrize("target", OFF_SITE)
@pytest.mark.parametrize("where", ["query", "form"])
def test_log_out_never_redirects_off_site(client, alice, target, where) -> None:
    client.force_login(alice)
    response = _post(client, "/logout/", {}, target, where)
    assert response.status_code == 302 and response["Location"] == "/"
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("where", ["query", "form"])
def test_each_page_follows_a_next_on_this_site(client, alice, where) -> None:
    signed_up = _post(client, "/signup/", DANA, "/account/ssh-keys/", where)
    assert signed_up["Location"] == "/account/ssh-keys/"
    logged_out = _post(client, "/logout/", {}, "/organization/", where)
    assert logged_out["Location"] == "/organization/"
    logged_in = _post(client, "/login/", {"login": alice.email, "password": PASSWORD}, "/leases/", where)
    assert logged_in["Location"] == "/leases/"


def _post(client, path: str, data: dict[str, str], target: str, where: str):
    if where == "query":
        return client.post(path, data, query_params={"next": target})
    return client.post(path, {**data, "next": target})
