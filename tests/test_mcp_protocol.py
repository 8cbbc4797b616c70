"""What a well-behaved MCP server answers, the same way in every protocol version served
(`mcp_bridge.runtime.protocol`): version negotiation, JSON-RPC batches, envelope errors
without internals, no prompts capability without prompts, the not-found code of a
missing resource."""

import json
import re
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import encode_header_value
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from mcp_bridge.runtime.protocol import SUPPORTED_VERSIONS
from tests.support.mcp import audit_rows, mcp_session

pytestmark = pytest.mark.sqlite

HANDSHAKE = ["2025-03-26", "2025-06-18", "2025-11-25"]
MODERN = "2026-07-28"
# What the SDK's own messages would leak: pydantic dumps, Python reprs, tracebacks.
INTERNALS = re.compile(r"pydantic|validation error for|input_value|input_type|Traceback|File \"/|union\[", re.I)


def request(method, params=None, request_id=1):
    body = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


def modern_post(env, token, method, params=None, name=None):
    """One 2026-07-28 request (each carries its own envelope; no handshake)."""
    params = dict(params or {})
    params["_meta"] = {
        PROTOCOL_VERSION_META_KEY: MODERN,
        CLIENT_CAPABILITIES_META_KEY: {},
        CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
    }
    headers = {"Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = encode_header_value(name)
    return env.post(request(method, params), token, version=MODERN, **headers)


def initialize(version):
    return request(
        "initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    )


def assert_clean(response):
    assert response.status_code < 500, response.text
    assert not INTERNALS.search(response.text), response.text[:800]


# --- Versions ----------------------------------------------------------------------------------


def test_initialize_answers_only_versions_this_server_serves(mcp_env):
    token = mcp_env.token()
    for version in HANDSHAKE:
        result = mcp_env.post(initialize(version), token, version=None).json()["result"]
        assert result["protocolVersion"] == version
    # Not served (2024-11-05's HTTP transport is HTTP+SSE), unknown, or the stateless era
    # asked through the handshake: the latest handshake version, as the spec says.
    for version in ["2024-11-05", "1999-01-01", "", "2026-07-28", "zzz"]:
        result = mcp_env.post(initialize(version), token, version=None).json()["result"]
        assert result["protocolVersion"] == "2025-11-25", version


def test_an_unsupported_protocol_version_header_is_400_naming_the_served_versions(mcp_env):
    token = mcp_env.token()
    # 2024-11-05: a version the SDK's handshake transport takes, but this gateway does not serve.
    response = mcp_env.post(request("tools/list", request_id=41), token, version="2024-11-05")
    assert response.status_code == 400
    answer = response.json()
    assert answer["id"] == 41 and answer["error"]["code"] == -32022
    assert answer["error"]["data"] == {"supported": list(SUPPORTED_VERSIONS), "requested": "2024-11-05"}
    # Unknown values: a handshake-era request (no 2026 envelope) gets the same answer; a
    # 2026-07-28 request is answered by the SDK's stateless entry, in the same shape (SEP-2575).
    for header in ["1999-01-01", "latest"]:
        response = mcp_env.post(request("tools/list", request_id=42), token, version=header)
        assert response.status_code == 400, response.text
        answer = response.json()
        assert answer["id"] == 42 and answer["error"]["code"] == -32022, answer
        assert answer["error"]["data"] == {"supported": list(SUPPORTED_VERSIONS), "requested": header}
        envelope = {"_meta": {PROTOCOL_VERSION_META_KEY: header, CLIENT_CAPABILITIES_META_KEY: {}}}
        response = mcp_env.post(
            request("tools/list", envelope, 43), token, version=header, **{"Mcp-Method": "tools/list"}
        )
        assert_clean(response)
        assert response.status_code == 400, response.text
        answer = response.json()
        assert answer["id"] == 43 and answer["error"]["code"] == -32022, answer
        assert answer["error"]["data"]["requested"] == header
        assert set(answer["error"]["data"]["supported"]) <= set(SUPPORTED_VERSIONS)


def test_readme_lists_exactly_the_served_versions():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## MCP endpoint and tools", 1)[1].split("\n## ", 1)[0]
    sentence = section.split("protocol", 1)[1].split(". ", 1)[0]
    listed = set(re.findall(r"\d{4}-\d\d-\d\d", sentence))
    assert listed == set(SUPPORTED_VERSIONS), sentence


# --- Batches -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "2025-03-26"])  # a 2025-03-26 client sends no header
def test_batches_are_served_under_2025_03_26(mcp_env, header):
    token = mcp_env.token()
    call = request("tools/call", {"name": "list_plans", "arguments": {"site_id": 14, "per_page": 2}}, "c")
    batch = [
        request("tools/list", request_id=1),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},  # answered by nothing
        call,
        request("ping", request_id=2),
        {"jsonrpc": "2.0", "id": 3},  # no method: its own Invalid Request
        5,
        initialize("2025-03-26") | {"id": 4},  # not allowed in a batch
        request("prompts/list", request_id=6),
    ]
    response = mcp_env.post(batch, token, version=header)
    assert_clean(response)
    assert response.status_code == 200
    answers = response.json()
    assert isinstance(answers, list) and len(answers) == 7
    by_id = {answer["id"]: answer for answer in answers if answer["id"] is not None}
    assert len(by_id[1]["result"]["tools"]) > 20
    assert by_id[2]["result"] == {}
    assert by_id["c"]["result"]["isError"] is False
    assert len(by_id["c"]["result"]["structuredContent"]["items"]) == 2
    assert by_id[3]["error"]["code"] == -32600 and "method" in by_id[3]["error"]["message"]
    assert by_id[4]["error"]["code"] == -32600 and "batch" in by_id[4]["error"]["message"]
    assert by_id[6]["error"]["code"] == -32601
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [-32600]  # the bare 5
    assert len(audit_rows(1, tool="list_plans", arguments={"site_id": 14, "per_page": 2})) >= 1


def test_a_batch_of_notifications_is_202_and_write_scope_holds_inside_a_batch(mcp_env):
    read_only = mcp_env.token(access="read")
    response = mcp_env.post([{"jsonrpc": "2.0", "method": "notifications/initialized"}], read_only, version=None)
    assert response.status_code == 202 and not response.content
    write = request("tools/call", {"name": "create_customer", "arguments": {"site_id": 14, "email": "b@x.io"}}, 9)
    answers = mcp_env.post([write, request("ping", request_id=10)], read_only, version=None).json()
    assert answers[0]["id"] == 9 and answers[0]["error"]["data"]["error"] == "insufficient_scope"
    assert answers[1] == {"jsonrpc": "2.0", "id": 10, "result": {}}
    assert audit_rows(1, tool="create_customer", outcome="denied")


def test_batch_bounds(mcp_env):
    token = mcp_env.token()
    empty = mcp_env.post([], token, version=None)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == -32600
    big = mcp_env.post([request("ping", request_id=i) for i in range(21)], token, version=None)
    assert big.status_code == 400 and "at most 20" in big.json()["error"]["message"]


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25", MODERN])
def test_batches_after_2025_03_26_are_a_clean_invalid_request(mcp_env, version):
    response = mcp_env.post(
        [request("ping", request_id=1), request("ping", request_id=2)], mcp_env.token(), version=version
    )
    assert_clean(response)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32600
    if version != MODERN:  # the SDK's own 2026 entry answers "Body must be a single ... object"
        assert "batches are not supported" in error["message"]


@pytest.mark.parametrize("version", [None, "2025-03-26", "2025-06-18", "2025-11-25"])
def test_malformed_envelopes_get_json_rpc_errors_without_internals(mcp_env, version):
    token = mcp_env.token()
    cases = {
        b"{not json": -32700,
        b'"just a string"': -32600,
        b"{}": -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1}).encode(): -32600,
        json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": [1], "method": "ping"}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": 5}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": "x"}}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "result": {}}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "result": {}}).encode(): -32600,
        json.dumps({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}).encode(): -32600,
    }
    for body, code in cases.items():
        response = mcp_env.post(body, token, version=version)
        assert_clean(response)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == code, (body, response.text)


