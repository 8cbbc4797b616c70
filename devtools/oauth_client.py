"""The OAuth client flow over real HTTP against a live gateway, as an MCP client runs it.

`obtain_tokens(gateway_url, username, password, account_slug, access=...)` runs the whole
flow: dynamic client registration (RFC 7591), sign-in, the consent form (parsed and
submitted like a browser), PKCE S256 (RFC 7636), the code exchange; it returns the token
response plus `client_id`. The steps it is built from (`register_client`, `signed_in`,
`authorize`, `exchange_code`, `refresh`) are here for callers that bend one step.

`obtain_open_tokens(gateway_url, site_id, email, password, access=...)` is the same for the
Open server (`/open`): the subscriber's publication, e-mail and password and consent on the
authorization page (`subscriber_authorize`), the code exchanged for the Open resource.
Used by the tests and the benchmarks; it imports nothing of the gateway.
"""

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

__all__ = [
    "DEFAULT_REDIRECT_URI",
    "MCP_HEADERS",
    "authorize",
    "authorize_url",
    "consent_form",
    "exchange_code",
    "mcp_url",
    "obtain_open_tokens",
    "obtain_tokens",
    "open_url",
    "parse_forms",
    "pkce_pair",
    "redirect_params",
    "refresh",
    "register_client",
    "signed_in",
    "submit_consent",
    "subscriber_authorize",
    "subscriber_step",
]

DEFAULT_REDIRECT_URI = "http://127.0.0.1:47123/callback"
# Headers of an MCP Streamable HTTP request.
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def mcp_url(gateway_url: str) -> str:
    """The MCP resource identifier of a gateway (PUBLIC_URL + "/")."""
    return gateway_url.rstrip("/") + "/"


def pkce_pair() -> tuple[str, str]:
    """A PKCE (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def register_client(gateway_url: str, client_name: str = "pelcro-test", redirect_uris=None, **metadata) -> dict:
    """RFC 7591 registration of a public client; returns the registration response."""
    body = {
        "client_name": client_name,
        "redirect_uris": redirect_uris or [DEFAULT_REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    response = httpx.post(gateway_url + "/oauth/register", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


class FormParser(HTMLParser):
    """Collects each <form>'s action and inputs (hidden values and radio options)."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"id": attrs.get("id"), "action": attrs.get("action"), "hidden": {}, "radios": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            kind = attrs.get("type", "text")
            if kind == "hidden":
                self._current["hidden"][attrs["name"]] = attrs.get("value", "")
            elif kind == "radio":
                self._current["radios"].setdefault(attrs["name"], []).append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def signed_in(gateway_url: str, username: str, password: str) -> httpx.Client:
    """An httpx session signed in through /login (CSRF token from the form, like a browser)."""
    session = httpx.Client(base_url=gateway_url, timeout=10, follow_redirects=False)
    page = session.get("/login")
    token = next(f for f in parse_forms(page.text) if f["action"] == "/login")["hidden"]["csrfmiddlewaretoken"]
    response = session.post(
        "/login",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/connections"},
    )
    assert response.status_code == 302, f"login failed ({response.status_code})"
    return session


