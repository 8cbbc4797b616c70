"""Which redirect URIs a self-registered client may use.

Accepted: loopback http on any port (RFC 8252 §7.3: 127.0.0.1, [::1], localhost), any
https URL, and the custom schemes of native MCP clients listed in
`settings.OAUTH_NATIVE_REDIRECT_SCHEMES` (RFC 8252 §7.1). Refused, with a message saying
why: plain http to other hosts, other schemes, fragments, credentials, wildcards.
Matching at authorization time is exact (DOT), except the loopback port.
"""

from urllib.parse import urlsplit

from django.conf import settings

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 2000


class RedirectURIError(ValueError):
    """A redirect URI the gateway will not register; the message is safe to show."""


def check_redirect_uri(uri: str) -> None:
    """Raise RedirectURIError unless `uri` is an acceptable redirect URI."""
    if not isinstance(uri, str) or not uri.strip():
        raise RedirectURIError("redirect URIs must be non-empty strings")
    if len(uri) > MAX_URI_LENGTH:
        raise RedirectURIError(f"redirect URI longer than {MAX_URI_LENGTH} characters")
    if any(ch.isspace() for ch in uri):
        raise RedirectURIError(f"redirect URI {uri!r} contains whitespace")
    if "#" in uri:
        raise RedirectURIError(f"redirect URI {uri!r} has a fragment, which OAuth forbids")
    if "*" in uri:
        raise RedirectURIError(f"redirect URI {uri!r} contains a wildcard; URIs must be exact")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 literal, "http://[::1"
        raise RedirectURIError(f"redirect URI {uri!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if "@" in parts.netloc:
        raise RedirectURIError(f"redirect URI {uri!r} carries credentials")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise RedirectURIError(f"redirect URI {uri!r} has an invalid port") from None
    if scheme == "https":
        if not parts.hostname:
            raise RedirectURIError(f"redirect URI {uri!r} has no host")
        return
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return
        raise RedirectURIError(
            f"redirect URI {uri!r} uses plain http to a non-loopback host; use https, "
            "or http://127.0.0.1:<port>/… for an app on the same computer"
        )
    if scheme in settings.OAUTH_NATIVE_REDIRECT_SCHEMES:
        return
    allowed = ", ".join(f"{s}://" for s in settings.OAUTH_NATIVE_REDIRECT_SCHEMES)
    raise RedirectURIError(
        f"redirect URI {uri!r} uses an unsupported scheme; allowed are https://, "
        f"http://127.0.0.1 (loopback, any port) and {allowed}"
    )


def check_redirect_uris(uris) -> None:
    """Validate a client's whole `redirect_uris` list (non-empty, bounded, each acceptable)."""
    if not isinstance(uris, list) or not uris:
        raise RedirectURIError("redirect_uris must be a non-empty array")
    if len(uris) > MAX_REDIRECT_URIS:
        raise RedirectURIError(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    for uri in uris:
        check_redirect_uri(uri)


def describe_redirect(uri: str) -> str:
    """Where a redirect goes, in words for the consent screen."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        port = f":{parts.port}" if parts.port else ""
        return f"an app on this computer ({parts.hostname}{port})"
    if scheme in ("http", "https"):
        return parts.hostname or uri
    return f"the {scheme}:// app on this computer"
