"""Signal handlers.

Saves and deletes of what a token check reads change the auth epoch (`accounts.auth_epoch`).
Membership changes revoke the connections they no longer allow, so the connections page
and the admin show the truth. (Requests and refreshes check membership anyway, which
also covers bulk deletes that send no signals.) Turning a site's subscriber access off
(or deleting the site) ends its subscribers' connections the same way (and their Pelcro
sign-ins are then signed out: `accounts.connections.connections_revoked`); a bulk update is
caught by the sweep (`accounts.connections.end_dead_connections`).
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver
from oauth2_provider.models import get_access_token_model, get_application_model

from accounts import access as access_policy
from accounts import auth_epoch
from accounts.connections import end_site_connections, revoke_connections
from accounts.models import Account, Connection, Membership, Site, TokenBinding

# Everything a token check reads (accounts.tokens): a change makes cached checks stale.
auth_epoch.watch_models(
    get_access_token_model(),
    TokenBinding,
    Connection,
    get_application_model(),
    get_user_model(),
    Membership,
    Account,
    Site,
    silent_creates=(get_access_token_model(), TokenBinding, Connection, get_application_model()),
)


@receiver(post_delete, sender=Membership)
def revoke_on_membership_removed(sender, instance: Membership, **kwargs):
    revoke_connections(
        Connection.objects.filter(user_id=instance.user_id, account_id=instance.account_id, revoked_at__isnull=True),
        by="membership",
    )


@receiver(post_save, sender=Membership)
def revoke_on_role_change(sender, instance: Membership, **kwargs):
    allowed = access_policy.allowed_access(instance.role)
    revoke_connections(
        Connection.objects.filter(
            user_id=instance.user_id, account_id=instance.account_id, revoked_at__isnull=True
        ).exclude(access__in=allowed),
        by="membership",
    )


@receiver(post_save, sender=Site)
def end_subscriber_connections_when_access_off(sender, instance: Site, created: bool, **kwargs):
    if not created and not instance.subscriber_access_enabled:
        end_site_connections(instance)


@receiver(pre_delete, sender=Site)
def end_subscriber_connections_of_a_deleted_site(sender, instance: Site, **kwargs):
    """A site deleted (Pelcro's `GET /account` no longer lists it) takes its subscribers'
    records with it; their connections would stay active but unusable, holding their JWTs."""
    end_site_connections(instance)


@receiver(pre_save, sender=get_application_model())
def public_clients_have_no_secret(sender, instance, **kwargs):
    """DOT gives every new application a random secret and hashes it (PBKDF2, ~0.2 s of
    CPU). A public client never uses one, and open registration must stay cheap, so a
    self-registered public client is stored without a secret."""
    if (
        instance._state.adding
        and instance.client_type == instance.CLIENT_PUBLIC
        and instance.registration_source in (instance.RegistrationSource.DCR, instance.RegistrationSource.CIMD)
    ):
        instance.client_secret = ""
        instance.hash_client_secret = False
