"""A person confirms money-moving and irreversible write calls (README "Safe writes",
issue 15). Never a flag the model can set: the answer comes from the person, through their
MCP client or on a gateway page, and is bound to this call.

A tool declared with `confirm=` (`runtime.registry`) needs a yes for the arguments its
predicate selects. `runtime.writes.run_write` calls `confirm_call` after the idempotency
lookup and before the idempotency claim and the handler. What happens:

- The connection's owner chose at consent not to be asked (`Connection.confirm_writes`
  off; only an account owner or admin may): the call runs, audited `waived`.
- The client speaks MCP 2026-07-28 and declared form elicitation: the call answers an
  `InputRequiredResult` (the multi round-trip pattern, SEP-2322) carrying one elicitation
  (`input_requests["confirm"]`: the summary and a yes box) and a request state naming a
  `PendingConfirmation` row. The SDK seals that state (`RequestStateBoundary`, AES-256-GCM
  under keys derived from SECRET_KEY, bound to the tool, the exact arguments, this
  connection and the server, with an expiry); the client re-sends `tools/call` with the
  person's answer and the state. Here the row is used at most once (a conditional update)
  and within CONFIRMATION_SECONDS: accept + yes → the call runs, audited `confirmed`;
  decline, cancel or no yes → `confirmation_declined`, nothing written, `declined`; a
  state past its time → `confirmation_required` (ask again), `expired`; a state already
  used, or naming another call → JSON-RPC -32602, `refused`. A forged or altered state
  never gets here: the SDK's boundary refuses it (`runtime.server` audits it `refused`).
- Otherwise (no elicitation declared, or a 2025 protocol version: this transport is
  stateless with JSON responses, so a server-to-client `elicitation/create` in the middle
  of a call has no channel back, and the SDK raises NoBackChannelError; a stateless 2025
  request does not even carry the client's capabilities): fail closed. The call answers
  `confirmation_required` with `confirmation_url`, a page where the signed-in person of
  this connection sees the same summary and confirms or declines; the model then repeats
  the call with the same arguments, which uses the confirmation once. Audited `asked`,
  then `confirmed` / `declined` / `expired`.

Replay protection lives in the database, not Redis: a Redis restarted from an older
snapshot could bring a used nonce back to life; a committed `used_at` cannot.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from accounts.models import Connection
from mcp_bridge.audit import redact
from mcp_bridge.models import PendingConfirmation, ToolCall
from mcp_bridge.orm import run_db
from mcp_bridge.runtime.context import CallContext, request_token
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure

Decision = ToolCall.Confirmation
Status = PendingConfirmation.Status
Channel = PendingConfirmation.Channel

# The key of our one question in `InputRequiredResult.input_requests` / `input_responses`.
CONFIRM_KEY = "confirm"
# The form the client shows: one yes box. No default: a client that accepts without the
# person ticking it sends no `true`, which counts as a no.
CONFIRM_SCHEMA = {
    "type": "object",
    "properties": {
        "confirm": {
            "type": "boolean",
            "title": "Yes, do it",
            "description": "Tick to confirm this action; decline (or leave it unticked) to stop it.",
        }
    },
    "required": ["confirm"],
}
STATE_VERSION = 1
# How long the SDK's seal outlives the confirmation itself: a state sent back a little
# late reaches us and is answered "expired" (audited so) rather than "unreadable".
SEAL_GRACE_SECONDS = 3600
# `data.reason` of the -32602 error refusing a request state (the SDK's boundary uses it too).
INVALID_STATE_REASON = "invalid_request_state"
# Confirmation rows are kept this long after they expire (`delete_old`).
RETENTION = timedelta(days=1)


def confirmation_seconds() -> int:
    return settings.PELCRO_GATEWAY["CONFIRMATION_SECONDS"]


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


# --- the request state's seal (the SDK's RequestStateBoundary) ------------------------------


def request_state_security() -> RequestStateSecurity:
    """The SDK's request-state policy for both servers: AES-256-GCM under keys derived from
    SECRET_KEY (then SECRET_KEY_FALLBACKS, so rotating the secret keeps states sealed
    under the old one readable), so every replica reads what another sealed (the SDK's
    default key is one process's); the principal bound is the connection; a state lives
    CONFIRMATION_SECONDS plus SEAL_GRACE_SECONDS (the confirmation row decides expiry)."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    keys = [
        salted_hmac("mcp_bridge.runtime.confirmation", "request-state", secret=secret, algorithm="sha256").hexdigest()
        for secret in secrets
    ]
    return RequestStateSecurity(
        keys=keys, ttl=confirmation_seconds() + SEAL_GRACE_SECONDS, bind_principal=_connection_principal
    )


