"""Bad input to the MCP endpoint, property-based (hypothesis), against a live gateway.

- Every tool's arguments, generated from the `inputSchema` the gateway publishes: valid
  values, wrong types, out-of-range numbers, over-long and huge strings, unknown fields,
  nested junk, both protocol eras.
- Raw JSON-RPC bodies: malformed JSON, wrong types in the envelope, unknown methods,
  batches, with random or missing MCP-Protocol-Version / Accept / Content-Type headers,
  any token (read-write, read-only, none, junk) and any HTTP method.
- Bodies over the 4 MiB limit (declared or chunked), and just under it.

The answer is always a JSON-RPC response or error, or a 4xx: never a 5xx, never a
JSON-RPC internal error (a crash in disguise), never a traceback, in the answer or in the
gateway's log. Example counts are modest (hypothesis `settings` below) so CI stays fast.
"""

from __future__ import annotations

import json
import typing
from collections import Counter

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mcp.shared.inbound import encode_header_value
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from devtools.oauth_client import obtain_tokens
from mcp_bridge.runtime.schemas import ErrorKind
from mcp_bridge.servers import TOOLS
from tests.support.faults import (
    FUZZ,
    HEADER_TEXT,
    JUNK,
    SCALARS,
    LogWatch,
    assert_no_traceback_logged,
    mostly,
    to_json,
)
from tests.support.mcp import PASSWORDS, audit_rows

ERAS = ["2025-06-18", "2026-07-28"]
MAX_BODY = 4 * 1024 * 1024
INTERNAL_ERROR = -32603
ERROR_KINDS = set(typing.get_args(ErrorKind))


class Target:
    """The live gateway's MCP endpoint with a read-write and a read-only token for acme."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.url = gateway.url + "/"
        self.http = httpx.Client(timeout=30)
        tokens = [
            obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", access=a) for a in ("read_write", "read")
        ]
        self.tokens = {
            "rw": tokens[0]["access_token"],
            "ro": tokens[1]["access_token"],
            "none": None,
            "junk": "pgw-not-a-token",
        }

    def post(self, content: bytes, headers: dict, token: str = "rw", method: str = "POST") -> httpx.Response:
        headers = dict(headers)
        if self.tokens[token] is not None:
            headers["Authorization"] = f"Bearer {self.tokens[token]}"
        return self.http.request(method, self.url, content=content, headers=headers)

    def call_tool(self, name: str, arguments, era: str, token: str = "rw") -> httpx.Response:
        body, headers = tool_call(name, arguments, era)
        return self.post(to_json(body), headers, token)


@pytest.fixture
def target(transactional_db, demo_users, fuzz_gateway):
    target = Target(fuzz_gateway)
    yield target
    target.http.close()


def tool_call(name: str, arguments, era: str, request_id=1) -> tuple[dict, dict]:
    """A tools/call request and its headers as a client of `era` sends them."""
    params = {"name": name, "arguments": arguments}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": era,
    }
    if era == "2026-07-28":  # no handshake: each request carries its envelope
        params["_meta"] = {
            PROTOCOL_VERSION_META_KEY: era,
            CLIENT_CAPABILITIES_META_KEY: {},
            CLIENT_INFO_META_KEY: {"name": "fuzz", "version": "1"},
        }
        headers.update({"Mcp-Method": "tools/call", "Mcp-Name": encode_header_value(name)})
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}, headers


# --- What a proper answer is -------------------------------------------------------------------


def assert_proper_answer(response: httpx.Response) -> dict | list | None:
    """No 5xx, no traceback; a 2xx JSON body is JSON-RPC and never an internal error.
    Returns the decoded body (None if empty or not JSON)."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "/' not in response.text
    # No library internals either: a pydantic validation dump is not an error message.
    assert "errors.pydantic.dev" not in response.text and "validation error for" not in response.text.lower()
    if not response.content or response.headers.get("content-type", "").startswith("text/html"):
        return None  # an empty 4xx (405, 406), or a browser's GET / (the landing page)
    try:
        body = response.json()
    except ValueError:
        assert response.status_code >= 400, response.text[:300]  # e.g. 413 "Request body too large"
        return None
    for message in body if isinstance(body, list) else [body]:
        assert isinstance(message, dict), body
        if "jsonrpc" in message:
            assert message["jsonrpc"] == "2.0"
            assert ("result" in message) != ("error" in message), message
            if "error" in message:
                error = message["error"]
                assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["message"]
                assert error["code"] != INTERNAL_ERROR, error
        else:  # the HTTP gates answer with an OAuth-style error object
            assert response.status_code >= 400 and isinstance(message.get("error"), str), message
    return body


