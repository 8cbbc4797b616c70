from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import crypto
from accounts.auth_epoch import EpochUnavailable
from accounts.models import Account, SubscriberCredential


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Core API key and subscriber Pelcro JWT under the first key of "
        "API_KEY_ENCRYPTION_KEYS. "
        "Rotation: put the new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        try:
            rotated = self._rotate()
        except EpochUnavailable as refused:
            raise CommandError(refused.message) from None
        self.stdout.write(f"re-encrypted {rotated} API key(s) and subscriber JWT(s) under the current key")

    def _rotate(self) -> int:
        rotated = 0
        with transaction.atomic():
            for account in Account.objects.select_for_update().exclude(api_key_encrypted=""):
                try:
                    account.api_key_encrypted = crypto.rotate(account.api_key_encrypted)
                except InvalidToken:
                    raise CommandError(
                        f"the API key of account {account.slug!r} cannot be decrypted with any configured key; "
                        "nothing was changed"
                    ) from None
                account.save(update_fields=["api_key_encrypted"])
                rotated += 1
            for credential in SubscriberCredential.objects.select_for_update():
                try:
                    credential.jwt_encrypted = crypto.rotate(credential.jwt_encrypted)
                except InvalidToken:
                    raise CommandError(
                        f"the Pelcro JWT of connection {credential.connection_id} cannot be decrypted with any "
                        "configured key; nothing was changed"
                    ) from None
                credential.save(update_fields=["jwt_encrypted"])
                rotated += 1
        return rotated
