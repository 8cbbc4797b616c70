"""The ops JSON API (Django REST framework): staff only (`IsAdminUser`: a signed-in user
with is_staff; anyone else gets DRF's 403 JSON). Shapes: `ops.serializers`."""

from django.shortcuts import get_object_or_404
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Account
from mcp_bridge.upstream.errors import RateLimiterUnavailable
from ops import state


def _unavailable(exc: RateLimiterUnavailable) -> Response:
    return Response({"error": "redis_unavailable", "message": exc.message}, status=503)


class AccountsView(APIView):
    """GET /ops/api/accounts: every account's live limiter state."""

    permission_classes = [IsAdminUser]

    def get(self, request):
        try:
            return Response(state.overview())
        except RateLimiterUnavailable as exc:
            return _unavailable(exc)


class AccountView(APIView):
    """GET /ops/api/accounts/<id>: one account, with its last hour per minute."""

    permission_classes = [IsAdminUser]

    def get(self, request, account_id: int):
        account = get_object_or_404(Account, pk=account_id)
        try:
            return Response(state.account_detail(account))
        except RateLimiterUnavailable as exc:
            return _unavailable(exc)