def _connection_principal(ctx: Any) -> str | None:
    """The SDK's principal binding: the connection the verified token belongs to."""
    return f"connection:{request_token().principal.connection_id}"


def invalid_state_error(detail: str) -> MCPError:
    """The -32602 error answering a request state that cannot be used (what and what to do)."""
    return MCPError(
        code=INVALID_PARAMS,
        message=f"The confirmation sent back with this tools/call (requestState) cannot be used: {detail} "
        "Nothing was run. Call the tool again without requestState to ask the person again.",
        data={"reason": INVALID_STATE_REASON},
    )


def description_note(confirm: Any) -> str:
    """What a tool's description says about confirmation (appended by the registry to
    every tool declared with `confirm=`; `confirm.when` narrows it, e.g. 'with mode "now"')."""
    when = getattr(confirm, "when", "")
    return (
        f"Needs a person's confirmation{' ' + when if when else ''} (it moves money or cannot be undone): "
        "their app asks them, or the call answers confirmation_required with a confirmation_url for them "
        "to open; once they confirm, call again with exactly the same arguments."
    )


# --- the confirmation step of a write call ------------------------------------------------


def arguments_hash(tool: str, args: Any, idempotency_key: str | None) -> str:
    """SHA-256 (hex) of the call's exact validated arguments: the tool's own (canonical
    JSON, keys sorted) and the idempotency key. A confirmation is bound to it."""
    payload = {"tool": tool, "arguments": args.model_dump(mode="json"), "idempotency_key": idempotency_key}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def confirm_call(
    spec: Any, call: CallContext, args: Any, idempotency_key: str | None
) -> InputRequiredResult | None:
    """The confirmation step of a write call (`spec` is a `runtime.registry.ToolDef`).

    Returns None when the handler may run now (nothing to confirm for these arguments;
    turned off for this connection, audited `waived`; or confirmed, audited `confirmed`),
    or an `InputRequiredResult` asking the person through the client (audited `asked`).
    Raises `ToolFailed` (`confirmation_required` with `confirmation_url`, or
    `confirmation_declined`), or `MCPError` -32602 for a request state that cannot be used.
    """
    if not spec.needs_confirmation(args):
        return None
    record = call.record
    if not await run_db(connection_asks, call.principal.connection_id):
        record.confirmation = Decision.WAIVED
        return None
    digest = arguments_hash(spec.name, args, idempotency_key)
    exchange = call.exchange
    state = getattr(exchange, "request_state", None)
    if state is not None:
        await _answered(spec, call, digest, state, getattr(exchange, "input_responses", None) or {})
        return None
    if can_elicit(exchange):
        return await _ask_in_client(spec, call, args, digest)
    await _through_link(spec, call, args, digest)
    return None


def can_elicit(exchange: Any) -> bool:
    """True when this request may ask through the 2026-07-28 multi round-trip pattern: the
    protocol is 2026-07-28 and the client declared form elicitation (a bare `elicitation:
    {}` counts as form; url-only does not: MCP 2025-11-25 "Elicitation / Capabilities")."""
    if exchange is None or exchange.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = exchange.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def _ask_in_client(spec: Any, call: CallContext, args: Any, digest: str) -> InputRequiredResult:
    summary, request = await confirmation_question(spec, call, args)
    row = await run_db(_create, call, spec, args, digest, summary, request, Channel.ELICITATION)
    record = call.record
    record.confirmation = Decision.ASKED
    # The row must not read as a write that happened (list_recent_writes, the activity page):
    # the preview's read is not the write's answer.
    record.upstream_status = None
    record.error_message = "Waiting for the person's answer in the app (MCP elicitation); nothing was written."
    state = {"v": STATE_VERSION, "id": str(row.id), "tool": spec.name, "hash": digest}
    message = (
        f"{call.principal.client_name or 'Your AI app'} asks you to confirm this action:\n\n{summary}\n\n"
        "Confirm only if you asked for it."
    )
    return InputRequiredResult(
        input_requests={
            CONFIRM_KEY: ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=CONFIRM_SCHEMA))
        },
        request_state=json.dumps(state, separators=(",", ":")),
    )


