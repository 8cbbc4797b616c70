"""Async client for the Pelcro Open API (`/api/v1/sdk`, docs/OPEN_API.md), acting for one customer.

`OpenAPIClient` is the upstream HTTP client base (`upstream.http`) with the Open API's
shape (OPEN_API.md §1–§4):

- `site_id` on every call (query string), public or protected;
- protected calls carry the customer's JWT as `Authorization: Bearer <JWT>`;
- answers are `{"data": ...}` (plus `meta` on address writes); a customer resource in the
  answer carries a fresh JWT in `data.auth_token` (`OpenAPIResponse.token`);
- errors: `{"error": {"status", "message"}}` for auth errors and business refusals,
  `{"errors": {field: [...]}}` for validation. They become `upstream.errors`:
  401 (no, bad or expired JWT) and 403 (blacklisted JWT: logged out, refreshed, or a
  single-session login elsewhere) on a protected call → `CustomerTokenRejected`: the
  connection that holds the JWT ends and the subscriber must sign in again;
  404 on login → `InvalidCredentials`; 429 on login → `LoginLocked` (one customer's
  lock-out, never the account's rate limit); other 404s are often business rules in the
  Open API (OPEN_API.md §4), so they carry Pelcro's message as `NotFound`;
  400 with `errors` → `ValidationFailed`, other 400 → `BusinessRuleError`.

`login` and `refresh` return a `CustomerSignIn` (customer, JWT, expiry from the JWT's
`exp`); `refresh_due` says when to refresh (before the JWT expires, OPEN_API.md §2).
One client per event loop per process (`get_client()`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt as pyjwt
from django.conf import settings

from mcp_bridge.per_loop import PerLoop
from mcp_bridge.upstream.errors import (
    BusinessRuleError,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
    error_message,
)
from mcp_bridge.upstream.gate import Budget, RequestGate
from mcp_bridge.upstream.http import UpstreamClient
from mcp_bridge.upstream.limiter import client_options

LOGIN_PATH = "/auth/login"
REFRESH_PATH = "/customer/refresh"
LOGOUT_PATH = "/auth/logout"
# Open API calls that use POST but only read (OPEN_API.md §5.3 get customer, §5.4 the `/order`
# price preview): retried like GETs, and never "may have been applied".
READING_POSTS = frozenset({("POST", "/customer"), ("POST", "/order")})


class CustomerTokenRejected(UpstreamError):
    """Pelcro refused the customer's JWT: 401 (missing, invalid or expired) or 403
    (blacklisted). Signing in again is the only way on (OPEN_API.md §2), so the
    connection holding the JWT ends. `blacklisted` is True for the 403."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message, status)
        self.blacklisted = status == 403
        self.args = (message, status)


class InvalidCredentials(UpstreamError):
    """Login refused: wrong password, unknown e-mail or username (one answer for all three,
    OPEN_API.md §2)."""

    status = 404


class LoginLocked(UpstreamError):
    """Too many failed logins for this customer identifier on this site (10 in 5 minutes by
    default, OPEN_API.md §2); `retry_after` is in whole seconds (at least 1)."""

    status = 429

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message, 429)
        self.retry_after = max(1, int(retry_after + 0.999))
        self.args = (message, retry_after)


@dataclass(frozen=True)
class OpenAPIResponse:
    status: int
    data: Any
    meta: dict[str, Any] | None = None
    # The fresh JWT a customer resource answer carries (`data.auth_token`), else None.
    token: str | None = None
    # For a write: how to check whether it was applied (`open.calls.open_api`'s `check`).
    check: str | None = None


@dataclass(frozen=True)
class CustomerSignIn:
    """A signed-in customer: the resource Pelcro answered, its JWT and when that expires."""

    customer: dict[str, Any]
    jwt: str
    expires_at: datetime  # the JWT's `exp`, aware UTC
    issued_at: datetime | None  # the JWT's `iat`, if present

    @property
    def customer_id(self) -> int:
        return int(self.customer["id"])


def jwt_times(token: str) -> tuple[datetime, datetime | None]:
    """`(exp, iat)` of a Pelcro customer JWT as aware UTC datetimes.

    The signature is not checked: only Pelcro holds the key, and Pelcro checks it on every
    call; the gateway reads `exp` only to know when to refresh. Raises `UpstreamUnavailable`
    if the token has no readable `exp` (an answer the client cannot use)."""
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (pyjwt.PyJWTError, KeyError, TypeError, ValueError):
        raise UpstreamUnavailable("Open API answered a customer token without a readable expiry (exp)") from None
    issued = claims.get("iat")
    return expires, (datetime.fromtimestamp(int(issued), UTC) if isinstance(issued, int | float) else None)


def refresh_due(
    expires_at: datetime, issued_at: datetime | None, now: datetime | None = None, *, before: timedelta | None = None
) -> bool:
    """Whether a JWT expiring at `expires_at` should be refreshed now: when less than
    `before` (setting OPEN_JWT_REFRESH_BEFORE_SECONDS, default 1 day) or, for a short-lived
    token, less than half its lifetime is left. Never lets a JWT run out between calls
    that are less than that far apart."""
    now = now or datetime.now(UTC)
    before = (
        before if before is not None else timedelta(seconds=settings.PELCRO_GATEWAY["OPEN_JWT_REFRESH_BEFORE_SECONDS"])
    )
    if issued_at is not None:
        before = min(before, (expires_at - issued_at) / 2)
    return expires_at - now <= before