def authorize_url(
    gateway_url: str,
    client_id: str,
    challenge: str,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    scope: str | None = "read write",
    state: str = "st-1",
    method: str | None = "S256",
    resource: str | None = "default",
    **extra,
) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    if scope is not None:
        params["scope"] = scope
    if resource is not None:
        params["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    params.update(extra)
    return "/oauth/authorize?" + urlencode(params)


def consent_form(page_html: str) -> dict:
    return next(f for f in parse_forms(page_html) if f["id"] == "consent-form")


def submit_consent(
    session: httpx.Client,
    page: httpx.Response,
    account_slug: str | None,
    access: str = "read_write",
    allow: bool = True,
    confirm_writes: bool = True,
) -> httpx.Response:
    """Fill in and submit the consent form the way a browser would. `confirm_writes`: the
    "Ask me before money-moving or irreversible actions" box (ticked by default; the page's
    hidden "0" then the box's "1", of which the server reads the last)."""
    form = consent_form(page.text)
    data = dict(form["hidden"])
    if account_slug is not None:
        radio = next(r for r in form["radios"]["account"] if r["data-slug"] == account_slug)
        data["account"] = radio["value"]
    data["access"] = access
    if "confirm_writes" in data:  # the page shows the box (the app asked for write access)
        data["confirm_writes"] = "1" if confirm_writes else "0"
    data["allow"] = "true" if allow else ""
    return session.post(form["action"], data=data)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of an authorization response redirect."""
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def authorize(
    session: httpx.Client,
    gateway_url: str,
    client_id: str,
    account_slug: str,
    access: str = "read_write",
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    confirm_writes: bool = True,
    **url_params,
) -> dict:
    """GET the authorize URL, submit the consent form; returns code, state, iss and verifier."""
    verifier, challenge = pkce_pair()
    page = session.get(authorize_url(gateway_url, client_id, challenge, redirect_uri=redirect_uri, **url_params))
    assert page.status_code == 200, (page.status_code, page.text[:500])
    params = redirect_params(submit_consent(session, page, account_slug, access, confirm_writes=confirm_writes))
    return {**params, "verifier": verifier}


def exchange_code(
    gateway_url: str,
    client_id: str,
    code: str,
    verifier: str,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    resource: str | None = "default",
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
    }
    if resource is not None:
        data["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    return httpx.post(gateway_url + "/oauth/token", data=data, timeout=10)


def refresh(gateway_url: str, client_id: str, refresh_token: str, resource: str | None = "default") -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    if resource is not None:
        data["resource"] = mcp_url(gateway_url) if resource == "default" else resource
    return httpx.post(gateway_url + "/oauth/token", data=data, timeout=10)


def obtain_tokens(
    gateway_url: str,
    username: str,
    password: str,
    account_slug: str,
    access: str = "read_write",
    client_name: str = "pelcro-test",
    confirm_writes: bool = True,
) -> dict:
    """Run DCR + sign-in + consent + code exchange over HTTP; return the token response
    (access_token, refresh_token, scope, expires_in, …) plus `client_id`. `confirm_writes`
    False unticks "Ask me before money-moving or irreversible actions" (owners and admins)."""
    client = register_client(gateway_url, client_name=client_name)
    session = signed_in(gateway_url, username, password)
    try:
        result = authorize(
            session, gateway_url, client["client_id"], account_slug, access, confirm_writes=confirm_writes
        )
    finally:
        session.close()
    response = exchange_code(gateway_url, client["client_id"], result["code"], result["verifier"])
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": client["client_id"]}


# --- the Open server: a subscriber's sign-in and consent --------------------------------------


def open_url(gateway_url: str) -> str:
    """The Open server's resource identifier of a gateway (PUBLIC_URL + "/open")."""
    return gateway_url.rstrip("/") + "/open"


def subscriber_step(page: httpx.Response) -> tuple[str, dict]:
    """Which step of the subscriber's authorization page `page` shows ("site", "sign_in" or
    "consent") and that step's form (action, hidden values, radios)."""
    forms = {form["id"]: form for form in parse_forms(page.text) if form["id"]}
    for step, form_id in (("consent", "consent-form"), ("sign_in", "sign-in-form"), ("site", "site-form")):
        if form_id in forms:
            return step, forms[form_id]
    raise AssertionError(f"not a step of the subscriber's authorization page ({page.status_code}): {page.text[:300]}")


def subscriber_authorize(
    session: httpx.Client,
    gateway_url: str,
    client_id: str,
    site_id: int,
    email: str,
    password: str,
    access: str = "read_write",
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    **url_params,
) -> dict:
    """GET the authorize URL for the Open server, then pick the publication (unless a
    `site_id` hint in `url_params` skipped that), sign in and allow `access`; returns code,
    state, iss and verifier."""
    verifier, challenge = pkce_pair()
    url = authorize_url(
        gateway_url, client_id, challenge, redirect_uri=redirect_uri, resource=open_url(gateway_url), **url_params
    )
    page = session.get(url)
    assert page.status_code == 200, (page.status_code, page.text[:500])
    step, form = subscriber_step(page)
    if step == "site":
        page = session.post(form["action"], data={**form["hidden"], "site_id": str(site_id)})
        step, form = subscriber_step(page)
    assert step == "sign_in", step
    page = session.post(form["action"], data={**form["hidden"], "email": email, "password": password})
    step, form = subscriber_step(page)
    assert step == "consent", (step, page.text[:500])
    answer = session.post(form["action"], data={**form["hidden"], "access": access, "allow": "true"})
    return {**redirect_params(answer), "verifier": verifier}


def obtain_open_tokens(
    gateway_url: str,
    site_id: int,
    email: str,
    password: str,
    access: str = "read_write",
    client_name: str = "pelcro-open-test",
) -> dict:
    """DCR + the subscriber's sign-in and consent + code exchange for the Open server, over
    HTTP; the token response plus `client_id`."""
    client = register_client(gateway_url, client_name=client_name)
    with httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False) as session:
        result = subscriber_authorize(session, gateway_url, client["client_id"], site_id, email, password, access)
    response = exchange_code(
        gateway_url, client["client_id"], result["code"], result["verifier"], resource=open_url(gateway_url)
    )
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": client["client_id"]}