async def _answered(spec: Any, call: CallContext, digest: str, state: str, responses: dict) -> None:
    """The retry carrying the person's answer: use its confirmation row once."""
    record = call.record
    row_id = _state_row(state, spec.name, digest)
    if row_id is None:
        record.confirmation = Decision.REFUSED
        message = "it belongs to another tool call (other tool or other arguments)."
        record.fail(f"Confirmation refused: {message}")
        raise invalid_state_error(message)
    said_yes = is_yes(responses.get(CONFIRM_KEY))
    outcome, confirmed = await run_db(
        _use_elicited,
        row_id,
        call.principal.connection_id,
        spec.name,
        digest,
        Status.CONFIRMED if said_yes else Status.DECLINED,
    )
    if outcome == "used":
        record.confirmation = Decision.REFUSED
        message = (
            "it was already used by an earlier call, which acted on the answer. Check the object before trying again."
        )
        record.fail(f"Confirmation refused: {message}")
        raise invalid_state_error(message)
    if outcome == "missing":
        record.confirmation = Decision.REFUSED
        message = "it names no confirmation this connection was asked for."
        record.fail(f"Confirmation refused: {message}")
        raise invalid_state_error(message)
    if outcome == "expired":
        record.confirmation = Decision.EXPIRED
        raise ToolFailed(
            ToolFailure(
                error="confirmation_required",
                message=f"The person's answer came after the confirmation expired ({_minutes(confirmation_seconds())} "
                f"to answer); nothing was written. Call {spec.name} again to ask again.",
            )
        )
    if said_yes:
        record.confirmation = Decision.CONFIRMED
        record.confirmed_request = confirmed
        return
    record.confirmation = Decision.DECLINED
    raise declined(spec.name)


def is_yes(answer: Any) -> bool:
    """Whether an elicitation answer is exactly the yes our form asks for: `accept` with
    content `{"confirm": true}` and nothing else. Anything else is a no: another action,
    no content, a value that only looks true ("true", 1), or fields the form never asked
    for (a client answering another question than the one the person saw; MCP 2025-11-25
    "Elicitation": the content matches the requested schema)."""
    return (
        isinstance(answer, ElicitResult)
        and answer.action == "accept"
        and isinstance(answer.content, dict)
        and set(answer.content) == {"confirm"}
        and answer.content["confirm"] is True
    )


def declined(tool: str) -> ToolFailed:
    return ToolFailed(
        ToolFailure(
            error="confirmation_declined",
            message=f"The person declined {tool}; nothing was written. Do not retry unless they ask you to.",
        )
    )


