"""`EnvelopeGate`: the JSON-RPC envelope of a handshake-era POST, checked before the SDK.

The SDK's handshake-era transport answers a body that is not one JSON-RPC message with
its pydantic validation dump (and code -32602), and knows nothing of batches. This gate
answers what the protocol says, in words a client author can act on:

- `MCP-Protocol-Version: 2024-11-05` (a version the SDK's handshake transport would
  take, but this gateway does not serve) → 400, -32022 with `data: {supported,
  requested}` (MCP 2025-06-18 "Transports / Protocol Version Header": an unsupported
  version MUST get 400). An unknown value is answered the same way, unless the request
  carries the 2026-07-28 envelope: then the SDK's stateless entry answers it, in the same
  shape, naming the stateless versions (SEP-2575).
- Not JSON → 400, -32700. JSON that is not a request, notification or response → 400,
  -32600 saying what is wrong (JSON-RPC 2.0 §5.1).
- A batch (JSON array) under 2025-03-26, the one version that has them ("Base Protocol /
  Batching": implementations MUST support receiving them): each message is served as
  its own POST through the gates behind this one (so each tool call is scope-checked and
  audited alone), in order, and the answers come back as one array (202 when all were
  notifications). `initialize` may not be batched; a batch holds at most MAX_BATCH_SIZE
  messages. Under later versions a batch → 400, -32600 "batches are not supported".

2026-07-28 requests pass on (header values trimmed of surrounding whitespace, RFC 9110
§5.5): the SDK's stateless entry checks those cleanly.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    PROTOCOL_VERSION_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_bridge.edge.gates import _header, _jsonrpc_error, _read_body, _replay, _send_json
from mcp_bridge.runtime.protocol import BATCH_VERSIONS, HEADERLESS_VERSION, SUPPORTED_VERSIONS

# Bounds the work one POST can ask for (each message may be a tool call).
MAX_BATCH_SIZE = 20
# Header values the SDK routes to its handshake-era transport (None: no header, which
# means 2025-03-26); every other value goes to its 2026-07-28 entry, which answers it.
HANDSHAKE_VERSIONS_OR_NONE = frozenset({None, *HANDSHAKE_PROTOCOL_VERSIONS})
# Handshake versions the SDK would serve but this gateway does not (2024-11-05).
NOT_SERVED_HANDSHAKE_VERSIONS = frozenset(HANDSHAKE_PROTOCOL_VERSIONS) - set(SUPPORTED_VERSIONS)


class EnvelopeGate:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # RFC 9110 §5.5: a field value excludes the whitespace around it. The HTTP parser
        # may hand it over untrimmed, and the SDK compares e.g. Mcp-Name with the body's
        # name as given: "  start_export  " must match "start_export".
        scope = {**scope, "headers": [(name, value.strip(b" \t")) for name, value in scope["headers"]]}
        version = _header(scope, b"mcp-protocol-version")
        if version in NOT_SERVED_HANDSHAKE_VERSIONS:
            body, _more = await _read_body(receive)
            await _unsupported_version(send, version, body)
            return
        if version not in HANDSHAKE_VERSIONS_OR_NONE and version not in MODERN_PROTOCOL_VERSIONS:
            # Unknown: a 2026-07-28 request (it carries the envelope) is the SDK's to answer;
            # any other gets the same answer here, naming every version served.
            body, more = await _read_body(receive)
            if more:
                await _send_json(send, 413, _jsonrpc_error(INVALID_REQUEST, "Request body too large"))
            elif _is_modern_request(body):
                await self.app(scope, _replay(body, receive), send)
            else:
                await _unsupported_version(send, version, body)
            return
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if version not in HANDSHAKE_VERSIONS_OR_NONE or content_type != "application/json":
            # The SDK's 2026-07-28 entry checks its own bodies; a wrong Content-Type gets
            # the SDK's clean 415.
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if more:
            await _send_json(send, 413, _jsonrpc_error(INVALID_REQUEST, "Request body too large"))
            return
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            error = _jsonrpc_error(PARSE_ERROR, "Parse error: the body is not valid JSON")
            await _send_json(send, 400, error)
            return
        if isinstance(message, list):
            await self._batch(scope, receive, send, message, version or HEADERLESS_VERSION)
            return
        problem = envelope_problem(message)
        if problem is not None:
            await _send_json(send, 400, _jsonrpc_error(INVALID_REQUEST, problem, _request_id(message)))
            return
        await self.app(scope, _replay(body, receive), send)

    async def _batch(self, scope: Scope, receive: Receive, send: Send, items: list, version: str) -> None:
        if version not in BATCH_VERSIONS:
            message = (
                f"JSON-RPC batches are not supported in MCP {version} (batching exists only in 2025-03-26): "
                "send one message per POST."
            )
            await _send_json(send, 400, _jsonrpc_error(INVALID_REQUEST, message))
            return
        if not items:
            await _send_json(send, 400, _jsonrpc_error(INVALID_REQUEST, "Invalid Request: the batch is empty"))
            return
        if len(items) > MAX_BATCH_SIZE:
            message = f"A batch may hold at most {MAX_BATCH_SIZE} messages; this one has {len(items)}. Split it."
            await _send_json(send, 400, _jsonrpc_error(INVALID_REQUEST, message))
            return
        answers = []
        for item in items:
            answer = await self._one(scope, receive, item)
            if answer is not None:
                answers.append(answer)
        if not answers:  # only notifications and responses: nothing to answer
            await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        payload = json.dumps(answers).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _one(self, scope: Scope, receive: Receive, item: Any) -> dict | None:
        """The answer to one message of a batch (None for a notification or response)."""
        problem = envelope_problem(item)
        if problem is not None:
            return _jsonrpc_error(INVALID_REQUEST, problem, _request_id(item))
        if item.get("method") == "initialize":
            return _jsonrpc_error(
                INVALID_REQUEST,
                "initialize must not be part of a JSON-RPC batch (MCP 2025-03-26 Lifecycle): send it alone.",
                item.get("id"),
            )
        body = json.dumps(item).encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        sub_scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}
        status = 500
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(sub_scope, _replay(body, receive), capture)
        raw = b"".join(chunks)
        if status == 202 or not raw:
            return None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("jsonrpc") == "2.0":
            return answer
        return _jsonrpc_error(INVALID_REQUEST, f"This message could not be served (HTTP {status}).", item.get("id"))


def _shape_problem(message: Any) -> str | None:
    """What keeps `message` from being one JSON-RPC 2.0 request, notification or
    response as MCP takes them (JSON-RPC 2.0 §4, §5; MCP: ids are strings or integers,
    never null; params are an object), or None."""
    if not isinstance(message, dict):
        return "Invalid Request: a JSON-RPC message is a JSON object"
    if message.get("jsonrpc") != "2.0":
        return 'Invalid Request: "jsonrpc" must be "2.0"'
    if "id" in message and not _valid_id(message["id"]):
        return 'Invalid Request: "id" must be a string or an integer'
    if "method" in message and ("result" in message or "error" in message):
        return 'Invalid Request: a request has "method", a response "result" or "error", not both'
    if "method" in message:
        if not isinstance(message["method"], str) or not message["method"]:
            return 'Invalid Request: "method" must be a non-empty string'
        if "params" in message and not isinstance(message["params"], dict):
            return 'Invalid Request: "params" must be an object'
        return None
    if "result" in message and "error" in message:
        return 'Invalid Request: a response has "result" or "error", not both'
    if "result" in message or "error" in message:
        if "id" not in message:
            return 'Invalid Request: a response needs the "id" of the request it answers'
        if "error" in message:
            error = message["error"]
            if not (
                isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
            ):
                return 'Invalid Request: "error" must be an object with an integer "code" and a string "message"'
        elif not isinstance(message["result"], dict):
            return 'Invalid Request: "result" must be an object'
        return None
    return 'Invalid Request: a request or notification needs "method"; a response needs "result" or "error"'


async def _unsupported_version(send: Send, version: str, body: bytes) -> None:
    """400, -32022 naming every version served, the request's id echoed."""
    try:
        request_id = _request_id(json.loads(body))
    except (ValueError, RecursionError):
        request_id = None
    shown = version[:40]
    error = _jsonrpc_error(
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported MCP-Protocol-Version {shown!r}: this server speaks {', '.join(SUPPORTED_VERSIONS)}.",
        request_id,
    )
    error["error"]["data"] = {"supported": list(SUPPORTED_VERSIONS), "requested": shown}
    await _send_json(send, 400, error)


def _is_modern_request(body: bytes) -> bool:
    """Whether `body` is a request carrying the 2026-07-28 envelope (`params._meta` with a
    protocol version)."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return False
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta


def envelope_problem(message: Any) -> str | None:
    """What keeps `message` from being one JSON-RPC 2.0 message MCP takes, or None: the
    specific rules of `_shape_problem`, then the SDK's own message model (whatever else it
    refuses gets a plain sentence, never its validation dump)."""
    problem = _shape_problem(message)
    if problem is not None:
        return problem
    try:
        jsonrpc_message_adapter.validate_python(message, by_name=False)
    except ValidationError:
        return "Invalid Request: not a JSON-RPC 2.0 request, notification or response this server accepts"
    return None


def _valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _request_id(message: Any) -> str | int | None:
    if isinstance(message, dict) and _valid_id(message.get("id")):
        return message["id"]
    return None
