"""Log edges (pelcro_gateway/logging.py): credentials in unusual places of a URL or a line
are masked in every log line, and refused requests (4xx) never log a traceback.

The table below is the kind, place by place; then a real gateway logging at DEBUG with
uvicorn's access log on gets real tokens in each of those places, and every 4xx path we
know of, and its log is searched.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
import pytest

from pelcro_gateway.logging import ClientErrorsWithoutTraceback, redact, redact_record
from tests.support.faults import LogWatch
from tests.support.mcp import PASSWORDS
from tests.support.oauth import MCP_HEADERS, authorize, exchange_code, register_client, signed_in
from tests.test_security_logs import start_verbose_gateway

SECRET = "S3cr3tT0ken4567890abcdefXYZ"  # a DOT-shaped credential (letters and digits)

# (where, line): each line holds SECRET in one place of the kind.
PLACES = [
    ("query pair", f'"GET /?access_token={SECRET} HTTP/1.1" 401'),
    ("query pair, upper case", f'"GET /?ACCESS_TOKEN={SECRET} HTTP/1.1" 401'),
    ("query pair, mixed case", f'"GET /x?Refresh_Token={SECRET}&a=1 HTTP/1.1" 404'),
    ("authorization code", f'"GET /callback?code={SECRET}&state=x HTTP/1.1" 404'),
    ("unknown parameter name", f'"GET /x?t={SECRET} HTTP/1.1" 404'),
    ("bare query value", f'"GET /?{SECRET} HTTP/1.1" 401'),
    ("bare value after a pair", f'"GET /x?page=2&{SECRET} HTTP/1.1" 404'),
    ("path segment", f'"GET /tokens/{SECRET}/revoke HTTP/1.1" 404'),
    ("last path segment", f"Not Found: /oauth/{SECRET}"),
    ("matrix parameter", f'"GET /x;jsessionid={SECRET} HTTP/1.1" 404'),
    ("URL-encoded pair", f'"GET /x?q=1%26access_token%3D{SECRET} HTTP/1.1" 404'),
    ("URL-encoded name", f'"GET /x?access%5Ftoken={SECRET} HTTP/1.1" 404'),
    ("twice URL-encoded pair", f'"GET /x?q=%2526code%253D{SECRET} HTTP/1.1" 404'),
    ("nested in next", f'"GET /login?next=/cb%3Fcode%3D{SECRET} HTTP/1.1" 200'),
    ("fragment pair", f"redirecting to https://app.example/cb#access_token={SECRET}&token_type=bearer"),
    ("bare fragment", f"redirecting to https://app.example/cb#{SECRET}"),
    ("URL in a message", f"GET https://api.example/v1?api_key={SECRET}"),
    ("bearer header", f"Authorization: Bearer {SECRET}"),
    ("bearer in a query", f'"GET /?auth=Bearer%20{SECRET} HTTP/1.1" 401'),
    ("basic header", f"Authorization: Basic {SECRET}=="),
    ("header repr", f"[(b'authorization', b'Token {SECRET}'), (b'host', b'x')]"),
    ("header dict", f"{{'Authorization': 'Digest {SECRET}', 'X-Api-Key': '{SECRET}'}}"),
    ("cookie header", f"Cookie: sessionid={SECRET}; csrftoken=abc"),
    ("JSON body", f'{{"client_secret": "{SECRET}", "client_name": "x"}}'),
    ("form body", f"grant_type=refresh_token&refresh_token={SECRET}&client_id=abc"),
    ("repr pair", f"{{'code_verifier': '{SECRET}'}}"),
    ("colon pair", f"password: {SECRET}"),
    ("oauthlib prose", f"Validating access token {SECRET} for client abc"),
    ("prose code", f"Persisting authorization code {SECRET} for client abc"),
    ("JWT anywhere", "subject eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl here"),
]
# Lines that must come out as they went in (the log stays useful).
HARMLESS = [
    '127.0.0.1:51234 - "GET /health HTTP/1.1" 200',
    '127.0.0.1:51234 - "GET /oauth/authorize?response_type=code&client_id=abc&scope=read%20write HTTP/1.1" 302',
    "core api GET /plans -> 200",
    "Forbidden (Permission denied): /ops/",
    '  File "/work/app/.venv/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner',
    "status_code=200 per_page=100",
    '"GET /static/ops/dashboard.js HTTP/1.1" 200',
    '"GET /ops/accounts/12/ HTTP/1.1" 200',
]


@pytest.mark.parametrize("where, line", PLACES, ids=[where for where, _ in PLACES])
def test_every_place_of_a_credential_is_masked(where, line):
    cleaned = redact(line)
    assert SECRET not in cleaned and "eyJzdWIiOiIxMjMifQ" not in cleaned, (where, cleaned)
    assert "[redacted]" in cleaned


@pytest.mark.parametrize("line", HARMLESS)
def test_harmless_lines_are_left_alone(line):
    assert redact(line) == line


def test_records_tracebacks_and_arguments_are_masked():
    try:
        raise ValueError(f"bad request to /?access_token={SECRET}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:1", "GET", f"/?{SECRET}", "1.1", 401),
            sys.exc_info(),
        )
    redact_record(record)
    assert SECRET not in record.getMessage() and SECRET not in record.exc_text
    assert isinstance(record.args, tuple) and record.args[2] == "/?[redacted]"  # shape kept for formatters


def test_a_library_logger_with_its_own_handler_gets_masked_lines():
    """Masking happens when the record is made, so a handler that is not ours (uvicorn's,
    Celery's, a library's) writes the masked line too."""
    import io

    from pelcro_gateway import logging as gateway_logging

    gateway_logging.install()  # as GatewayConfig.ready() does in every process
    stream = io.StringIO()
    logger = logging.getLogger("some.library.of.ours")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("fetched %s", f"https://x.example/cb?code={SECRET}")
        try:
            raise RuntimeError(f"Authorization: Bearer {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert SECRET not in stream.getvalue() and "code=[redacted]" in stream.getvalue()
    assert "Traceback" in stream.getvalue()  # a server error keeps its traceback, masked


def test_client_error_records_lose_their_traceback_only():
    for status, keeps in [(403, False), (400, False), (404, False), (500, True)]:
        try:
            raise PermissionError("x")
        except PermissionError:
            import sys

            record = logging.LogRecord(
                "django.request", logging.WARNING, __file__, 1, "Forbidden: /ops/", (), sys.exc_info()
            )
        record.status_code = status
        ClientErrorsWithoutTraceback().filter(record)
        assert (record.exc_info is not None) == keeps, status
        assert record.getMessage() == "Forbidden: /ops/"


# --- A real gateway ------------------------------------------------------------------------------------


@pytest.fixture
def verbose_gateway(transactional_db, demo_users, sandbox_server, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_verbose_gateway(sandbox_server)
    yield server
    server.stop()


def _unusual_places(token: str) -> list[str]:
    """Request targets carrying `token` where the old redaction did not look."""
    encoded = quote(f"&access_token={token}", safe="")
    return [
        f"/?{token}",
        f"/?ACCESS_TOKEN={token}",
        f"/t/{token}",
        f"/oauth/{token}",
        f"/?x=1{encoded}",
        f"/?x={quote(encoded, safe='')}",
        f"/login?next={quote('/cb?code=' + token, safe='')}",
        f"/?auth=Bearer%20{token}",
        f"/connections;token={token}",
    ]


@pytest.mark.sqlite
def test_tokens_in_unusual_url_places_never_reach_the_server_log(verbose_gateway):
    url = verbose_gateway.url
    log = LogWatch(verbose_gateway)
    client_id = register_client(url, client_name="log-edges")["client_id"]
    session = signed_in(url, "demo", PASSWORDS["demo"])
    grant = authorize(session, url, client_id, "acme")
    tokens = exchange_code(url, client_id, grant["code"], grant["verifier"]).json()
    secrets = {
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "code": grant["code"],
        "verifier": grant["verifier"],
    }
    for _what, token in secrets.items():
        for target in _unusual_places(token):
            httpx.post(url + target, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=MCP_HEADERS)
            httpx.get(url + target)
    session.close()
    logged = log.text()
    assert '"GET /t/[redacted] HTTP/1.1" 404' in logged  # the access log was on and read
    assert "Not Found: /t/[redacted]" in logged  # and Django's own request warnings
    leaked = [what for what, token in secrets.items() if token in logged]
    assert leaked == [], f"{leaked} in the gateway's log"


def test_refused_requests_log_no_traceback(verbose_gateway, demo_users):
    """Every 4xx path we know of, once; the log then holds their lines but no traceback."""
    url = verbose_gateway.url
    log = LogWatch(verbose_gateway)
    member = signed_in(url, "alice", PASSWORDS["alice"])  # not staff
    statuses = {
        "ops as non-staff": member.get("/ops/").status_code,
        "ops api as non-staff": member.get("/ops/api/accounts").status_code,
        "ops account as non-staff": member.get("/ops/accounts/1/").status_code,
        "another person's connection": member.get("/connections/999999/activity").status_code,
        "bad Host": httpx.get(url + "/login", headers={"Host": "evil.example"}).status_code,
        "no CSRF token": httpx.post(url + "/login", data={"username": "x", "password": "y"}).status_code,
        "too many form fields": httpx.post(
            url + "/oauth/token",
            content="&".join(f"f{i}=1" for i in range(1500)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code,
        "form body too big": httpx.post(
            url + "/oauth/token",
            content=b"a=" + b"x" * 3_000_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code,
        "broken multipart": httpx.post(
            url + "/oauth/token", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}
        ).status_code,
        "NUL in query": httpx.get(url + "/oauth/authorize?client_id=%00").status_code,
        "unknown page": httpx.get(url + "/no-such-page").status_code,
        "token GET": httpx.get(url + "/oauth/token").status_code,
        "bad grant": httpx.post(url + "/oauth/token", data={"grant_type": "nope"}).status_code,
        "bad registration": httpx.post(
            url + "/oauth/register", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code,
        "MCP without token": httpx.post(url + "/", json={}, headers=MCP_HEADERS).status_code,
        "MCP bad token": httpx.post(
            url + "/", json={}, headers={**MCP_HEADERS, "Authorization": "Bearer x"}
        ).status_code,
        "MCP foreign origin": httpx.post(
            url + "/", json={}, headers={**MCP_HEADERS, "Origin": "https://evil.example"}
        ).status_code,
        "MCP GET": httpx.get(url + "/", headers={"Accept": "application/json"}).status_code,
        "MCP bad Host": httpx.post(url + "/", json={}, headers={**MCP_HEADERS, "Host": "evil.example"}).status_code,
        "MCP preflight, foreign origin": httpx.options(
            url + "/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        ).status_code,
        "registration, bad redirect": httpx.post(
            url + "/oauth/register", json={"redirect_uris": ["javascript:alert(1)"]}
        ).status_code,
        "revocation without client": httpx.post(url + "/oauth/revoke", data={"token": "x"}).status_code,
        "authorize, unknown client": member.get("/oauth/authorize?client_id=nope&response_type=code").status_code,
    }
    member.close()
    assert {k: v for k, v in statuses.items() if not 400 <= v < 500} == {}
    assert statuses["ops as non-staff"] == 403 and statuses["bad Host"] == 400
    logged = log.text()
    assert "Forbidden (Permission denied): /ops/" in logged  # the line stays
    assert "Traceback" not in logged, logged[logged.find("Traceback") - 300 :][:3000]


@pytest.mark.sqlite
@pytest.mark.parametrize("debug", ["1", "0"])
def test_each_django_request_warning_is_logged_once_formatted_and_redacted(
    transactional_db, demo_users, sandbox_server, django_db_blocker, debug
):
    """Django's default logging config adds its own handlers to "django" (a bare console
    one with DEBUG on); ours must be the only one writing django.request records."""
    with django_db_blocker.unblock():
        server = start_verbose_gateway(sandbox_server, DEBUG=debug)
    try:
        log = LogWatch(server)
        answer = httpx.get(f"{server.url}/oauth/register/{SECRET}", headers={"Authorization": f"Bearer {SECRET}"})
        assert answer.status_code == 401
        missing = httpx.get(f"{server.url}/no-such-page/{SECRET}")
        assert missing.status_code == 404
        logged = log.text()
    finally:
        server.stop()
    assert SECRET not in logged
    for line in ("Unauthorized: /oauth/register/[redacted]", "Not Found: /no-such-page/[redacted]"):
        found = [row for row in logged.splitlines() if line in row]
        assert len(found) == 1, (line, found)
        assert " WARNING django.request " in found[0]  # written by our formatted handler
