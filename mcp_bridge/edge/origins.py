"""Origins as browsers send them, for the MCP Origin gate (`gates.OriginGate`) and the
CORS policy (`pelcro_gateway.cors`): one normal form, so both compare the same strings."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalize_origin(origin: str) -> str | None:
    """`scheme://host[:port]` in lower case with default ports dropped (the form browsers
    send in `Origin`, RFC 6454 §6.1), or None if `origin` is not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