# --- Strategies --------------------------------------------------------------------------------


def valid_value(schema: dict, defs: dict) -> st.SearchStrategy:
    """Values the schema allows (roughly: enough to get past validation often)."""
    if "$ref" in schema:
        return valid_value(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        return st.one_of([valid_value(option, defs) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 255)
            )
        if schema.get("format") == "date":
            return st.dates().map(lambda d: d.isoformat())
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "array":
        return st.lists(
            valid_value(schema.get("items", {}), defs),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 3), 3),
        )
    if kind == "object":
        properties = schema.get("properties", {})
        if properties:
            required = set(schema.get("required", []))
            return st.fixed_dictionaries(
                {k: valid_value(v, defs) for k, v in properties.items() if k in required},
                optional={k: valid_value(v, defs) for k, v in properties.items() if k not in required},
            )
        values = schema.get("additionalProperties")
        return st.dictionaries(
            st.text(max_size=10), valid_value(values, defs) if isinstance(values, dict) else SCALARS, max_size=3
        )
    return SCALARS


def out_of_range(schema: dict) -> st.SearchStrategy:
    """Values just past the schema's bounds."""
    options = []
    for option in schema.get("anyOf", [schema]):
        if "minimum" in option:
            options.append(st.just(option["minimum"] - 1))
        if "maximum" in option:
            options.append(st.just(option["maximum"] + 1))
        if "maxLength" in option:
            options.append(st.just("y" * (option["maxLength"] + 1)))
        if "maxItems" in option:
            options.append(st.just([{}] * (option["maxItems"] + 1)))
        if "enum" in option:
            options.append(st.text(max_size=12).filter(lambda s, allowed=option["enum"]: s not in allowed))
    return st.one_of(options) if options else JUNK


@st.composite
def tool_arguments(draw, schema: dict) -> dict:
    """Arguments for a tool with `schema`: each one mostly valid, else out of range or junk;
    required ones now and then missing; unknown ones now and then added. Biased towards
    valid, so a good share of calls gets as far as the Core API."""
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    arguments = {}
    for name, prop in schema.get("properties", {}).items():
        if not draw(st.sampled_from([True] * 9 + [False])) if name in required else not draw(st.booleans()):
            continue
        arguments[name] = draw(mostly(valid_value(prop, defs), out_of_range(prop) | JUNK))
    if "site_id" in arguments and draw(st.sampled_from([True, True, True, False])):
        arguments["site_id"] = 14  # one of acme's sites: such calls get as far as the Core API
    if not draw(mostly(st.just(True), st.just(False))):
        unknown = st.text(min_size=1, max_size=20).filter(lambda k: k not in schema.get("properties", {}))
        arguments.update(draw(st.dictionaries(unknown, JUNK, min_size=1, max_size=2)))
    return arguments


