"""Access-token lookup for the resource server (the MCP endpoint).

Tokens are stored hashed (DOT's RFC 9700 storage), so lookup is by SHA-256 checksum.
A token is valid only if it is unexpired, bound to `resource`, tied to an active
connection whose user is still a member of the account.
"""

import hashlib

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from accounts.models import Membership
from accounts.principal import Principal


def checksum(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def principal_for_token(raw_token: str, resource: str) -> Principal | None:
    """Return the principal for a raw bearer token, or None if it must be refused."""
    AccessToken = get_access_token_model()
    token = (
        AccessToken.objects.select_related(
            "user", "application", "binding__connection__account"
        )
        .filter(token_checksum=checksum(raw_token))
        .first()
    )
    if token is None or token.is_expired() or token.user is None:
        return None
    if not token.allows_audience(resource) or not token.resource:
        return None  # every token must be bound to this server (RFC 8707)
    binding = getattr(token, "binding", None)
    if binding is None:
        return None
    connection = binding.connection
    if connection.revoked_at is not None or not token.user.is_active:
        return None
    if not Membership.objects.filter(user_id=token.user_id, account_id=connection.account_id).exists():
        return None
    return Principal(
        user_id=token.user_id,
        username=token.user.get_username(),
        account_id=connection.account_id,
        account_slug=connection.account.slug,
        connection_id=connection.id,
        client_id=token.application.client_id if token.application else "",
        client_name=(token.application.name if token.application else "") or "",
        scopes=frozenset(token.scope.split()),
        expires_at=token.expires,
    )
