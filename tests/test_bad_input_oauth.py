"""Bad input to the OAuth endpoints, property-based (hypothesis), against a live gateway:
`/oauth/authorize` (query and consent form, signed in or not), `/oauth/token`,
`/oauth/register` (JSON bodies) and its RFC 7592 management URL, `/oauth/revoke`,
`/oauth/introspect`.

Parameters are mostly plausible (a real client id, the registered redirect URI, S256) so
the requests get deep into the server, with any of them missing, repeated, of the wrong
shape or made up. The answer is always a page, a redirect or an HTTP error — never a 5xx,
never a traceback, in the answer or in the gateway's log. JSON endpoints answer errors as
`{"error": ...}` objects.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devtools.oauth_client import DEFAULT_REDIRECT_URI, authorize, parse_forms, pkce_pair, register_client, signed_in
from tests.support.faults import FUZZ, HEADER_TEXT, JUNK, LogWatch, assert_no_traceback_logged, mostly, to_json
from tests.support.mcp import PASSWORDS

# Query and form values: printable text, unicode, control characters, long values.
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=40),
    st.sampled_from(["", " ", "%", "%zz", "\x00", "x" * 3000, "é" * 500, "read write admin"]),
)
# Redirect URIs a parser could trip over.
ODD_URIS = st.sampled_from(
    [
        "http://[::1",
        "https://[",
        "http://127.0.0.1:99999/cb",
        "http://127.0.0.1:-1/cb",
        "https://a:b@host/cb",
        "cursor://",
        "javascript:alert(1)",
        "data:text/html,x",
        "//evil.example/cb",
        "http://127.0.0.1:47123/callback#x",
        "https://example.com/" + "a" * 2100,
        "vscode:/x",
        "HTTP://LOCALHOST/cb",
        "http://localhost./cb",
        "\\\\host\\cb",
    ]
)


class OAuthTarget:
    """The live gateway, a registered public client, a confidential one, and a signed-in person."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.url = gateway.url
        self.http = httpx.Client(base_url=gateway.url, timeout=30, follow_redirects=False)
        self.public = register_client(gateway.url, client_name="fuzz-public")
        self.confidential = register_client(
            gateway.url, client_name="fuzz-confidential", token_endpoint_auth_method="client_secret_basic"
        )
        self.session = signed_in(gateway.url, "demo", PASSWORDS["demo"])
        # One real code and refresh token, so some requests carry genuine values.
        self.code = authorize(self.session, gateway.url, self.public["client_id"], "acme")
        token = httpx.post(
            gateway.url + "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": self.code["code"],
                "code_verifier": self.code["verifier"],
                "redirect_uri": DEFAULT_REDIRECT_URI,
                "client_id": self.public["client_id"],
                "resource": gateway.url + "/",
            },
        ).json()
        self.refresh_token, self.access_token = token["refresh_token"], token["access_token"]

        self.watch = LogWatch(gateway)

    def close(self) -> None:
        self.http.close()
        self.session.close()


@pytest.fixture
def oauth(transactional_db, demo_users, fuzz_gateway):
    target = OAuthTarget(fuzz_gateway)
    yield target
    target.close()
    # Django's security log (a redirect without a scheme, an oversized body…) is allowed:
    # each such request was refused with a 4xx, which the tests check.
    assert_no_traceback_logged(target.watch, allowed_loggers=("django.security.",))