# --- Prompts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", HANDSHAKE)
def test_no_prompts_capability_and_prompt_methods_are_not_found(mcp_env, version):
    token = mcp_env.token()
    capabilities = mcp_env.post(initialize(version), token, version=None).json()["result"]["capabilities"]
    assert "prompts" not in capabilities and "tools" in capabilities and "resources" in capabilities
    for body in [request("prompts/list"), request("prompts/get", {"name": "x"})]:
        response = mcp_env.post(body, token, version=version)
        assert response.json()["error"]["code"] == -32601, response.text


def test_no_prompts_in_the_stateless_era(mcp_env):
    token = mcp_env.token()
    discovered = modern_post(mcp_env, token, "server/discover").json()
    capabilities = discovered["result"]["capabilities"]
    assert "prompts" not in capabilities and "tools" in capabilities, discovered
    # No subscriptions/listen stream (nothing changes while connected): nothing claims listChanged.
    assert "true" not in json.dumps(capabilities).lower(), capabilities
    listen = modern_post(mcp_env, token, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    assert listen.json()["error"]["code"] == -32601, listen.text
    for method, params in [("prompts/list", None), ("prompts/get", {"name": "x"})]:
        response = modern_post(mcp_env, token, method, params, name="x" if params else None)
        assert response.json()["error"]["code"] == -32601, response.text


# --- Missing resources ------------------------------------------------------------------------

MISSING = ["pelcro://exports/999999", "pelcro://exports/not-a-job", "pelcro://nothing/here"]


@pytest.mark.parametrize("version", HANDSHAKE)
def test_a_missing_resource_is_32002_in_the_2025_versions(mcp_env, version):
    token = mcp_env.token()
    for uri in MISSING:
        response = mcp_env.post(request("resources/read", {"uri": uri}), token, version=version)
        assert_clean(response)
        error = response.json()["error"]
        assert error["code"] == -32002 and error["data"] == {"uri": uri}, error


def test_a_missing_resource_is_32602_with_its_uri_in_2026(mcp_env):
    token = mcp_env.token()
    for uri in MISSING:
        response = modern_post(mcp_env, token, "resources/read", {"uri": uri}, name=uri)
        assert_clean(response)
        error = response.json()["error"]
        assert error["code"] == -32602 and error["data"]["uri"] == uri, error


@pytest.mark.parametrize(("mode", "code"), [("legacy", -32002), (MODERN, -32602)])
async def test_sdk_clients_see_the_not_found_code_of_their_era(mcp_env, mode, code):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, mode) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("pelcro://exports/424242")
        assert caught.value.error.code == code
        assert "No finished export 424242" in caught.value.error.message


