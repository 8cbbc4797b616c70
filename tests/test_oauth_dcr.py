"""Dynamic client registration (RFC 7591/7592): open, policed, capped, pruned."""

import httpx
import pytest
from django.utils import timezone
from oauth2_provider.models import get_application_model

from accounts.maintenance import prune_unused_registrations
from devtools.oauth_client import obtain_tokens, register_client

GOOD = {
    "client_name": "Claude Code (pelcro)",
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
}


def post_registration(url, **metadata):
    return httpx.post(url + "/oauth/register", json={**GOOD, **metadata}, timeout=10)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:33418/callback",
        "http://localhost:8080/callback",
        "http://[::1]:9000/cb",
        "https://claude.ai/api/mcp/auth_callback",
        "cursor://anysphere.cursor-retrieval/oauth/user-pelcro/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "windsurf://codeium.windsurf/oauth/callback",
        "claude://oauth/callback",
    ],
)
def test_redirect_uris_real_clients_use_are_accepted(gateway_server, redirect_uri):
    response = post_registration(gateway_server.url, redirect_uris=[redirect_uri])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["redirect_uris"] == [redirect_uri]
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body
    app = get_application_model().objects.get(client_id=body["client_id"])
    assert app.registration_source == "dcr" and app.client_type == "public" and app.user is None


@pytest.mark.parametrize(
    "redirect_uri, words",
    [
        ("http://evil.example/callback", "plain http to a non-loopback host"),
        ("javascript:alert(1)//", "unsupported scheme"),
        ("myapp://callback", "unsupported scheme"),
        ("https://app.example/cb#frag", "fragment"),
        ("https://*.example/cb", "wildcard"),
        ("https://user:pw@app.example/cb", "credentials"),
    ],
)
def test_other_redirect_uris_are_refused_with_a_clear_error(gateway_server, redirect_uri, words):
    response = post_registration(gateway_server.url, redirect_uris=[redirect_uri])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert words in response.json()["error_description"]


@pytest.mark.parametrize(
    "metadata, words",
    [
        ({"redirect_uris": []}, "non-empty"),
        ({"grant_types": ["client_credentials"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "password"]}, "grant_types"),
        ({"response_types": ["token"]}, "response_types"),
        ({"client_name": "x" * 500}, "client_name"),
    ],
)
def test_unsupported_metadata_is_refused(gateway_server, metadata, words):
    response = post_registration(gateway_server.url, **{"redirect_uris": ["http://127.0.0.1:1/cb"], **metadata})
    assert response.status_code == 400
    assert words in response.json()["error_description"]


