"""Concurrent token requests against real gateway processes (issue 13, item 1).

Desktop clients run several processes sharing one stored refresh token; they refresh at
the same moment. Each trial fires duplicates of one grant at once, spread over two
gateway processes on the same database (one process runs sync views one at a time, so
real concurrency needs two), and checks: never a 5xx, every duplicate of a refresh gets
the same pair, that pair works and keeps rotating, and a duplicate code exchange issues
tokens once. Marked `sqlite`: `make test` runs it on PostgreSQL and on SQLite.
"""

import threading

import httpx
import pytest

from tests.support.oauth import authorize, gateway_principal, obtain_tokens, refresh, register_client, signed_in
from tests.support.servers import start_gateway
from tests.test_oauth_tokens import age_rotated_tokens

pytestmark = pytest.mark.sqlite

DEMO = ("demo", "pelcro-demo-2026")
DUPLICATES = 3
TRIALS = 6


@pytest.fixture(scope="module")
def _twin_gateway(django_db_setup, django_db_blocker, _session_gateway):
    """A second gateway process on the same database and the same PUBLIC_URL."""
    with django_db_blocker.unblock():
        server = start_gateway(None, PUBLIC_URL=_session_gateway.url)
    yield server
    server.stop()


@pytest.fixture
def gateways(gateway_server, _twin_gateway):
    return [gateway_server, _twin_gateway]


def at_once(calls) -> list[httpx.Response]:
    """Run the zero-argument `calls` in threads released together; their responses in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, httpx.Response) for r in results), results
    return results


def post_refresh(server, public_url, client_id, refresh_token):
    # `refresh` sends resource = the MCP URL of the gateway it posts to; both gateways
    # serve public_url, so name it explicitly.
    return lambda: httpx.post(
        server.url + "/oauth/token",
        timeout=30,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "resource": public_url + "/",
        },
    )


def test_concurrent_refreshes_of_one_token_all_get_the_same_working_pair(gateways, demo_users):
    url = gateways[0].url
    tokens = obtain_tokens(url, *DEMO, "acme")
    client_id, current = tokens["client_id"], tokens["refresh_token"]
    for trial in range(TRIALS):
        responses = at_once(
            [post_refresh(gateways[(trial + i) % 2], url, client_id, current) for i in range(DUPLICATES)]
        )
        assert [r.status_code for r in responses] == [200] * DUPLICATES, [r.text for r in responses]
        pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
        assert len(pairs) == 1, f"trial {trial}: duplicates got different pairs"
        access_token, new_refresh = pairs.pop()
        assert new_refresh != current
        assert gateway_principal(url, access_token).account_slug == "acme", f"trial {trial}: the pair is dead"
        current = new_refresh
    # The last pair still rotates; the first token, replayed past the window, kills the family.
    last = refresh(url, client_id, current)
    assert last.status_code == 200
    age_rotated_tokens(client_id)
    replay = refresh(url, client_id, tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert gateway_principal(url, last.json()["access_token"]) is None


def test_concurrent_replays_after_the_window_never_answer_5xx(gateways, demo_users):
    url = gateways[0].url
    tokens = obtain_tokens(url, *DEMO, "acme")
    client_id = tokens["client_id"]
    second = refresh(url, client_id, tokens["refresh_token"]).json()
    age_rotated_tokens(client_id)
    calls = [post_refresh(gateways[i % 2], url, client_id, tokens["refresh_token"]) for i in range(DUPLICATES)]
    calls += [post_refresh(gateways[i % 2], url, client_id, second["refresh_token"]) for i in range(DUPLICATES)]
    responses = at_once(calls)
    assert all(r.status_code in (200, 400) for r in responses), [(r.status_code, r.text) for r in responses]
    assert all(r.json()["error"] == "invalid_grant" for r in responses[:DUPLICATES])
    # Whatever order they ran in, the family ends revoked: nothing issued survives.
    for response in responses[DUPLICATES:]:
        if response.status_code == 200:
            assert gateway_principal(url, response.json()["access_token"]) is None
    assert refresh(url, client_id, second["refresh_token"]).status_code == 400


def test_concurrent_exchanges_of_one_code_issue_tokens_once(gateways, demo_users):
    url = gateways[0].url
    for trial in range(3):
        client_id = register_client(url)["client_id"]
        session = signed_in(url, *DEMO)
        result = authorize(session, url, client_id, "acme")
        session.close()

        data = {
            "grant_type": "authorization_code",
            "code": result["code"],
            "code_verifier": result["verifier"],
            "redirect_uri": "http://127.0.0.1:47123/callback",
            "client_id": client_id,
            "resource": url + "/",
        }

        def exchange(server, data=data):
            return lambda: httpx.post(server.url + "/oauth/token", timeout=30, data=data)

        responses = at_once([exchange(gateways[i % 2]) for i in range(DUPLICATES)])
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [400] * (DUPLICATES - 1), (trial, [r.text for r in responses])
        assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
