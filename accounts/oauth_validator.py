"""DOT's OAuth2Validator, extended so the consent's account and access level travel
grant → access token → refresh token, and are checked again at every step.

- save_authorization_code: records the chosen account/access and whether calls ask a
  person first (AuthorizationConsent) next to DOT's Grant, and binds the grant to one of
  this server's MCP URLs (RFC 8707): an operator's consent to the Core server's only, a subscriber's (the Open server's
  sign-in, `mcp_bridge.open.views`) to the Open server's only, with the subscriber's
  Pelcro JWT kept encrypted next to it (ConsentCredential).
- validate_code: re-checks membership (a subscriber: the site's subscriber access) at
  code exchange; a replayed code revokes the tokens issued from it.
- validate_refresh_token: the token's connection must still be active and the user
  still allowed its access level (`accounts.access.connection_usable`), else
  `invalid_grant`. A token rotated out less than REFRESH_TOKEN_GRACE_SECONDS ago gets
  the pair it was rotated into (accounts.rotation).
- _create_access_token: every access token gets a TokenBinding to its Connection; the
  code exchange of a subscriber's consent moves the Pelcro JWT to the connection.
- resources at the token endpoint: one of the two MCP URLs, the one the grant or refresh
  token is bound to, else `invalid_target` naming it.
- scopes: values this server does not define are ignored (accounts.scopes).
"""

import hashlib
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from oauth2_provider.models import get_grant_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from accounts import access as access_policy
from accounts import scopes as scope_policy
from accounts import subscribers
from accounts.connections import connection_for_consent, touch
from accounts.models import (
    AuthorizationConsent,
    ConsentCredential,
    RefreshSuccessor,
    Subscriber,
    SubscriberCredential,
    TokenBinding,
)
from accounts.oauth_server import requested_resources
from accounts.resource import canonical_resources, is_open_grant, server_name
from accounts.rotation import TokenPair, open_pair, seal_pair
from accounts.tokens import checksum

log = logging.getLogger(__name__)