def test_malformed_body_is_refused(gateway_server):
    response = httpx.post(
        gateway_server.url + "/oauth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


def test_registration_management_cannot_bypass_the_redirect_policy(gateway_server):
    body = register_client(gateway_server.url)
    headers = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = httpx.put(
        body["registration_client_uri"], headers=headers, json={**GOOD, "redirect_uris": ["http://evil.example/cb"]}
    )
    assert update.status_code == 400 and update.json()["error"] == "invalid_redirect_uri"
    assert httpx.get(body["registration_client_uri"], headers=headers).json()["redirect_uris"] == body["redirect_uris"]


def test_registration_is_capped_per_ip(strict_gateway):
    accepted = [
        post_registration(strict_gateway.url, client_name=f"app {i}", redirect_uris=["http://127.0.0.1:1/cb"])
        for i in range(3)
    ]
    assert [r.status_code for r in accepted] == [201, 201, 201]
    refused = post_registration(strict_gateway.url, client_name="app 3", redirect_uris=["http://127.0.0.1:1/cb"])
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert 0 < int(refused.headers["retry-after"]) <= 3600


def test_a_client_registering_on_every_start_is_never_locked_out(strict_gateway):
    """Claude Code-style: the same metadata on every start, a new loopback port each time."""
    answers = [
        post_registration(strict_gateway.url, redirect_uris=[f"http://localhost:{40000 + i}/callback"])
        for i in range(3 * 4)
    ]  # four times the cap
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["client_id"] for r in answers}) == 1
    first, later = answers[0].json(), answers[1].json()
    assert "registration_access_token" in first and "registration_access_token" not in later
    assert later["client_id_issued_at"] == first["client_id_issued_at"]
    # Nobody manages a shared registration, not even its first registrant (RFC 7592).
    managed = httpx.put(
        first["registration_client_uri"],
        timeout=10,
        json={**GOOD, "redirect_uris": ["https://attacker.example/cb"]},
        headers={"Authorization": f"Bearer {first['registration_access_token']}"},
    )
    assert managed.status_code == 401
    # Only the first registration used the cap (3): two new ones still fit.
    cb = ["http://localhost:1/callback"]
    fresh = [post_registration(strict_gateway.url, client_name=f"other {i}", redirect_uris=cb) for i in range(2)]
    assert [r.status_code for r in fresh] == [201, 201]
    assert post_registration(strict_gateway.url, client_name="one too many", redirect_uris=cb).status_code == 429
    assert post_registration(strict_gateway.url, redirect_uris=["http://localhost:1/callback"]).status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"client_name": "Another app"},
        {"redirect_uris": ["http://localhost:1/other-path"]},
        {"redirect_uris": ["https://app.example/cb"]},
        {"scope": "read"},
        {"software_id": "com.example.app"},
    ],
)
def test_a_different_registration_gets_its_own_client(gateway_server, change):
    base = post_registration(gateway_server.url, redirect_uris=["http://localhost:1/callback"]).json()
    other = post_registration(gateway_server.url, **{"redirect_uris": ["http://localhost:1/callback"], **change})
    assert other.status_code == 201 and other.json()["client_id"] != base["client_id"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_registrations_are_never_shared_and_say_what_they_got(gateway_server, method):
    first = post_registration(
        gateway_server.url, token_endpoint_auth_method=method, redirect_uris=["https://app.example/cb"]
    )
    second = post_registration(
        gateway_server.url, token_endpoint_auth_method=method, redirect_uris=["https://app.example/cb"]
    )
    assert first.status_code == second.status_code == 201
    a, b = first.json(), second.json()
    assert a["client_id"] != b["client_id"] and a["client_secret"] != b["client_secret"]
    assert a["token_endpoint_auth_method"] == method
    assert a["client_secret_expires_at"] == 0  # RFC 7591 §3.2.1: required with a secret; 0 = never
    assert abs(a["client_id_issued_at"] - timezone.now().timestamp()) < 120
    read = httpx.get(
        a["registration_client_uri"], timeout=10, headers={"Authorization": f"Bearer {a['registration_access_token']}"}
    )
    assert read.status_code == 200 and read.json()["token_endpoint_auth_method"] == method


def test_public_registration_answer_is_complete(gateway_server):
    answer = post_registration(gateway_server.url, redirect_uris=["http://localhost:1/callback"]).json()
    assert answer["token_endpoint_auth_method"] == "none" and "client_secret" not in answer
    assert isinstance(answer["client_id_issued_at"], int)


def test_an_unsupported_auth_method_is_refused_clearly(gateway_server):
    refused = post_registration(
        gateway_server.url, token_endpoint_auth_method="private_key_jwt", redirect_uris=["https://app.example/cb"]
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"
    assert "client_secret_post" in refused.json()["error_description"]


def test_never_used_registrations_are_pruned(gateway_server, demo_users, settings):
    Application = get_application_model()
    unused = register_client(gateway_server.url, client_name="abandoned")["client_id"]
    used = obtain_tokens(gateway_server.url, "demo", "pelcro-demo-2026", "acme", client_name="in use")["client_id"]
    recent = register_client(gateway_server.url, client_name="just registered")["client_id"]
    old = timezone.now() - timezone.timedelta(hours=settings.PELCRO_GATEWAY["DCR_UNUSED_PRUNE_HOURS"] + 1)
    Application.objects.filter(client_id__in=[unused, used]).update(created=old)

    assert prune_unused_registrations() == 1
    remaining = set(Application.objects.values_list("client_id", flat=True))
    assert unused not in remaining and {used, recent} <= remaining


# Every client metadata member of RFC 7591 §2 (and §2.2's language-tagged form), RFC 7592's
# client_id/client_secret echo, and an extension: a `null` value means "not given".
NULLABLE_MEMBERS = [
    "client_name",
    "client_name#ja-Jpan-JP",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "software_statement",
    "client_secret",
    "x_vendor_extension",
]
# What differs between two registrations of the same metadata.
PER_REGISTRATION = {
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "registration_access_token",
    "registration_client_uri",
    "redirect_uris",
}


def _comparable(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key not in PER_REGISTRATION}


_ports = iter(range(20000, 30000))


def _fresh_uri() -> list[str]:
    """A redirect URI no other registration has (so none is a shared one, see registrations)."""
    return [f"http://127.0.0.1:{next(_ports)}/callback"]


@pytest.mark.parametrize("members", [[member] for member in NULLABLE_MEMBERS] + [NULLABLE_MEMBERS])
def test_null_members_are_treated_as_omitted_at_registration(gateway_server, members):
    """RFC 7591 §2: all members are optional; a client writing unset members as null gets
    what omitting them gives."""
    url = gateway_server.url + "/oauth/register"
    with_nulls = httpx.post(url, json={"redirect_uris": _fresh_uri(), **dict.fromkeys(members)}, timeout=10)
    omitted = httpx.post(url, json={"redirect_uris": _fresh_uri()}, timeout=10)
    assert with_nulls.status_code == omitted.status_code == 201, with_nulls.text
    assert _comparable(with_nulls.json()) == _comparable(omitted.json())
    assert not [key for key, value in with_nulls.json().items() if value is None]
    stored = get_application_model().objects.get(client_id=with_nulls.json()["client_id"])
    assert stored.name == "" and stored.authorization_grant_type == "authorization-code"


@pytest.mark.parametrize("members", [[member] for member in NULLABLE_MEMBERS] + [NULLABLE_MEMBERS])
def test_null_members_are_treated_as_omitted_at_update(gateway_server, members):
    """RFC 7592 §2.2: the PUT takes the same members, the same way."""
    answers = []
    for nulls in (dict.fromkeys(members), {}):
        body = register_client(gateway_server.url, client_name="to update")
        headers = {"Authorization": f"Bearer {body['registration_access_token']}"}
        update = httpx.put(
            body["registration_client_uri"],
            headers=headers,
            timeout=10,
            json={"client_id": body["client_id"], "redirect_uris": _fresh_uri(), **nulls},
        )
        assert update.status_code == 200, update.text
        answers.append(update.json())
    assert _comparable(answers[0]) == _comparable(answers[1])
    assert "client_name" not in answers[0] or answers[0]["client_name"] == ""


@pytest.mark.parametrize("body", [{}, {"redirect_uris": None}, dict.fromkeys(["redirect_uris", *NULLABLE_MEMBERS])])
def test_null_redirect_uris_is_as_missing_as_no_redirect_uris(gateway_server, body):
    response = httpx.post(gateway_server.url + "/oauth/register", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_redirect_uri",
        "error_description": "redirect_uris must be a non-empty array",
    }


def test_null_redirect_uris_at_update_is_refused_and_changes_nothing(gateway_server):
    body = register_client(gateway_server.url)
    headers = {"Authorization": f"Bearer {body['registration_access_token']}"}
    update = httpx.put(
        body["registration_client_uri"],
        headers=headers,
        timeout=10,
        json={"client_id": body["client_id"], "redirect_uris": None, "client_name": None},
    )
    assert update.status_code == 400 and update.json()["error"] == "invalid_redirect_uri"
    assert (
        httpx.get(body["registration_client_uri"], headers=headers, timeout=10).json()["redirect_uris"]
        == body["redirect_uris"]
    )
