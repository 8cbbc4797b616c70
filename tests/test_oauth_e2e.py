"""End to end with the `mcp` SDK's own OAuth client against a live gateway.

The SDK finds everything itself: the MCP endpoint answers 401 with a pointer to the
RFC 9728 document, from which it reaches the RFC 8414 document, registers (DCR) or uses
its client ID metadata document (CIMD), sends the "browser" to the authorize URL and
exchanges the code with PKCE. The test plays the person: a signed-in httpx session that
GETs the consent page, picks the account, submits the form and hands the redirect's
code/state/iss back to the SDK.
"""

import json
import os
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address

import anyio
import httpx
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from oauth2_provider.models import get_application_model, get_refresh_token_model

from accounts.models import Connection
from devtools.oauth_client import redirect_params, signed_in, submit_consent
from devtools.servers import ROOT, free_port
from tests.support.oauth import gateway_principal
from tests.support.servers import start_gateway

REDIRECT_URI = "http://127.0.0.1:47200/callback"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "oauth-e2e", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


class MemoryStorage:
    """The SDK's token storage, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Person:
    """The human at the browser: signed in, picks `account_slug` on the consent screen."""

    def __init__(self, gateway_url: str, username: str, password: str, account_slug: str, access="read_write"):
        self.gateway_url, self.username, self.password = gateway_url, username, password
        self.account_slug, self.access = account_slug, access
        self.authorize_url: str | None = None
        self.consent_pages: list[str] = []

    async def open_browser(self, url: str) -> None:
        self.authorize_url = url

    def _consent(self) -> dict:
        session = signed_in(self.gateway_url, self.username, self.password)
        try:
            page = session.get(self.authorize_url)
            assert page.status_code == 200, page.text[:300]
            self.consent_pages.append(page.text)
            return redirect_params(submit_consent(session, page, self.account_slug, self.access))
        finally:
            session.close()

    async def callback(self) -> AuthorizationCodeResult:
        params = await anyio.to_thread.run_sync(self._consent)
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


def sdk_provider(gateway_url: str, person: Person, client_name: str, client_metadata_url: str | None = None):
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=gateway_url + "/",
        client_metadata=OAuthClientMetadata(
            client_name=client_name, redirect_uris=[REDIRECT_URI], token_endpoint_auth_method="none"
        ),
        storage=storage,
        redirect_handler=person.open_browser,
        callback_handler=person.callback,
        client_metadata_url=client_metadata_url,
    )
    return provider, storage


async def call_mcp(gateway_url: str, provider) -> httpx2.Response:
    """One MCP request through the SDK's auth; returns the final response."""
    async with httpx2.AsyncClient(auth=provider, timeout=30) as client:
        return await client.post(gateway_url + "/", json=INITIALIZE, headers=MCP_HEADERS)


def connect(gateway_url, person, client_name, client_metadata_url=None):
    provider, storage = sdk_provider(gateway_url, person, client_name, client_metadata_url)
    response = anyio.run(call_mcp, gateway_url, provider)
    return provider, storage, response


@pytest.mark.sqlite
def test_sdk_discovers_registers_authorizes_and_refreshes(gateway_server, demo_users):
    url = gateway_server.url
    person = Person(url, "demo", "pelcro-demo-2026", "acme")
    provider, storage, response = connect(url, person, "pelcro-acme")

    # The MCP endpoint accepted the token the SDK obtained on its own.
    assert response.status_code == 200, response.text
    assert storage.tokens.scope == "read write"
    assert storage.tokens.expires_in == 3600
    # The consent screen named the app and warned that it registered itself.
    assert "pelcro-acme" in person.consent_pages[0] and "registered itself" in person.consent_pages[0]
    # The authorization request carried PKCE S256 and the MCP URL as resource.
    query = httpx.URL(person.authorize_url).params
    assert query["code_challenge_method"] == "S256"
    assert query["resource"] == url + "/"

    principal = gateway_principal(url, storage.tokens.access_token)
    assert principal.account_slug == "acme" and principal.can_write
    assert principal.client_name == "pelcro-acme"
    app = get_application_model().objects.get(client_id=storage.client_info.client_id)
    assert app.registration_source == "dcr" and app.client_type == "public"

    # Refresh: the SDK refreshes an expired access token by itself (rotation).
    first_access, first_refresh = storage.tokens.access_token, storage.tokens.refresh_token
    provider.context.token_expiry_time = time.time() - 1
    response = anyio.run(call_mcp, url, provider)
    assert response.status_code == 200, response.text
    assert storage.tokens.access_token != first_access
    assert storage.tokens.refresh_token != first_refresh
    assert gateway_principal(url, first_access) is None  # the old access token is gone
    refreshed = gateway_principal(url, storage.tokens.access_token)
    assert refreshed.connection_id == principal.connection_id  # same connection, new token
    assert Connection.objects.get(pk=principal.connection_id).last_used_at is not None