def assert_proper(response: httpx.Response, json_errors: bool = False) -> None:
    """No 5xx and no traceback; with `json_errors`, a 4xx carries an OAuth error object."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "/' not in response.text
    if response.status_code in (301, 302, 303, 307):
        assert response.headers.get("location")
    if json_errors and response.status_code >= 400 and response.status_code != 413:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


AUTH_HEADERS = st.one_of(
    st.none(),
    HEADER_TEXT,
    st.binary(min_size=1, max_size=30).map(lambda b: "Basic " + base64.b64encode(b).decode()),
    st.tuples(TEXT, TEXT).map(lambda pair: basic(*pair)),
)


@st.composite
def params(draw, good: dict, odd: dict | None = None) -> dict[str, list[str]]:
    """Query or form parameters: each known key mostly present, mostly with its good value,
    else an odd one or any text; now and then repeated; some keys made up."""
    odd = odd or {}
    pairs: dict[str, list[str]] = {}
    for key, value in good.items():
        if draw(st.sampled_from([True] * 7 + [False])):
            pairs[key] = [draw(mostly(st.just(value), odd.get(key, TEXT) | TEXT))]
            if draw(st.sampled_from([False] * 9 + [True])):
                pairs[key].append(draw(TEXT))  # the same parameter twice
    for key, value in draw(st.lists(st.tuples(st.text(max_size=12), TEXT), max_size=2)):
        pairs.setdefault(key, []).append(value)
    return pairs


def test_authorize_survives_any_query_signed_in_or_not(oauth):
    client_id = oauth.public["client_id"]
    verifier, challenge = pkce_pair()
    good = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": "read write",
        "resource": oauth.url + "/",
    }
    odd = {
        "response_type": st.sampled_from(["token", "code id_token", "none"]),
        "client_id": st.sampled_from([oauth.confidential["client_id"], "no-such-client"]),
        "redirect_uri": st.one_of(st.just("http://127.0.0.1:5/callback"), ODD_URIS),
        "code_challenge": st.sampled_from(["short", verifier]),
        "code_challenge_method": st.sampled_from(["plain", "s256", "RS256"]),
        "scope": st.sampled_from(["read", "write", "admin", "openid", ""]),
        "resource": st.sampled_from(["https://elsewhere.example/", oauth.url]),
    }
    good.update({"prompt": "consent", "nonce": "n"})
    odd["prompt"] = st.sampled_from(["none", "login", "select_account"])
    statuses = []

    @settings(FUZZ, max_examples=120)
    @example(query={**{k: [v] for k, v in good.items()}, "client_id": ["\x00"]}, signed_in=True)
    @given(query=params(good, odd), signed_in=st.sampled_from([True, True, False]))
    def check(query, signed_in):
        http = oauth.session if signed_in else oauth.http
        response = http.get("/oauth/authorize", params=query)
        assert_proper(response)
        statuses.append(response.status_code)

    check()
    assert {200, 302} <= set(statuses) and any(400 <= s < 500 for s in statuses), sorted(set(statuses))


def test_consent_form_survives_any_fields(oauth):
    verifier, challenge = pkce_pair()
    page = oauth.session.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": oauth.public["client_id"],
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "read write",
            "resource": oauth.url + "/",
        },
    )
    form = next(f for f in parse_forms(page.text) if f["id"] == "consent-form")
    accounts = [radio["value"] for radio in form["radios"]["account"]]
    good = {name: value for name, value in form["hidden"].items() if name != "csrfmiddlewaretoken"}
    good.update({"account": accounts[0], "access": "read_write", "allow": "true"})
    odd = {
        "account": st.sampled_from(accounts + ["0", "999999", "-1", "acme"]),
        "access": st.sampled_from(["read", "write", "admin"]),
        "allow": st.sampled_from(["", "false"]),
    }
    statuses = []

    @settings(FUZZ, max_examples=60)
    # An emptied resource field (the form's URL still has one) was a 500.
    @example(fields={**{k: [v] for k, v in good.items()}, "resource": [""]})
    @given(fields=params(good, odd))
    def check(fields):
        data = {**fields, "csrfmiddlewaretoken": form["hidden"]["csrfmiddlewaretoken"]}
        response = oauth.session.post(form["action"], data=data)
        assert_proper(response)
        statuses.append(response.status_code)

    check()
    assert 302 in statuses and any(s != 302 for s in statuses), sorted(set(statuses))


def test_token_endpoint_answers_any_request_with_an_oauth_error_or_tokens(oauth):
    public, confidential = oauth.public["client_id"], oauth.confidential["client_id"]
    good = {
        "grant_type": "authorization_code",
        "code": oauth.code["code"],
        "code_verifier": oauth.code["verifier"],
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "client_id": public,
        "refresh_token": oauth.refresh_token,
        "resource": oauth.url + "/",
        "scope": "read write",
    }
    odd = {
        "grant_type": st.sampled_from(
            [
                "refresh_token",
                "client_credentials",
                "password",
                "urn:ietf:params:oauth:grant-type:device_code",
                "implicit",
            ]
        ),
        "code": st.just("not-a-code"),
        "code_verifier": st.sampled_from(["short", "x" * 200]),
        "redirect_uri": ODD_URIS,
        "client_id": st.sampled_from([confidential, "no-such-client"]),
        "refresh_token": st.just("not-a-refresh-token"),
        "resource": st.just("https://elsewhere.example/"),
        "scope": st.sampled_from(["read", "admin"]),
        "client_secret": st.sampled_from([oauth.confidential["client_secret"], "wrong"]),
        "username": st.just("demo"),
        "password": st.just("wrong"),
    }
    good.update({"client_secret": oauth.confidential["client_secret"], "username": "demo", "password": "wrong"})

    @settings(FUZZ, max_examples=150)
    # NUL in a parameter was a 500 on PostgreSQL (it cannot even look the value up).
    @example(
        fields={"grant_type": ["authorization_code"], "code": ["\x00"], "client_id": [public, "\x00"]},
        authorization=None,
        encoding="form",
        raw=b"",
    )
    @example(fields={"grant_type": ["refresh_token"]}, authorization=basic("a\x00b", "x"), encoding="form", raw=b"")
    @given(
        fields=params(good, odd),
        authorization=AUTH_HEADERS,
        encoding=st.sampled_from(["form", "form", "form", "json", "raw"]),
        raw=st.binary(max_size=200),
    )
    def check(fields, authorization, encoding, raw):
        headers = {"Authorization": authorization} if authorization else {}
        if encoding == "form":
            response = oauth.http.post("/oauth/token", data=fields, headers=headers)
        elif encoding == "json":
            response = oauth.http.post(
                "/oauth/token", content=to_json(fields), headers={**headers, "Content-Type": "application/json"}
            )
        else:
            response = oauth.http.post(
                "/oauth/token", content=raw, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
            )
        assert_proper(response, json_errors=True)
        if response.status_code == 200:
            assert response.json()["token_type"] == "Bearer"

    check()


REGISTRATION = {
    "redirect_uris": st.one_of(st.just([DEFAULT_REDIRECT_URI]), st.lists(ODD_URIS | TEXT, max_size=12), JUNK),
    "client_name": st.one_of(TEXT, JUNK),
    "grant_types": st.one_of(st.just(["authorization_code", "refresh_token"]), st.lists(TEXT, max_size=3), JUNK),
    "response_types": st.one_of(st.just(["code"]), st.lists(TEXT, max_size=3), JUNK),
    "token_endpoint_auth_method": st.one_of(
        st.sampled_from(["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]), JUNK
    ),
    "scope": st.one_of(st.sampled_from(["read write", "admin"]), JUNK),
    "client_uri": st.one_of(ODD_URIS, JUNK),
    "logo_uri": st.one_of(ODD_URIS, JUNK),
    "contacts": JUNK,
    "jwks": JUNK,
    "jwks_uri": JUNK,
    "software_id": JUNK,
    "software_statement": JUNK,
}


@st.composite
def registration_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["metadata"] * 4 + ["json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return to_json(draw(JUNK))
    body = {key: draw(value) for key, value in REGISTRATION.items() if draw(st.sampled_from([True, True, False]))}
    body.update(draw(st.dictionaries(st.text(max_size=12), JUNK, max_size=2)))
    return to_json(body)


def test_registration_answers_any_body_with_a_client_or_an_oauth_error(oauth):
    statuses = []

    @settings(FUZZ, max_examples=150)
    # Inputs that once crashed the server, always tried.
    @example(body=b'{"redirect_uris": ["http://[::1"]}', content_type="application/json")
    @example(
        body=b'{"redirect_uris": ["http://127.0.0.1:5/cb"], "client_name": "a\\u0000b"}',
        content_type="application/json",
    )
    @example(body=b'{"redirect_uris": ' + b"[" * 5000 + b"]" * 5000 + b"}", content_type="application/json")
    @given(
        body=registration_bodies(),
        content_type=st.sampled_from(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded"]),
    )
    def check(body, content_type):
        response = oauth.http.post("/oauth/register", content=body, headers={"Content-Type": content_type})
        assert_proper(response, json_errors=True)
        if response.status_code == 201:
            assert response.json()["client_id"]
        statuses.append(response.status_code)

    check()
    assert 201 in statuses and 400 in statuses, sorted(set(statuses))


def test_registration_management_refuses_junk(oauth):
    client_id = oauth.public["client_id"]

    @settings(FUZZ, max_examples=60)
    @example(method="GET", path_id="%00", token=None, body=b"{}")
    @example(
        method="PUT",
        path_id=client_id,
        token=oauth.access_token,
        body=b'{"redirect_uris": ["http://127.0.0.1:5/cb"], "client_name": "a\\u0000b"}',
    )
    @given(
        method=st.sampled_from(["GET", "PUT", "DELETE"]),
        path_id=st.one_of(
            st.just(client_id),
            st.text(
                alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"),
                min_size=1,
                max_size=40,
            ),
        ),
        token=st.one_of(st.none(), HEADER_TEXT, st.just(oauth.access_token)),
        body=registration_bodies(),
    )
    def check(method, path_id, token, body):
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        response = oauth.http.request(
            method, f"/oauth/register/{path_id}", content=body if method == "PUT" else None, headers=headers
        )
        assert_proper(response)
        # Without this client's registration access token nothing is shown or changed.
        assert response.status_code >= 400, (method, path_id, response.status_code)

    check()
    assert httpx.get(oauth.url + "/.well-known/oauth-authorization-server").status_code == 200


def test_revoke_and_introspect_answer_any_request_clearly(oauth):
    public, confidential = oauth.public["client_id"], oauth.confidential
    good = {"token": oauth.access_token, "token_type_hint": "access_token", "client_id": public}
    odd = {
        "token": st.sampled_from([oauth.refresh_token, "not-a-token", ""]),
        "token_type_hint": st.sampled_from(["refresh_token", "id_token", "junk"]),
        "client_id": st.sampled_from([confidential["client_id"], "no-such-client"]),
    }
    good_basic = basic(confidential["client_id"], confidential["client_secret"])

    # Each request with client credentials costs a password hash on the server: fewer examples.
    @settings(FUZZ, max_examples=50)
    @given(
        endpoint=st.sampled_from(["/oauth/revoke", "/oauth/introspect"]),
        fields=params(good, odd),
        authorization=st.one_of(st.just(good_basic), AUTH_HEADERS),
        method=st.sampled_from(["POST"] * 5 + ["GET"]),
    )
    def check(endpoint, fields, authorization, method):
        headers = {"Authorization": authorization} if authorization else {}
        if method == "GET":
            response = oauth.http.get(endpoint, params=fields, headers=headers)
        else:
            response = oauth.http.post(endpoint, data=fields, headers=headers)
        assert_proper(response)
        if endpoint == "/oauth/introspect" and response.status_code == 200:
            body = response.json()
            # Only the confidential client's own tokens could be active; it has none.
            assert body == {"active": False}, body

    check()


def test_huge_bodies_to_the_oauth_endpoints_are_refused(oauth, fuzz_gateway):
    watch = LogWatch(fuzz_gateway)
    huge = b"x=" + b"a" * (5 * 1024 * 1024)
    for path, content_type in [
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/oauth/revoke", "application/x-www-form-urlencoded"),
        ("/oauth/introspect", "application/x-www-form-urlencoded"),
        ("/oauth/register", "application/json"),
    ]:
        response = oauth.http.post(path, content=huge, headers={"Content-Type": content_type})
        assert_proper(response)
        assert 400 <= response.status_code < 500, (path, response.status_code)
    # Django's security log records each refusal with its stack (its design; nothing of it
    # reaches the caller).
    assert_no_traceback_logged(watch, allowed_loggers=("django.security.RequestDataTooBig",))