# --- Header values -------------------------------------------------------------------------------


def test_header_values_are_trimmed_of_surrounding_whitespace(mcp_env):
    """RFC 9110 §5.5: "  list_plans  " in Mcp-Name is "list_plans". (http.client, because
    httpx refuses to send such a value.)"""
    import http.client

    token = mcp_env.token()
    params = {
        "name": "list_plans",
        "arguments": {"site_id": 14, "per_page": 1},
        "_meta": {
            PROTOCOL_VERSION_META_KEY: MODERN,
            CLIENT_CAPABILITIES_META_KEY: {},
            CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
        },
    }
    body = json.dumps(request("tools/call", params, 5)).encode()
    connection = http.client.HTTPConnection("127.0.0.1", mcp_env.gateway.port, timeout=30)
    try:
        connection.putrequest("POST", "/", skip_accept_encoding=True)
        for name, value in [
            ("Authorization", f"Bearer {token}"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", f" {MODERN} "),
            ("Mcp-Method", "tools/call "),
            ("Mcp-Name", "  list_plans  "),
            ("Content-Length", str(len(body))),
        ]:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        status, answer = response.status, json.loads(response.read())
    finally:
        connection.close()
    assert status == 200, answer
    assert answer["result"]["isError"] is False and len(answer["result"]["structuredContent"]["items"]) == 1