@pytest.mark.sqlite
def test_two_client_entries_hold_two_accounts_at_once(gateway_server, demo_users):
    url = gateway_server.url
    _, acme, ok1 = connect(url, Person(url, "demo", "pelcro-demo-2026", "acme"), "pelcro-acme")
    _, other, ok2 = connect(url, Person(url, "demo", "pelcro-demo-2026", "other", access="read"), "pelcro-other")
    assert ok1.status_code == ok2.status_code == 200

    p_acme = gateway_principal(url, acme.tokens.access_token)
    p_other = gateway_principal(url, other.tokens.access_token)
    assert (p_acme.account_slug, p_acme.can_write) == ("acme", True)
    assert (p_other.account_slug, p_other.can_write) == ("other", False)
    assert p_acme.client_id != p_other.client_id
    rows = Connection.objects.filter(user__username="demo", revoked_at__isnull=True)
    assert sorted((c.application.name, c.account.slug, c.access) for c in rows) == [
        ("pelcro-acme", "acme", "read_write"),
        ("pelcro-other", "other", "read"),
    ]


# --- client ID metadata document (CIMD) ----------------------------------------------------


def _certificates(tmp_dir):
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oauth-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp_dir / "ca.pem", tmp_dir / "server.pem", tmp_dir / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


class MetadataDocuments:
    """An https server on 127.0.0.1 serving client ID metadata documents by path."""

    def __init__(self, cert_path, key_path):
        self.documents: dict[str, dict] = {}
        self.fetches: list[str] = []
        documents, fetches = self.documents, self.fetches

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fetches.append(self.path)
                body = documents.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, path: str, **metadata) -> str:
        url = f"https://127.0.0.1:{self.port}{path}"
        self.documents[path] = {"client_id": url, **metadata}
        return url

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def cimd_setup(django_db_setup, django_db_blocker, tmp_path_factory):
    """A gateway allowed (dev only) to fetch metadata documents from a loopback https
    server whose CA it trusts, and that server."""
    ca_path, cert_path, key_path = _certificates(tmp_path_factory.mktemp("cimd"))
    documents = MetadataDocuments(cert_path, key_path)
    with django_db_blocker.unblock():
        gateway = start_gateway(None, CIMD_DEV_LOOPBACK_CA_FILE=str(ca_path))
    yield gateway, documents
    gateway.stop()
    documents.close()


@pytest.mark.sqlite
def test_sdk_uses_a_client_id_metadata_document(cimd_setup, transactional_db, demo_users):
    gateway, documents = cimd_setup
    url = gateway.url
    client_id = documents.publish(
        "/oauth/client-metadata.json",
        client_name="Metadata Client",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    person = Person(url, "demo", "pelcro-demo-2026", "other")
    _, storage, response = connect(url, person, "ignored by CIMD", client_metadata_url=client_id)

    assert response.status_code == 200, response.text
    assert storage.client_info.client_id == client_id  # no registration: the URL is the id
    assert documents.fetches == ["/oauth/client-metadata.json"]
    assert "Metadata Client" in person.consent_pages[0] and "127.0.0.1" in person.consent_pages[0]
    app = get_application_model().objects.get(client_id=client_id)
    assert app.registration_source == "cimd"
    principal = gateway_principal(url, storage.tokens.access_token)
    assert principal.account_slug == "other" and principal.client_id == client_id
    assert get_refresh_token_model().objects.filter(application=app, revoked__isnull=True).count() == 1


@pytest.mark.sqlite
def test_metadata_document_with_a_forbidden_redirect_uri_is_refused(cimd_setup, transactional_db, demo_users):
    gateway, documents = cimd_setup
    client_id = documents.publish(
        "/bad-client.json",
        client_name="Bad",
        redirect_uris=["http://evil.example/cb"],
        token_endpoint_auth_method="none",
    )
    session = signed_in(gateway.url, "demo", "pelcro-demo-2026")
    page = session.get(
        "/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": "http://evil.example/cb",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "state": "s",
        },
    )
    session.close()
    # An unknown client: an error page, never a redirect to the unvetted URI.
    assert page.status_code == 400
    assert "location" not in page.headers
    assert not get_application_model().objects.filter(client_id=client_id).exists()


def test_loopback_metadata_fetching_is_refused_outside_dev(tmp_path):
    env = {
        **os.environ,
        "GATEWAY_ENV": "prd",
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "API_KEY_ENCRYPTION_KEYS": "q3k2Zr3mJx4B1mS0v8oJbq0q2M0pZ8W3l9mZ3Yc2qkQ=",
        "PUBLIC_URL": "https://mcp.example.test",
        "CIMD_DEV_LOOPBACK_CA_FILE": str(tmp_path / "ca.pem"),
    }
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "accounts.E001" in result.stderr
