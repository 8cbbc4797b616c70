"""Refresh-token rotation that survives concurrent refreshes (issue 13, item 1).

DOT rotates refresh tokens and, with reuse protection, treats a rotated-out token
presented again as theft and revokes the whole family. Desktop clients often run several
processes sharing one stored refresh token, which refresh at the same moment: without
care, one gets the new pair, the others raise the reuse alarm (killing the winner's
brand-new pair too) or crash on rows the winner just deleted.

What this module adds (used by accounts.views.token_endpoints and the validator):

- `lock_grant(post)`: the token request runs in one transaction that first locks what
  it redeems: the refresh token's rows (PostgreSQL `SELECT … FOR UPDATE`) or the
  authorization code's consent record. On SQLite every transaction starts with
  `BEGIN IMMEDIATE` (settings: `transaction_mode`), which takes the database's write lock
  up front and waits for it (`timeout`), so "database is locked" cannot surface.
  Duplicates therefore run one after the other, each seeing what the previous committed.
- `seal_pair` / `open_pair`: the winner's new pair is kept (`RefreshSuccessor`) sealed
  with a key derived from the old raw refresh token. A duplicate presenting the old token
  within `REFRESH_TOKEN_GRACE_SECONDS` of its rotation gets the same pair back, as long
  as that pair is still alive. After the window, or once the new pair was itself rotated
  or revoked, the old token is a replay and revokes the family (RFC 9700 §4.14.2).
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from oauth2_provider.models import get_refresh_token_model

from accounts.models import AuthorizationConsent
from accounts.tokens import checksum

KEY_CONTEXT = b"pelcro-gateway refresh successor v1"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


def _fernet(old_refresh_token: str) -> Fernet:
    # HMAC keyed by the raw token: unrelated to the stored SHA-256 checksum, so a database
    # reader cannot derive it.
    digest = hmac.new(old_refresh_token.encode("utf-8"), KEY_CONTEXT, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal_pair(old_refresh_token: str, pair: TokenPair) -> str:
    """The pair, encrypted so that only the holder of `old_refresh_token` can read it."""
    plain = json.dumps({"access_token": pair.access_token, "refresh_token": pair.refresh_token})
    return _fernet(old_refresh_token).encrypt(plain.encode("utf-8")).decode("ascii")


def open_pair(old_refresh_token: str, sealed: str) -> TokenPair | None:
    """The sealed pair, or None if `old_refresh_token` is not the token it was sealed for."""
    try:
        data = json.loads(_fernet(old_refresh_token).decrypt(sealed.encode("ascii")))
    except (InvalidToken, ValueError):
        return None
    return TokenPair(data["access_token"], data["refresh_token"])


def lock_grant(post) -> None:
    """Lock what a token request redeems, inside the caller's transaction (see above).

    `post`: the request's form parameters. Nothing is locked for other grant types or
    unknown values (there is nothing to race for)."""
    grant_type = post.get("grant_type")
    if grant_type == "refresh_token" and post.get("refresh_token"):
        rows = (
            get_refresh_token_model().objects.select_for_update().filter(token_checksum=checksum(post["refresh_token"]))
        )
    elif grant_type == "authorization_code" and post.get("code"):
        rows = AuthorizationConsent.objects.select_for_update().filter(code_checksum=checksum(post["code"]))
    else:
        return
    list(rows.values_list("pk", flat=True))