def _state_row(state: str, tool: str, digest: str) -> uuid.UUID | None:
    """The confirmation row a (SDK-verified) request state names, if it is ours for this
    very call (tool and arguments hash); else None."""
    try:
        inner = json.loads(state)
        if inner.get("v") != STATE_VERSION or inner.get("tool") != tool or inner.get("hash") != digest:
            return None
        return uuid.UUID(inner["id"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


async def _through_link(spec: Any, call: CallContext, args: Any, digest: str) -> None:
    """Fail closed to the confirmation page; returns (the call runs) only when the person
    confirmed there and this call is the one that uses it."""
    record = call.record
    outcome, row = await run_db(_use_link, call.principal.connection_id, spec.name, digest)
    if outcome == "confirmed":
        record.confirmation = Decision.CONFIRMED
        record.confirmed_request = row.request
        return
    if outcome == "declined":
        record.confirmation = Decision.DECLINED
        raise declined(spec.name)
    if outcome == "pending":
        record.confirmation = Decision.ASKED
        raise _link_failure(spec.name, row)
    expired = row if outcome == "expired" else None
    summary, request = await confirmation_question(spec, call, args)
    row = await run_db(_create, call, spec, args, digest, summary, request, Channel.LINK)
    record.confirmation = Decision.EXPIRED if expired is not None else Decision.ASKED
    record.upstream_status = None  # the preview's read, not a write's answer
    raise _link_failure(spec.name, row, expired=expired)


def confirmation_url(row: PendingConfirmation) -> str:
    return settings.PUBLIC_URL + reverse("confirmation", args=[row.id])


def _link_failure(tool: str, row: PendingConfirmation, *, expired: PendingConfirmation | None = None) -> ToolFailed:
    """`confirmation_required` with `row`'s link; `expired`: the earlier confirmation this
    call found expired, which the message names as it was (never answered, or confirmed
    but not used by a call in time: the person must not be told they did not answer)."""
    url = confirmation_url(row)
    earlier = ""
    if expired is not None and expired.status == Status.CONFIRMED:
        earlier = (
            "The person confirmed this earlier, but that confirmation expired before a call used it (repeat the "
            "call soon after they confirm). "
        )
    elif expired is not None:
        earlier = "The earlier confirmation expired unanswered. "
    return ToolFailed(
        ToolFailure(
            error="confirmation_required",
            message=f"{earlier}Nothing was written: a person must confirm this first. {row.summary}\n"
            f"Ask the user to open {url} (signed in as the person who connected this app) within "
            f"{_minutes(max(0, int((row.expires_at - timezone.now()).total_seconds())))} and confirm; then call "
            f"{tool} again with exactly the same arguments.",
            confirmation_url=url,
        )
    )


# --- what the person is shown -------------------------------------------------------------


async def confirmation_question(spec: Any, call: CallContext, args: Any) -> tuple[str, dict | None]:
    """What the person is asked: one paragraph, the tool's dry-run preview's `summary`
    (account or site, customer, object, amount with its currency, the effect, whether it
    can be undone; one upstream read, through the limiter) when the tool declares a
    preview, else `fallback_summary`; a preview that finds the call would be refused says
    so. With it, the upstream request that preview shows (`would_send`, as JSON; None
    without a preview): what the person is shown is what their yes allows, so the call
    that uses the yes gets it (`CallRecord.confirmed_request`) and fills a default the
    arguments leave out (pay_invoice's card) from it, not from a state changed since."""
    if spec.preview is None:
        return fallback_summary(spec, call, args), None
    preview = await spec.preview(call, args)
    text = preview.summary
    if not preview.allowed:
        text += f" Note: Pelcro's rules would refuse it now ({preview.verdict})."
    return text, preview.confirmed_send().model_dump(mode="json")


def fallback_summary(spec: Any, call: CallContext, args: Any) -> str:
    """A summary from the tool and its arguments, for a tool without a preview:
    "Void invoice on Acme Daily (site 14) of account acme: invoice_id 55. This cannot be undone."."""
    values = args.model_dump(mode="json", exclude_none=True)
    site_id = values.pop("site_id", None)
    principal, credentials = call.principal, call.credentials
    where = f"account {principal.account_slug}"
    if site_id is not None:
        where = f"{credentials.sites.get(site_id, 'site')} (site {site_id}) of {where}"
    if credentials.subscriber is not None:
        where += f", for customer {credentials.subscriber.customer_id}"
    amount, currency = values.pop("amount", None), values.pop("currency", None)
    details = []
    if isinstance(amount, int) and isinstance(currency, str):
        details.append(f"amount {amount / 100:,.2f} {currency.upper()}")
    elif amount is not None:
        details.append(f"amount {amount}")
    details += [
        f"{name} {json.dumps(value) if not isinstance(value, str) else value}" for name, value in values.items()
    ]
    listed = ": " + ", ".join(details) if details else ""
    return f"{spec.title} on {where}{listed}. This cannot be undone."


# --- the confirmation rows (sync, through run_db) ----------------------------------------


def connection_asks(connection_id: int) -> bool:
    """The connection's choice (`Connection.confirm_writes`), read now (a change applies to
    the next call); a connection not found asks."""
    found = Connection.objects.filter(pk=connection_id).values_list("confirm_writes", flat=True).first()
    return True if found is None else bool(found)


def _create(
    call: CallContext, spec: Any, args: Any, digest: str, summary: str, request: dict | None, channel: str
) -> PendingConfirmation:
    now = timezone.now()
    return PendingConfirmation.objects.create(
        connection_id=call.principal.connection_id,
        server=spec.server,
        tool=spec.name,
        arguments_hash=digest,
        arguments=redact(args.model_dump(mode="json", exclude_none=True)),
        summary=summary,
        request=request,
        channel=channel,
        created_at=now,
        expires_at=now + timedelta(seconds=confirmation_seconds()),
    )


def _use_elicited(
    row_id: uuid.UUID, connection_id: int, tool: str, digest: str, status: str
) -> tuple[str, dict | None]:
    """Record the person's answer on an elicitation row and use it, once: ("ok", the
    request the question showed), or why not ("used", "expired", "missing"; None)."""
    now = timezone.now()
    rows = PendingConfirmation.objects.filter(
        pk=row_id, connection_id=connection_id, tool=tool, arguments_hash=digest, channel=Channel.ELICITATION
    )
    if rows.filter(status=Status.PENDING, used_at__isnull=True, expires_at__gt=now).update(
        status=status, decided_at=now, used_at=now
    ):
        return "ok", rows.values_list("request", flat=True).first()
    row = rows.first()
    if row is None:
        return "missing", None
    return ("used" if row.used_at is not None else "expired"), None


def _use_link(connection_id: int, tool: str, digest: str) -> tuple[str, PendingConfirmation | None]:
    """What the page's confirmations for this exact call say, using the one acted on:
    ("confirmed" | "declined", row) used now; ("pending", row) still waiting for the
    person; ("expired", row) the last one expired, unanswered or confirmed but not used in
    time (now reported); ("none", None)."""
    now = timezone.now()
    unused = PendingConfirmation.objects.filter(
        connection_id=connection_id, tool=tool, arguments_hash=digest, channel=Channel.LINK, used_at__isnull=True
    )
    outcome: tuple[str, PendingConfirmation | None] = ("none", None)
    for row in unused.order_by("created_at"):
        answered = row.status in (Status.CONFIRMED, Status.DECLINED)
        if row.status == Status.DECLINED or (answered and not row.expired(now)):
            # Used by this call unless a concurrent one took it first.
            if unused.filter(pk=row.pk, status=row.status).update(used_at=now):
                return ("confirmed" if row.status == Status.CONFIRMED else "declined", row)
            continue
        if row.expired(now):
            if unused.filter(pk=row.pk).update(used_at=now):
                outcome = ("expired", row)
            continue
        return ("pending", row)
    return outcome


def delete_old(now=None) -> int:
    """Delete confirmations that expired more than RETENTION ago (beat, hourly): by then
    none can be answered or used, and each call's decision is in its audit row. Returns
    how many."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = PendingConfirmation.objects.filter(expires_at__lt=cutoff).delete()
    return deleted


def decide(row_id: uuid.UUID, user_id: int, confirmed: bool) -> tuple[str, PendingConfirmation | None]:
    """The confirmation page's answer by user `user_id`: ("ok", row) recorded; or why not:
    ("missing", None), ("wrong_person", row), ("revoked", row), ("expired", row),
    ("answered", row) (already confirmed, declined or used)."""
    row = PendingConfirmation.objects.select_related("connection").filter(pk=row_id, channel=Channel.LINK).first()
    if row is None:
        return ("missing", None)
    if row.connection.user_id != user_id:
        return ("wrong_person", row)
    if row.connection.revoked_at is not None:
        return ("revoked", row)
    now = timezone.now()
    status = Status.CONFIRMED if confirmed else Status.DECLINED
    if PendingConfirmation.objects.filter(
        pk=row.pk, status=Status.PENDING, used_at__isnull=True, expires_at__gt=now
    ).update(status=status, decided_at=now):
        row.refresh_from_db()
        return ("ok", row)
    row.refresh_from_db()
    return ("expired" if row.status == Status.PENDING else "answered", row)