class OpenAPIClient(UpstreamClient):
    """The Open API over `UpstreamClient`: build it with a gate (`build_client()` does).

    `account_id` on every call is the gateway's account of the site: the key of the shared
    limiter (`upstream.limiter`)."""

    name = "Open API"

    async def request(
        self,
        method: str,
        path: str,
        *,
        account_id: int,
        site_id: int,
        jwt: str | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        rate_limit: int | None = None,
        budgets: tuple[Budget, ...] = (),
        background: bool = False,
    ) -> OpenAPIResponse:
        """One Open API call on `site_id`, as the customer whose `jwt` is given (None for the
        public calls: site, plans, login). It counts against the account's limit
        (`rate_limit` per window, None: the default; `background`: its background share) and
        `budgets` (`limiter.open_budgets`).
        Retries where safe (`upstream.http`). Raises an `UpstreamError` (module docstring);
        `CustomerTokenRejected` ends the connection."""
        headers = {"Authorization": f"Bearer {jwt}"} if jwt is not None else {}
        return await self.send(
            method,
            path,
            account_id=account_id,
            params={"site_id": site_id, **(params or {})},
            json=json,
            headers=headers,
            rate_limit=rate_limit,
            budgets=budgets,
            background=background,
        )

    async def login(self, *, account_id: int, site_id: int, email: str, password: str) -> CustomerSignIn:
        """Sign the customer in with e-mail and password (`POST /auth/login`).
        Raises `InvalidCredentials`, `LoginLocked`, or another `UpstreamError`."""
        response = await self.request(
            "POST", LOGIN_PATH, account_id=account_id, site_id=site_id, json={"email": email, "password": password}
        )
        return _sign_in(response)

    async def refresh(
        self,
        *,
        account_id: int,
        site_id: int,
        jwt: str,
        rate_limit: int | None = None,
        budgets: tuple[Budget, ...] = (),
    ) -> CustomerSignIn:
        """A new JWT for the customer (`POST /customer/refresh`); Pelcro blacklists the old
        one, so the caller must store the new one before anything else uses the JWT.
        Raises `CustomerTokenRejected` if `jwt` is no longer accepted."""
        response = await self.request(
            "POST",
            REFRESH_PATH,
            account_id=account_id,
            site_id=site_id,
            jwt=jwt,
            rate_limit=rate_limit,
            budgets=budgets,
        )
        return _sign_in(response)

    async def logout(
        self,
        *,
        account_id: int,
        site_id: int,
        jwt: str,
        rate_limit: int | None = None,
        budgets: tuple[Budget, ...] = (),
        background: bool = False,
    ) -> None:
        """Blacklist `jwt` at Pelcro (`POST /auth/logout`), e.g. when its connection ended
        (`open.sign_out`). A JWT Pelcro already refuses counts as logged out. `background`:
        counted in the account's background share of the limit."""
        with contextlib.suppress(CustomerTokenRejected):
            await self.request(
                "POST",
                LOGOUT_PATH,
                account_id=account_id,
                site_id=site_id,
                jwt=jwt,
                rate_limit=rate_limit,
                budgets=budgets,
                background=background,
            )

    def replayable(self, method: str, path: str) -> bool:
        return (method, path) in READING_POSTS or super().replayable(method, path)

    def is_rate_limit(self, response: httpx.Response, path: str) -> bool:
        # A 429 at login is one customer's lock-out (OPEN_API.md §2): never slow the
        # account down for it, never retry it.
        return path != LOGIN_PATH

    def parse(self, response: httpx.Response, *, unsure: bool) -> OpenAPIResponse:
        status = response.status_code
        body = self.read_body(response, unsure=unsure)
        if body is None:
            return OpenAPIResponse(status=status, data=None)
        if status < 400:
            data = body["data"]
            token = data.get("auth_token") if isinstance(data, dict) else None
            return OpenAPIResponse(
                status=status,
                data=data,
                meta=body.get("meta"),
                token=token if isinstance(token, str) and token else None,
            )
        raise _error(status, body, response)


def _sign_in(response: OpenAPIResponse) -> CustomerSignIn:
    if not isinstance(response.data, dict) or response.token is None or "id" not in response.data:
        raise UpstreamUnavailable("Open API answered a sign-in without the customer or its token", response.status)
    expires, issued = jwt_times(response.token)
    return CustomerSignIn(customer=response.data, jwt=response.token, expires_at=expires, issued_at=issued)


def _error(status: int, body: Any, response: httpx.Response) -> UpstreamError:
    """The typed error of a 4xx answer (OPEN_API.md §2, §4)."""
    path = response.request.url.path
    if status in (400, 422) and isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = {
            str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in body["errors"].items()
        }
        return ValidationFailed(fields, status=status)
    if path.endswith(LOGIN_PATH):
        if status == 404:
            return InvalidCredentials(error_message(body, "Invalid credentials"))
        if status == 429:
            return LoginLocked(error_message(body, "Too many login attempts"), _retry_after(response))
    if status in (401, 403):
        return CustomerTokenRejected(error_message(body, "The customer's sign-in was refused"), status)
    if status == 404:
        return NotFound(error_message(body, "Not found"))
    if status == 429:  # only reached for a login path (is_rate_limit); kept for safety
        return RateLimited(_retry_after(response), source="upstream")
    if status in (400, 409, 422):
        return BusinessRuleError(error_message(body, "The Open API refused the request"), status=status)
    return UpstreamError(error_message(body, f"Open API answered {status}"), status=status)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


# --- One client per event loop --------------------------------------------------------------


def build_client(gate: RequestGate | None = None) -> OpenAPIClient:
    """A client from settings; its gate is the shared Redis limiter unless `gate` is given."""
    return OpenAPIClient(settings.PELCRO_GATEWAY["OPEN_API_BASE_URL"], **client_options(gate))


_clients: PerLoop[OpenAPIClient] = PerLoop(build_client)


def get_client() -> OpenAPIClient:
    """This process's client for the running event loop (httpx pools are loop-bound)."""
    return _clients.get()
