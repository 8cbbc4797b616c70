"""Membership changes revoke the connections they no longer allow, so the connections
page and the admin show the truth. (Requests and refreshes check membership anyway,
which also covers bulk deletes that send no signals.)"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts import access as access_policy
from accounts.connections import revoke_connections
from accounts.models import Connection, Membership


@receiver(post_delete, sender=Membership)
def revoke_on_membership_removed(sender, instance: Membership, **kwargs):
    revoke_connections(Connection.objects.filter(user_id=instance.user_id, account_id=instance.account_id,
                                                 revoked_at__isnull=True))


@receiver(post_save, sender=Membership)
def revoke_on_role_change(sender, instance: Membership, **kwargs):
    allowed = access_policy.allowed_access(instance.role)
    revoke_connections(
        Connection.objects.filter(user_id=instance.user_id, account_id=instance.account_id,
                                  revoked_at__isnull=True).exclude(access__in=allowed)
    )
