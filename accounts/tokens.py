"""Access-token lookup for the resource servers (the Core and Open MCP endpoints).

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
from accounts.models import Connection, Site, Subscriber, SubscriberCredential
from accounts.principal import Credentials, Principal, SubscriberIdentity
from accounts.resource import is_mcp_resource, is_open_resource
from accounts.subscribers import is_subscriber


def checksum(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def credentials_for_token(raw_token: str, resource: str) -> Credentials | None:
    """The principal for a raw bearer token presented to `resource`, with its account's
    sites and decrypted Core API key; None if the token must be refused. Also records the
    connection's last use.

    `resource` is the server the token was presented to: the Core server
    (`MCP_RESOURCE_URL`) or the Open server (`OPEN_RESOURCE_URL`, `open_credentials`). A
    token bound to the other one is refused (RFC 8707), and so is a subscriber's token at
    the Core server whatever it is bound to."""
    if is_open_resource(resource):
        return open_credentials(raw_token)
    checked = _check(raw_token, resource)
    if checked is None:
        return None
    principal, connection = checked
    sites = dict(Site.objects.filter(account_id=principal.account_id).values_list("site_id", "name"))
    try:
        api_key = connection.account.get_api_key()
    except ValueError:  # no key stored, or encrypted with a key no longer configured
        api_key = None
    return Credentials(principal=principal, sites=sites, api_key=api_key, rate_limit=connection.account.rate_limit)


def _token(raw_token: str):
    AccessToken = get_access_token_model()
    # The checksum is unique: no .first(), whose ORDER BY costs more to compile than the query.
    token = next(
        iter(
            AccessToken.objects.select_related(
                "user", "application", "binding__connection__account", "binding__connection__user__subscriber"
            ).filter(token_checksum=checksum(raw_token))
        ),
        None,
    )
    if token is None or token.is_expired() or token.user is None or token.application is None:
        return None
    return token


def open_credentials(raw_token: str) -> Credentials | None:
    """The principal for a raw bearer token presented to the Open server; None if it must be
    refused: unless it is bound to `OPEN_RESOURCE_URL`, belongs to an active connection of
    an active subscriber (`accounts.models.Subscriber`) whose site still has subscriber
    access enabled, and that connection holds the subscriber's Pelcro JWT. `sites` is the
    subscriber's one site; `subscriber` says which customer it is."""
    if not raw_token:
        return None
    token = _token(raw_token)
    if token is None or not any(is_open_resource(audience) for audience in token.resource or []):
        return None
    binding = getattr(token, "binding", None)
    if binding is None:
        return None
    connection = binding.connection
    if connection.user_id != token.user_id or connection.revoked_at is not None or not connection.user.is_active:
        return None
    subscriber = Subscriber.objects.select_related("site").filter(user_id=token.user_id).first()
    if (
        subscriber is None
        or not subscriber.site.subscriber_access_enabled
        or subscriber.site.account_id != connection.account_id
        or not SubscriberCredential.objects.filter(connection=connection).exists()
    ):
        return None
    touch(connection)
    principal = _principal(token, connection)
    return Credentials(
        principal=principal,
        sites={subscriber.site.site_id: subscriber.site.name},
        subscriber=SubscriberIdentity(site_id=subscriber.site.site_id, customer_id=subscriber.customer_id),
        rate_limit=connection.account.rate_limit,  # Open calls count against the account's limit too
    )


def _principal(token, connection: Connection) -> Principal:
    """Who acts through `token` on `connection`: the token's scopes cut to what the
    connection's access level still grants (a downgrade applies to live tokens)."""
    granted = set(access_policy.scopes_for(connection.access))
    return Principal(
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


def _check(raw_token: str, resource: str) -> tuple[Principal, Connection] | None:
    if not raw_token or not is_mcp_resource(resource):
        return None
    token = _token(raw_token)
    if token is None:
        return None
    if not any(is_mcp_resource(audience) for audience in token.resource or []):
        return None  # every token must be bound to this server (RFC 8707)
    binding = getattr(token, "binding", None)
    if binding is None:
        return None  # e.g. a DCR registration access token: not an API credential
    connection = binding.connection
    if connection.user_id != token.user_id or not access_policy.connection_usable(connection):
        return None
    if is_subscriber(connection.user):
        return None  # a subscriber never acts on an account (defence in depth: no memberships)
    touch(connection)
    principal = _principal(token, connection)
    return principal, connection
