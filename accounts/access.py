"""What a member may grant, and which OAuth scopes an access level means.

Policy: owners and admins may connect an app with read and write access or read-only
access; a plain member may connect read-only only (Pelcro lets only owners and admins
create Core API keys, so a member must not hand out write access to the account's key).
The same rule is applied at consent, at code exchange, on refresh and on every request.

Confirmations (README "Safe writes"): a connection asks a person before money-moving or
irreversible actions unless an owner or admin of the account turned that off at consent
(`may_waive_confirmations`); a plain member cannot.
"""

from accounts import subscribers
from accounts.models import Connection, Membership
from accounts.principal import READ_SCOPE, WRITE_SCOPE

READ_WRITE = Connection.Access.READ_WRITE
READ = Connection.Access.READ

_ALLOWED = {
    Membership.Role.OWNER: {READ_WRITE, READ},
    Membership.Role.ADMIN: {READ_WRITE, READ},
    Membership.Role.MEMBER: {READ},
}


def allowed_access(role: str | None) -> set[str]:
    """Access levels a member with `role` may grant (empty when not a member)."""
    return set(_ALLOWED.get(role, set()))


def scopes_for(access: str) -> list[str]:
    """The token scopes of an access level: read only → ["read"]; read and write → both."""
    return [READ_SCOPE, WRITE_SCOPE] if access == READ_WRITE else [READ_SCOPE]


def role_of(user_id: int, account_id: int) -> str | None:
    """The user's role in the account, or None when not (or no longer) a member."""
    # (user, account) is unique: no .first(), whose ORDER BY costs more than the query
    # (every MCP request runs this).
    roles = Membership.objects.filter(user_id=user_id, account_id=account_id).values_list("role", flat=True)
    return next(iter(roles), None)


def may_grant(user_id: int, account_id: int, access: str) -> bool:
    """True if the user is (still) a member whose role allows `access` on the account."""
    return access in allowed_access(role_of(user_id, account_id))


def connection_usable(connection: Connection) -> bool:
    """An active connection whose user is active and still allowed its access level; for a
    subscriber's connection (Open server), `accounts.subscribers.connection_usable`
    (subscribers have no memberships: their site's subscriber access is what counts)."""
    if connection.revoked_at is not None or not connection.user.is_active:
        return False
    if subscribers.is_subscriber(connection.user):
        return subscribers.connection_usable(connection)
    return may_grant(connection.user_id, connection.account_id, connection.access)


WAIVERS = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})


def may_waive_confirmations(user_id: int, account_id: int) -> bool:
    """True if the user is an owner or admin of the account: only they may connect an app
    that does not ask before money-moving or irreversible actions."""
    return role_of(user_id, account_id) in WAIVERS