def code_checksum(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


class GatewayOAuth2Validator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret):
        # Self-registered public clients are stored without a secret (accounts.signals);
        # an empty secret must never count as client authentication.
        return bool(stored_secret) and super()._check_secret(provided_secret, stored_secret)

    def _load_application(self, client_id, request):
        # A client_id holding NUL (e.g. from a Basic auth header) names no client, and
        # PostgreSQL cannot even look it up (DOT catches psycopg2's ValueError, not
        # psycopg 3's DataError): a 500 otherwise.
        if isinstance(client_id, str) and "\x00" in client_id:
            return None
        return super()._load_application(client_id, request)

    # --- authorization endpoint ---------------------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        # As the pre-auth check read them: a form without the field leaves the query's
        # string here, which must not be taken character by character.
        request.resource = canonical_resources(requested_resources(request))
        subscriber_id = getattr(request, "pelcro_subscriber_id", None)
        if is_open_grant(request.resource) or subscriber_id is not None or subscribers.is_subscriber(request.user):
            self._save_subscriber_code(code, request, subscriber_id)
            return
        account_id = getattr(request, "pelcro_account_id", None)
        access = getattr(request, "pelcro_access", None)
        if not account_id or not access:
            # Only the consent form supplies these; there is no way around choosing.
            raise errors.InvalidRequestError(
                description="No account was chosen on the consent screen.", request=request
            )
        if not access_policy.may_grant(request.user.pk, account_id, access):
            raise errors.AccessDeniedError(
                description="You may not grant this access to that account.", request=request
            )
        self._grant_scopes(request, access)
        confirm_writes = getattr(request, "pelcro_confirm_writes", True) is not False
        if not confirm_writes and not access_policy.may_waive_confirmations(request.user.pk, account_id):
            raise errors.AccessDeniedError(
                description="Only an owner or admin of the account may turn off confirmations.", request=request
            )
        grant = self._create_authorization_code(request, code)
        AuthorizationConsent.objects.create(
            code_checksum=code_checksum(code["code"]),
            user_id=request.user.pk,
            application_id=grant.application_id,
            account_id=account_id,
            access=access,
            confirm_writes=confirm_writes,
        )

    def _save_subscriber_code(self, code, request, subscriber_id) -> None:
        """A subscriber's consent: only for the Open server, only by the subscriber who
        signed in, on a site that still has subscriber access; the account is the site's.
        Keeps the subscriber's Pelcro JWT (encrypted, from the consent page) for the code
        exchange."""
        if not is_open_grant(request.resource):
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description=f"A subscriber's sign-in authorizes only {settings.OPEN_RESOURCE_URL} (the subscriber "
                "server); Core server access is for a publication's staff.",
                request=request,
            )
        subscriber = (
            Subscriber.objects.select_related("site", "user").filter(pk=subscriber_id, user_id=request.user.pk).first()
            if subscriber_id is not None
            else None
        )
        if subscriber is None:
            raise errors.CustomOAuth2Error(
                error="invalid_target",
                description=f"Tokens for {settings.OPEN_RESOURCE_URL} (the subscriber server) are issued only "
                "through a subscriber's sign-in with their publication.",
                request=request,
            )
        if not subscribers.may_connect(subscriber):
            raise errors.AccessDeniedError(
                description="This publication no longer offers sign-in for apps.", request=request
            )
        sealed = getattr(request, "pelcro_subscriber_jwt", None)
        access = getattr(request, "pelcro_access", None)
        if not sealed or not access:
            raise errors.InvalidRequestError(
                description="The subscriber's sign-in and access level come from the consent screen.", request=request
            )
        self._grant_scopes(request, access)
        grant = self._create_authorization_code(request, code)
        consent = AuthorizationConsent.objects.create(
            code_checksum=code_checksum(code["code"]),
            user_id=request.user.pk,
            application_id=grant.application_id,
            account_id=subscriber.site.account_id,
            access=access,
        )
        jwt_encrypted, expires_at = sealed
        ConsentCredential.objects.create(consent=consent, jwt_encrypted=jwt_encrypted, expires_at=expires_at)

    @staticmethod
    def _grant_scopes(request, access: str) -> None:
        if access not in (access_policy.READ, access_policy.READ_WRITE):
            raise errors.InvalidRequestError(description="Unknown access level.", request=request)
        if access == access_policy.READ_WRITE and "write" not in request.scopes:
            raise errors.InvalidScopeError(description="The app did not ask for write access.", request=request)
        request.scopes = access_policy.scopes_for(access)

    # --- token endpoint: authorization_code -------------------------------------------

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        consent = AuthorizationConsent.objects.filter(code_checksum=code_checksum(code), application=client).first()
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            if consent is not None and consent.redeemed_at is not None:
                self._revoke_replayed_code(consent)
            return False
        if consent is None or consent.redeemed_at is not None:
            return False
        if subscribers.is_subscriber(consent.user):
            subscriber = consent.user.subscriber
            if not subscribers.may_connect(subscriber) or subscriber.site.account_id != consent.account_id:
                return False  # the site's subscriber access was turned off since consenting
        elif not access_policy.may_grant(consent.user_id, consent.account_id, consent.access):
            return False  # removed from the account (or demoted) since consenting
        request.pelcro_consent = consent
        return True

    def _revoke_replayed_code(self, consent: AuthorizationConsent) -> None:
        log.warning("authorization code replayed for consent %s; revoking the tokens issued from it", consent.pk)
        if consent.token_family:
            get_refresh_token_model().revoke_family(consent.token_family)

    # --- token endpoint: refresh_token ---------------------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        # oauthlib compares request.scope with the original scopes right after this
        # returns: unknown values (offline_access, …) must not make that an invalid_scope.
        try:
            request.scope = scope_policy.tolerated(request.scope) or None
        except ValueError as exc:
            raise errors.InvalidScopeError(description=str(exc), request=request) from None
        rotated = self._rotated_within_grace(refresh_token)
        if rotated is not None:
            # Hand back the pair it was rotated into, or treat it as a replay. (DOT's own
            # grace period cannot return a hashed token.)
            if rotated.application_id != client.pk:
                return False
            request.user = rotated.user
            request.refresh_token = refresh_token
            request.refresh_token_instance = rotated
            return self._grace_duplicate(refresh_token, rotated, request)
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        rt = request.refresh_token_instance
        binding = (
            TokenBinding.objects.select_related("connection__user").filter(access_token_id=rt.access_token_id).first()
        )
        if binding is None or not access_policy.connection_usable(binding.connection):
            return False
        request.pelcro_connection = binding.connection
        return True

    @staticmethod
    def _rotated_within_grace(refresh_token):
        """The refresh token `refresh_token` names if rotation retired it less than
        REFRESH_TOKEN_GRACE_SECONDS ago, else None (live, unknown, older, or revoked
        without rotation: DOT decides those)."""
        grace = timedelta(seconds=settings.PELCRO_GATEWAY["REFRESH_TOKEN_GRACE_SECONDS"])
        rt = (
            get_refresh_token_model()
            .objects.select_related("user")
            .filter(token_checksum=checksum(refresh_token))
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if rt is None or rt.revoked is None or rt.revoked <= timezone.now() - grace:
            return None
        return rt if RefreshSuccessor.objects.filter(refresh_token=rt).exists() else None

    def _grace_duplicate(self, refresh_token, rt, request) -> bool:
        successor = RefreshSuccessor.objects.filter(refresh_token=rt).first()
        pair = open_pair(refresh_token, successor.sealed) if successor else None
        current = (
            get_refresh_token_model()
            .objects.select_related("access_token")
            .filter(token_checksum=checksum(pair.refresh_token), revoked__isnull=True)
            .first()
            if pair
            else None
        )
        if current is None or current.access_token is None or current.access_token.is_expired():
            # The pair it was rotated into is gone (rotated again, revoked, expired): the
            # old token is being replayed, as in DOT's reuse protection.
            log.warning("rotated-out refresh token %s replayed; revoking its family", rt.pk)
            get_refresh_token_model().revoke_family(rt.token_family)
            return False
        binding = (
            TokenBinding.objects.select_related("connection__user")
            .filter(access_token_id=current.access_token_id)
            .first()
        )
        if binding is None or not access_policy.connection_usable(binding.connection):
            return False
        request.pelcro_connection = binding.connection
        request.pelcro_grace_pair = (pair, current.access_token)
        return True

    def _check_and_set_request_resource(self, request):
        # Resources sent to the token endpoint must also be one of the MCP URLs (any
        # spelling of it), the one the grant / refresh token is bound to; normalised
        # before DOT compares them, and refused here with a message naming the right one.
        resources = getattr(request, "resource", None)
        if isinstance(resources, str):
            body = [v for k, v in (getattr(request, "decoded_body", None) or []) if k == "resource"]
            resources = body or resources.split()
        if resources:
            try:
                request.resource = canonical_resources(resources)
            except ValueError as exc:
                raise errors.CustomOAuth2Error(error="invalid_target", description=str(exc), request=request) from None
            bound = self._bound_resources(request)
            if bound and request.resource[0] not in bound:
                what = "refresh token" if request.grant_type == "refresh_token" else "authorization code"
                raise errors.CustomOAuth2Error(
                    error="invalid_target",
                    description=f"This {what} is for {server_name(bound)}; ask for that resource, or leave "
                    "resource out.",
                    request=request,
                )
        super()._check_and_set_request_resource(request)

    @staticmethod
    def _bound_resources(request) -> list[str]:
        """The resources the presented code's grant or refresh token is bound to."""
        if request.grant_type == "refresh_token":
            instance = getattr(request, "refresh_token_instance", None)
            return list(instance.resource or []) if instance is not None else []
        grant = get_grant_model().objects.filter(code=request.code, application=request.client).first()
        return list(grant.resource or []) if grant is not None else []

    # --- scopes -----------------------------------------------------------------------------

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        """Grant what this server defines among the requested scopes, ignoring the rest
        (RFC 6749 §3.3 lets the server ignore scopes); none of ours → the defaults."""
        try:
            kept = scope_policy.tolerated(" ".join(scopes))
        except ValueError:
            return False
        request.scopes = kept.split() or self.get_default_scopes(client_id, request)
        return True

    # --- token persistence ---------------------------------------------------------------

    def _save_bearer_token(self, token, request, *args, **kwargs):
        grace = getattr(request, "pelcro_grace_pair", None)
        if grace is None:
            return super()._save_bearer_token(token, request, *args, **kwargs)
        # A duplicate within the grace window: the same pair as the winner's, nothing new.
        self._check_and_set_request_resource(request)
        pair, access_token = grace
        token["access_token"] = pair.access_token
        token["refresh_token"] = pair.refresh_token
        token["scope"] = access_token.scope
        token["expires_in"] = max(1, int((access_token.expires - timezone.now()).total_seconds()))
        return None

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        connection = getattr(request, "pelcro_connection", None)
        consent = getattr(request, "pelcro_consent", None)
        if connection is None and consent is not None:
            connection = connection_for_consent(consent)
            consent.connection = connection
            consent.redeemed_at = timezone.now()
            consent.save(update_fields=["connection", "redeemed_at"])
            self._keep_subscriber_jwt(consent, connection, request)
            request.pelcro_connection = connection
        if connection is None:
            raise errors.InvalidGrantError(request=request)
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        TokenBinding.objects.create(access_token=access_token, connection=connection)
        if source_refresh_token is not None and token.get("refresh_token"):
            # Rotation: keep the new pair for duplicates of this refresh (accounts.rotation).
            # request.refresh_token is the raw token presented (DOT sets it).
            RefreshSuccessor.objects.update_or_create(
                refresh_token=source_refresh_token,
                defaults={
                    "sealed": seal_pair(request.refresh_token, TokenPair(token["access_token"], token["refresh_token"]))
                },
            )
        if consent is None:
            touch(connection)  # a refresh means the app is in use
        return access_token

    @staticmethod
    def _keep_subscriber_jwt(consent: AuthorizationConsent, connection, request) -> None:
        """A subscriber's code exchange: the Pelcro JWT from the consent becomes the
        connection's, moved encrypted, never decrypted here; the consent's copy is deleted.

        When the connection is reused (the same app connected again with the same access,
        `connection_for_consent`), the JWT it held is swapped into the consent's row instead:
        nothing holds it any more, and the Open sign-in sweep signs the JWTs of such rows out
        at Pelcro once the code has expired (`mcp_bridge.open.sign_out`; this app may not
        call Pelcro). Left in place, it would stay valid there for its whole lifetime."""
        pending = ConsentCredential.objects.filter(consent=consent).first()
        if pending is None:
            if subscribers.is_subscriber(consent.user):
                raise errors.InvalidGrantError(description="The subscriber's sign-in has expired.", request=request)
            return
        held = SubscriberCredential.objects.filter(connection=connection).first()
        replaced = (held.jwt_encrypted, held.expires_at) if held is not None else None
        credential = held or SubscriberCredential(connection=connection)
        credential.jwt_encrypted = pending.jwt_encrypted
        credential.expires_at = pending.expires_at
        credential.refreshed_at = None
        credential.save()
        if replaced is None or replaced[0] == pending.jwt_encrypted:
            pending.delete()
        else:
            pending.jwt_encrypted, pending.expires_at = replaced
            pending.save(update_fields=["jwt_encrypted", "expires_at"])

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh_token = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        consent = getattr(request, "pelcro_consent", None)
        if consent is not None and consent.token_family is None:
            consent.token_family = refresh_token.token_family
            consent.save(update_fields=["token_family"])
        return refresh_token
