"""The consent POST's redirect chain in Chromium (issue 13, item 4).

Chromium applies the consent page's CSP `form-action` to every hop of the navigation
that follows the form POST. Clients register a callback that forwards the browser to
their desktop app's scheme (claude.ai's https callback → `claude://…`): that hop must
not be blocked, or the tab stays on the consent page and the app never gets its code.
The callback here is a real loopback server answering 302 to `claude://…` (form-action
treats an https callback's hop the same way; request routing in the browser would skip
the check, so a real server is used).
"""

import http.server
import threading

import pytest

from devtools.oauth_client import authorize_url, pkce_pair, register_client
from devtools.servers import free_port
from tests.test_consent_browser import sign_in


@pytest.fixture
def forwarding_callback():
    """A loopback callback that forwards the browser to claude://…; yields (url, hits)."""
    hits = []

    class Forward(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "claude://claude.ai/mcp-callback?" + self.path.partition("?")[2])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", free_port()), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback", hits
    server.shutdown()
    server.server_close()


@pytest.mark.browser
@pytest.mark.sqlite
def test_a_callback_may_forward_to_the_apps_native_scheme(gateway_server, demo_users, browser, forwarding_callback):
    callback, hits = forwarding_callback
    url = gateway_server.url
    client_id = register_client(url, client_name="Claude", redirect_uris=[callback])["client_id"]
    _, challenge = pkce_pair()
    page = browser.new_page()
    violations = []
    page.on("console", lambda message: violations.append(message.text) if "form-action" in message.text else None)
    page.goto(url + authorize_url(url, client_id, challenge, redirect_uri=callback, state="chain"))
    sign_in(page, "demo@example.com", "pelcro-demo-2026")
    page.check("input[name=account][data-slug=acme]")
    page.click("button[name=allow][value=true]")
    page.wait_for_timeout(1500)

    assert hits and "code=" in hits[0]  # the callback got the code…
    # …and its hop to claude:// was not blocked by the consent page's CSP. (Headless
    # Chromium has no app for claude://, so the tab itself stays, as a browser does while
    # the operating system opens the app.)
    assert violations == []
    page.close()
