"""Access-token lookup for the resource server (the MCP endpoint).

Tokens are stored hashed (DOT's RFC 9700 storage), so lookup is by SHA-256 checksum.
A token is valid only if it is unexpired, bound to `resource` (RFC 8707: this server's
MCP URL), tied to an active connection whose user is active and still a member of the
account with a role that allows the connection's access level. Nothing is cached here:
the MCP endpoint caches whole checks per process, valid while the auth epoch
(`accounts.auth_epoch`) is unchanged, so a revocation or a membership change still takes
effect on the very next request.
"""

import hashlib

from oauth2_provider.models import get_access_token_model

from accounts import access as access_policy
from accounts.connections import touch
from accounts.models import Connection, Site
from accounts.principal import Credentials, Principal
from accounts.resource import is_mcp_resource


def checksum(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def credentials_for_token(raw_token: str, resource: str) -> Credentials | None:
    """The principal for a raw bearer token presented to `resource`, with its account's
    sites and decrypted Core API key; None if the token must be refused. Also records the
    connection's last use."""
    checked = _check(raw_token, resource)
    if checked is None:
        return None
    principal, connection = checked
    sites = dict(Site.objects.filter(account_id=principal.account_id).values_list("site_id", "name"))
    try:
        api_key = connection.account.get_api_key()
    except ValueError:  # no key stored, or encrypted with a key no longer configured
        api_key = None
    return Credentials(principal=principal, sites=sites, api_key=api_key)


def _check(raw_token: str, resource: str) -> tuple[Principal, Connection] | None:
    if not raw_token or not is_mcp_resource(resource):
        return None
    AccessToken = get_access_token_model()
    # The checksum is unique: no .first(), whose ORDER BY costs more to compile than the query.
    token = next(iter(
        AccessToken.objects.select_related("user", "application", "binding__connection__account",
                                           "binding__connection__user")
        .filter(token_checksum=checksum(raw_token))
    ), None)
    if token is None or token.is_expired() or token.user is None or token.application is None:
        return None
    if not any(is_mcp_resource(audience) for audience in token.resource or []):
        return None  # every token must be bound to this server (RFC 8707)
    binding = getattr(token, "binding", None)
    if binding is None:
        return None  # e.g. a DCR registration access token: not an API credential
    connection = binding.connection
    if connection.user_id != token.user_id or not access_policy.connection_usable(connection):
        return None
    touch(connection)
    granted = set(access_policy.scopes_for(connection.access))
    principal = Principal(
        user_id=token.user_id,
        username=token.user.get_username(),
        account_id=connection.account_id,
        account_slug=connection.account.slug,
        connection_id=connection.id,
        client_id=token.application.client_id,
        client_name=token.application.name or token.application.client_id,
        scopes=frozenset(token.scope.split()) & granted,
        expires_at=token.expires,
    )
    return principal, connection