def wire_tools(target: Target) -> dict[str, dict]:
    """Each tool's inputSchema as the gateway publishes it (tools/list)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = target.post(
        json.dumps(body).encode(),
        {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": "2025-06-18",
        },
    )
    return {tool["name"]: tool["inputSchema"] for tool in response.json()["result"]["tools"]}


# --- Tool arguments ------------------------------------------------------------------------------


def test_every_tool_answers_any_arguments_with_a_result_or_a_clear_error(target):
    watch = LogWatch(target.gateway)
    tools = wire_tools(target)
    assert set(tools) == set(TOOLS)
    # The harness speaks both eras correctly: a good call succeeds in each.
    for era in ERAS:
        good = target.call_tool("list_plans", {"site_id": 14, "per_page": 1}, era).json()
        assert good["result"]["isError"] is False, good
    seen: Counter = Counter()
    results = 2

    for name, schema in tools.items():

        @settings(FUZZ, max_examples=12)
        # Values a database column refuses once lost the call's audit row: always tried.
        @example(arguments={"site_id": 14, "note\x00": "a\x00b", "odd": "\ud800", "n": float("nan")}, era=ERAS[0])
        @given(arguments=tool_arguments(schema), era=st.sampled_from(ERAS))
        def check(arguments, era):
            nonlocal results
            response = target.call_tool(name, arguments, era)  # noqa: B023 (run within this iteration)
            body = assert_proper_answer(response)
            assert isinstance(body, dict), (response.status_code, body)
            if "error" in body:  # e.g. nesting too deep for the JSON parser: 400, -32700
                seen["jsonrpc_error"] += 1
                return
            assert response.status_code == 200
            results += 1
            result = body["result"]
            assert isinstance(result["isError"], bool) and result["content"][0]["text"]
            if result["isError"]:
                failure = result["structuredContent"]
                assert failure["error"] in ERROR_KINDS and failure["message"], failure
                assert "Traceback" not in result["content"][0]["text"]
                seen[failure["error"]] += 1
            else:
                seen["ok"] += 1

        check()

    # The inputs went everywhere: refused arguments, upstream answers, successes.
    assert seen["invalid_arguments"] > 0 and seen["ok"] > 0, seen
    assert seen["not_found"] + seen["validation_failed"] + seen["refused"] > 0, seen
    # Every call that got a result left exactly one audit row.
    assert len(audit_rows(results)) == results
    assert_no_traceback_logged(watch)


# --- Raw JSON-RPC --------------------------------------------------------------------------------

METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "sampling/createMessage",
    "roots/list",
    "server/discover",
    "tasks/get",
    "no/such/method",
    "",
]
WRITE_CALL = {"name": "void_invoice", "arguments": {"site_id": 14, "invoice_id": 1}}


@st.composite
def envelopes(draw) -> object:
    """A JSON-RPC message with any part missing, of the wrong type or made up."""
    params = st.fixed_dictionaries(
        {"name": mostly(st.sampled_from(sorted(TOOLS))), "arguments": mostly(st.just({"site_id": 14}))},
        optional={"_meta": JUNK, "uri": JUNK, "cursor": JUNK, "protocolVersion": JUNK},
    )
    parts = {
        "jsonrpc": mostly(st.just("2.0")),
        "id": mostly(st.integers() | st.text(max_size=10)),
        "method": mostly(st.sampled_from(METHODS), st.text(max_size=30) | JUNK),
        "params": mostly(params | st.just(WRITE_CALL)),
    }
    message = {}
    for key, strategy in parts.items():
        if draw(st.sampled_from([True] * 5 + [False])):
            message[key] = draw(strategy)
    extra = draw(st.dictionaries(st.text(max_size=8), JUNK, max_size=2))
    return {**extra, **message}


def mutated(raw: bytes, cut: int, insert: bytes) -> bytes:
    """A valid body broken at one point."""
    cut %= len(raw) + 1
    return raw[:cut] + insert + raw[cut + (len(insert) % 3) :]


@st.composite
def raw_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["envelope"] * 4 + ["bytes", "batch", "mutated", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "envelope":
        return to_json(draw(envelopes()))
    if kind == "batch":
        return to_json(draw(st.lists(envelopes(), max_size=4)))
    if kind == "json":
        return to_json(draw(JUNK))
    valid = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": WRITE_CALL}).encode()
    return mutated(valid, draw(st.integers(0, 200)), draw(st.binary(max_size=8)))


GOOD_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
RANDOM_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "MCP-Protocol-Version": st.one_of(
            st.sampled_from(["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28", "2024-11-05", "1999-01-01", ""]),
            HEADER_TEXT,
        ),
        "Accept": st.one_of(
            st.sampled_from(
                ["application/json, text/event-stream", "application/json", "text/event-stream", "*/*", "text/html", ""]
            ),
            HEADER_TEXT,
        ),
        "Content-Type": st.one_of(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "application/json; charset=utf-16",
                    "",
                ]
            ),
            HEADER_TEXT,
        ),
        "Mcp-Method": HEADER_TEXT,
        "Mcp-Name": HEADER_TEXT,
        "Mcp-Session-Id": HEADER_TEXT,
    },
)
# Most requests carry a client's usual headers, so the body is what is under test.
HEADERS = mostly(st.just(GOOD_HEADERS), RANDOM_HEADERS)


def test_any_json_rpc_body_and_headers_get_a_proper_answer(target):
    watch = LogWatch(target.gateway)
    statuses: Counter = Counter()

    @settings(FUZZ, max_examples=250)
    # A tool name that is not a string once crashed the read-only gate: always tried.
    @example(
        body=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": [], "arguments": {}}}',
        headers=GOOD_HEADERS,
        token="ro",
        method="POST",
    )
    @given(
        body=raw_bodies(),
        headers=HEADERS,
        token=st.sampled_from(["rw", "rw", "ro", "none", "junk"]),
        method=st.sampled_from(["POST"] * 6 + ["GET", "DELETE", "PUT"]),
    )
    def check(body, headers, token, method):
        response = target.post(body, headers, token, method)
        assert_proper_answer(response)
        statuses[response.status_code] += 1
        landing_page = method == "GET" and "text/html" in headers.get("Accept", "")
        if token in ("none", "junk") and not landing_page:
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer ")

    check()
    # Both what the transport refuses (4xx) and what it answers (200) were exercised.
    assert statuses[200] > 0 and sum(n for s, n in statuses.items() if 400 <= s < 500 and s != 401) > 0, statuses
    assert_no_traceback_logged(watch)


# --- Size limits -----------------------------------------------------------------------------------


def padded_call(size: int, name: str = "list_plans") -> bytes:
    """A tools/call body of exactly `size` bytes (the padding is an unknown argument)."""
    shell = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": name, "arguments": {"site_id": 14, "pad": ""}},
        }
    ).encode()
    return shell.replace(b'"pad": ""', b'"pad": "' + b"p" * (size - len(shell)) + b'"')


def chunked(data: bytes):
    """The body as a stream (httpx sends it chunked, without a Content-Length)."""
    for start in range(0, len(data), 256 * 1024):
        yield data[start : start + 256 * 1024]


@pytest.mark.parametrize("token", ["rw", "ro"])
def test_bodies_over_4_mib_are_413_declared_or_chunked(target, token):
    watch = LogWatch(target.gateway)
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2025-06-18",
    }
    too_big = padded_call(MAX_BODY + 1, "void_invoice" if token == "ro" else "list_plans")
    for content in (too_big, chunked(too_big)):
        response = target.http.post(
            target.url, content=content, headers={**headers, "Authorization": f"Bearer {target.tokens[token]}"}
        )
        assert response.status_code == 413, response.text[:300]
        assert_proper_answer(response)
    # No credentials: refused before the body is read.
    assert target.http.post(target.url, content=too_big, headers=headers).status_code == 401
    # Just under the limit: read, and answered as the bad arguments they are.
    fits = target.post(padded_call(MAX_BODY - 1024), headers, token)
    body = assert_proper_answer(fits)
    assert fits.status_code == 200, fits.text[:300]
    result = body["result"]
    assert result["structuredContent"]["error"] == "invalid_arguments"
    assert "pad" in result["structuredContent"]["fields"]
    assert len(audit_rows(1)) == 1
    assert_no_traceback_logged(watch)


@pytest.mark.parametrize("era", ERAS)
def test_params_the_method_refuses_are_named(target, era):
    """-32602 says which params field is wrong and how (the SDK alone answers a bare
    "Invalid request parameters" with empty data), in both eras; no value is echoed."""
    cases = [
        ("tools/call", {"name": "list_customers", "arguments": ["secret-value"]}, "params.arguments"),
        ("tools/call", {"arguments": {}}, "params.name: is required"),
        ("resources/read", {}, "params.uri: is required"),
    ]
    for method, params, named in cases:
        body, headers = tool_call("list_customers", {}, era)
        body["method"], body["params"] = (
            method,
            {**params, **({"_meta": body["params"]["_meta"]} if "_meta" in body["params"] else {})},
        )
        headers.pop("Mcp-Name", None)
        if era == "2026-07-28":  # the routing headers of the 2026 envelope, matching the body
            headers["Mcp-Method"] = method
            if method == "tools/call":
                headers["Mcp-Name"] = params.get("name", "")
        response = target.post(to_json(body), headers)
        error = assert_proper_answer(response)["error"]
        assert error["code"] == -32602, error
        assert error["message"].startswith(f"Invalid params for {method}: ") and named in error["message"], error
        assert "secret-value" not in response.text
