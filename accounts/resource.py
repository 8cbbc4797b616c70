"""RFC 8707 resource indicators: which of this gateway's MCP servers a token is for.

Two resources: the Core server (`MCP_RESOURCE_URL`, `PUBLIC_URL/`) and the Open server
(`OPEN_RESOURCE_URL`, `PUBLIC_URL/open`). A token is bound to exactly one; each server
accepts only its own (DESIGN.md "The Open server"). The authorization flow issues Core
tokens only (`canonical_resources`) until subscriber sign-in exists.
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
    """The resource list to bind into a grant or token: always exactly the MCP URL.

    Raises ValueError naming the first resource that is not this server's MCP URL.
    """
    for uri in requested:
        if is_open_resource(uri):
            # The Open server exists, but the subscriber sign-in that issues its tokens does
            # not yet (issue 14): say so rather than "not served here".
            raise ValueError(
                f"Sign-in for the subscriber (Open) server {settings.OPEN_RESOURCE_URL} is not available yet; "
                f"this authorization server issues tokens for {settings.MCP_RESOURCE_URL} only"
            )
        if not is_mcp_resource(uri):
            raise ValueError(
                f"The resource {uri!r} is not served by this authorization server; "
                f"the only resource is {settings.MCP_RESOURCE_URL}"
            )
    return [settings.MCP_RESOURCE_URL]
