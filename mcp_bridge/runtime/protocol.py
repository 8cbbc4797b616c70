"""The MCP protocol versions this gateway serves, and the rules that differ between them.

Served: the Streamable HTTP handshake versions 2025-03-26, 2025-06-18 and 2025-11-25, and
the stateless 2026-07-28. 2024-11-05 is not served: its HTTP transport is HTTP+SSE (a GET
stream plus a POST endpoint), which this stateless POST-only endpoint does not speak.

- `initialize` proposing any other version is answered with LATEST_HANDSHAKE_VERSION
  (MCP 2025-11-25 "Lifecycle / Version Negotiation": "Otherwise, the server MUST respond
  with another protocol version it supports. This SHOULD be the latest version supported");
  the client then decides whether it can speak it.
- An `MCP-Protocol-Version` header naming a version not served is refused with 400
  (MCP 2025-06-18 "Transports / Protocol Version Header").
- JSON-RPC batches exist only in 2025-03-26 (removed in 2025-06-18; 2026-07-28 takes one
  message per POST).
- A missing resource is -32002 in the 2025 versions (2025-11-25 "Resources / Error
  Handling") and -32602 with `data.uri` from 2026-07-28 (SEP-2164).
"""

from __future__ import annotations

from typing import Any

from mcp_types import INVALID_PARAMS
from mcp_types.version import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS

HANDSHAKE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
SUPPORTED_VERSIONS = (*HANDSHAKE_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
# A client that sends no MCP-Protocol-Version header speaks 2025-03-26 (the header came
# in 2025-06-18; MCP 2025-06-18 "Transports": assume 2025-03-26 when it is absent).
HEADERLESS_VERSION = "2025-03-26"
BATCH_VERSIONS = frozenset({"2025-03-26"})

# MCP 2025-x "Resources / Error Handling": resource not found.
RESOURCE_NOT_FOUND_2025 = -32002

assert LATEST_HANDSHAKE_VERSION in HANDSHAKE_VERSIONS, "the SDK's handshake default must be one we serve"


def negotiated_version(requested: Any) -> str:
    """The version `initialize` answers for a client proposing `requested`."""
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION


def resource_not_found_code(protocol_version: str | None) -> int:
    """The JSON-RPC code for reading a resource that does not exist, in `protocol_version`."""
    if protocol_version in MODERN_PROTOCOL_VERSIONS:
        return INVALID_PARAMS
    return RESOURCE_NOT_FOUND_2025
