"""RFC 8707 resource indicators: which of this gateway's MCP servers a token is for.

Two resources: the Core server (`MCP_RESOURCE_URL`, `PUBLIC_URL/`) and the Open server
(`OPEN_RESOURCE_URL`, `PUBLIC_URL/open`). A token is bound to exactly one; each server
accepts only its own (DESIGN.md "The Open server"). Operators' consents issue Core tokens
only, subscribers' consents Open tokens only (`accounts.oauth_validator`).
"""

import posixpath
from urllib.parse import urlsplit

from django.conf import settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _canonical_parts(uri: str):
    parts = urlsplit(uri)
    if not parts.scheme or not parts.hostname or parts.fragment or "@" in parts.netloc or parts.query:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    path = posixpath.normpath(parts.path or "/").rstrip("/") + "/"
    return (parts.scheme.lower(), parts.hostname.lower(), port, path)


def is_mcp_resource(uri: str) -> bool:
    """True if `uri` names this gateway's MCP endpoint (trailing slash, case and default
    port do not matter: `https://mcp.pelcro.com` and `https://mcp.pelcro.com/` are the same)."""
    if not isinstance(uri, str):
        return False
    parts = _canonical_parts(uri)
    return parts is not None and parts == _canonical_parts(settings.MCP_RESOURCE_URL)


def is_open_resource(uri: str) -> bool:
    """True if `uri` names the Open server (`PUBLIC_URL/open`, trailing slash, case and
    default port do not matter)."""
    if not isinstance(uri, str):
        return False
    parts = _canonical_parts(uri)
    return parts is not None and parts == _canonical_parts(settings.OPEN_RESOURCE_URL)


def canonical_resources(requested: list[str]) -> list[str]:
    """The resource list to bind into a grant or token: exactly one of this gateway's two
    MCP URLs, as settings spell it: `[OPEN_RESOURCE_URL]` when `requested` names the Open
    server, else `[MCP_RESOURCE_URL]` (also when nothing is requested).

    Raises ValueError naming the first resource this server does not serve, or when both
    servers are requested (a token is for one of them, RFC 8707 §2).
    """
    chosen: set[str] = set()
    for uri in requested:
        if is_open_resource(uri):
            chosen.add(settings.OPEN_RESOURCE_URL)
        elif is_mcp_resource(uri):
            chosen.add(settings.MCP_RESOURCE_URL)
        else:
            raise ValueError(
                f"The resource {uri!r} is not served by this authorization server; its resources are "
                f"{settings.MCP_RESOURCE_URL} (the Core server) and {settings.OPEN_RESOURCE_URL} (the subscriber server)"
            )
    if len(chosen) > 1:
        raise ValueError(
            f"A token is for one server: ask for {settings.MCP_RESOURCE_URL} (the Core server) or "
            f"{settings.OPEN_RESOURCE_URL} (the subscriber server), not both"
        )
    return [chosen.pop() if chosen else settings.MCP_RESOURCE_URL]


def is_open_grant(resources: list[str] | None) -> bool:
    """True if a grant's or token's bound resources (as `canonical_resources` made them)
    are the Open server's."""
    return any(is_open_resource(uri) for uri in resources or [])


def server_name(resources: list[str] | None) -> str:
    """How an error message names the server a grant or token is for."""
    return (
        f"{settings.OPEN_RESOURCE_URL} (the subscriber server)"
        if is_open_grant(resources)
        else f"{settings.MCP_RESOURCE_URL} (the Core server)"
    )
