"""The token endpoint, token revocation (RFC 7009) and introspection (RFC 7662)."""

import base64
import json
from urllib.parse import unquote_plus

from django.db import router, transaction
from django.http import JsonResponse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.views import IntrospectTokenView, RevokeTokenView
from oauth2_provider.views import TokenView as DOTTokenView

from accounts import access as access_policy
from accounts import auth_epoch
from accounts.connections import connections_revoked
from accounts.models import Connection
from accounts.rotation import lock_grant
from accounts.tokens import checksum


class TokenView(DOTTokenView):
    """POST /oauth/token. Every grant goes to oauthlib (DOT would answer device-code
    polls itself); this server has only authorization_code and refresh_token, so anything
    else is `unsupported_grant_type`.

    One transaction per request, which first locks the code or refresh token it redeems
    (accounts.rotation): duplicates run one after the other, never half-way through each
    other (no 5xx, no double issue, no family killed by a concurrent twin)."""

    def post(self, request, *args, **kwargs):
        try:
            with transaction.atomic(using=router.db_for_write(get_refresh_token_model())):
                lock_grant(request.POST)
                return self.authorization_flow_token_response(request)
        except get_access_token_model().DoesNotExist:
            # DOT reads back the access token it is about to answer (for its
            # `app_authorized` signal). A duplicate of a refresh answered within the grace
            # window names the pair issued earlier; if a concurrent request has just ended
            # that pair (a replay past the window kills the whole family) it is gone, and
            # DOT's lookup raised. The transaction is rolled back, so nothing was issued:
            # that is `invalid_grant` (RFC 6749 §5.2: the grant was revoked), never a 500.
            response = JsonResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "This grant was revoked while the request ran (its token family ended); "
                    "sign in again.",
                },
                status=400,
            )
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
            return response


def _connection_of(raw_token: str) -> Connection | None:
    """The connection an access or refresh token belongs to, if any."""
    digest = checksum(raw_token)
    access = get_access_token_model().objects.filter(token_checksum=digest).values_list("pk", flat=True).first()
    if access is None:
        access = (
            get_refresh_token_model()
            .objects.filter(token_checksum=digest, revoked__isnull=True)
            .values_list("access_token_id", flat=True)
            .first()
        )
    return Connection.objects.filter(token_bindings__access_token_id=access).first() if access else None


class RevokeView(RevokeTokenView):
    """POST /oauth/revoke. After DOT revokes the token, a connection left with no live
    token is marked revoked too, so the connections page shows what is really active
    (and `connections_revoked` is sent: a subscriber's Pelcro sign-in is then signed out).

    All of it is one transaction, published to every process's token cache before it
    commits (`accounts.auth_epoch`). If it cannot be published the token is left as it
    was and the answer is 503 with Retry-After, which RFC 7009 §2.2.1 defines as "the
    token still exists; retry after a reasonable delay"."""

    def post(self, request, *args, **kwargs):
        try:
            with transaction.atomic():
                return self._revoke(request, *args, **kwargs)
        except auth_epoch.EpochUnavailable as refused:
            response = JsonResponse(
                {"error": "temporarily_unavailable", "error_description": refused.message}, status=503
            )
            response["Retry-After"] = str(auth_epoch.RETRY_AFTER_SECONDS)
            response["Cache-Control"] = "no-store"
            return response

    def _revoke(self, request, *args, **kwargs):
        connection = _connection_of(request.POST.get("token", ""))
        response = super().post(request, *args, **kwargs)
        if connection is not None and response.status_code == 200 and not connection.token_bindings.exists():
            auth_epoch.hold_until_commit()  # before the write: update() sends no signal
            if Connection.objects.filter(pk=connection.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now(), revoked_by="client"
            ):
                connections_revoked.send(sender=Connection, connection_ids=[connection.pk], by="client")
        return response


def _caller_client_id(request) -> str:
    """The client_id the (already authenticated) introspection caller presented."""
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    if auth.startswith("Basic "):
        try:
            return unquote_plus(base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0])
        except (ValueError, UnicodeDecodeError):
            return ""
    return request.POST.get("client_id", "")


class IntrospectView(IntrospectTokenView):
    """POST /oauth/introspect for confidential clients, about their own tokens only; a
    token is active only while its connection is usable."""

    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        raw = request.POST.get("token")
        response = self.get_token_response(raw)
        if response.status_code != 200 or not json.loads(response.content).get("active"):
            return response
        token = (
            get_access_token_model()
            .objects.select_related("application", "binding__connection__user")
            .get(token_checksum=checksum(raw))
        )
        binding = getattr(token, "binding", None)
        if (
            token.application is None
            or token.application.client_id != _caller_client_id(request)
            or binding is None
            or not access_policy.connection_usable(binding.connection)
        ):
            return JsonResponse({"active": False})
        return response
