"""Safe writes (README "Safe writes", issue 15): what every write tool takes and answers
besides its own arguments, and the path a write call takes through the runtime.

Every tool that is not read-only publishes two more arguments (`WriteOptions`):

- `dry_run: true` answers a `WritePreview` (what would be sent, whether Pelcro's documented
  rules allow it on the object's current state, what would change) and writes nothing;
- `idempotency_key`: a repeat with the same key and arguments returns the first outcome
  without a second upstream request (`runtime.idempotency`).

Tools declared with `confirm=` need a human's confirmation before they run (for the
arguments the predicate selects), through MCP elicitation or a confirmation page
(`runtime.confirmation`).

The handler itself never sees these options: it gets its own argument model
(`ToolDef.args_model`); the runtime splits them off (`split_options`). (`spec` below is
a `runtime.registry.ToolDef`; typed `Any` because the registry imports this module.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp_types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field, PrivateAttr

from mcp_bridge.runtime import confirmation, idempotency
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.failures import before_retrying
from mcp_bridge.runtime.results import ToolFailed, structured_result
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,100}$"


class WriteOptions(ToolInput):
    """The safe-write arguments every write tool publishes next to its own."""

    idempotency_key: str | None = Field(
        None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="8-100 chars [A-Za-z0-9._:-]. Retrying the SAME action (timeout, lost answer, error): REUSE "
        "the SAME key: the first outcome comes back, nothing is written twice (even while the first call runs). A "
        "failure that wrote nothing frees the key. New action: new key. Same key, other arguments: refused. 24 h.",
    )
    dry_run: bool = Field(
        False,
        description="true: write nothing; say what would be sent, whether it is allowed now, what would change.",
    )


OPTION_NAMES = frozenset(WriteOptions.model_fields)


class UpstreamRequest(BaseModel):
    """An upstream request as it would be sent (no credentials)."""

    method: str
    path: str
    query: dict[str, Any] | None = None
    body: dict[str, Any] | None = None


class Change(BaseModel):
    """One field the write would change."""

    field: str
    before: Any = None
    after: Any = None


class WritePreview(BaseModel):
    """The answer to `dry_run: true`: nothing was written."""

    # Field meanings (kept out of the published schema, which every write tool repeats):
    # allowed/verdict/rule: whether Pelcro's documented rules allow it on the current state,
    # why, and which rule (e.g. "CORE_API.md §8.4"); changes: what would change if it ran
    # now; summary: one paragraph for a person (account or site, customer, object, amount
    # with its currency, the effect, whether it can be undone), also what a confirmation
    # shows; needs_confirmation: the real call asks a person first; not_checked: documented
    # rules the one read could not settle (another object's state, an account setting), so
    # an allowed verdict holds only as far as they go and the real call may still be refused.
    dry_run: Literal[True] = True
    tool: str
    would_send: UpstreamRequest
    allowed: bool
    verdict: str
    rule: str | None = None
    changes: list[Change] = Field(default_factory=list)
    summary: str
    irreversible: bool = False
    needs_confirmation: bool = False
    not_checked: list[str] = Field(default_factory=list)
    # What a person's yes to `summary` allows, when narrower than `would_send` (never
    # published): `cancel_refunds` with all_pending sends "all", but the question lists the
    # refunds pending now, and the call that uses the yes cancels those
    # (`runtime.confirmation.confirmation_question`, `CallRecord.confirmed_request`).
    _confirmed_send: UpstreamRequest | None = PrivateAttr(default=None)

    def confirmed_send(self) -> UpstreamRequest:
        """The request a yes to this preview's summary allows (`would_send` unless narrowed)."""
        return self._confirmed_send or self.would_send

    def narrowed(self, request: UpstreamRequest) -> WritePreview:
        """This preview, with a yes allowing only `request` (see `confirmed_send`)."""
        self._confirmed_send = request
        return self


# `preview(call, args)`: the `WritePreview` of a write tool's arguments, reading the
# object's current state with at most one upstream request (through the limiter).
Preview = Callable[[CallContext, Any], Awaitable[WritePreview]]
# `confirm(args)`: whether these arguments need a person's confirmation.
ConfirmWhen = Callable[[Any], bool]


def ALWAYS(args: Any) -> bool:
    """`confirm=` of a tool that always moves money or cannot be undone."""
    return True


def WHEN_MODE_NOW(args: Any) -> bool:
    """`confirm=` of a cancellation that is irreversible only when it ends things at once
    (`mode="now"`; `period_end` can still be undone by reactivating)."""
    return getattr(args, "mode", None) == "now"


# When a predicate asks only for some arguments, the tool description says which
# (`runtime.confirmation.description_note`).
WHEN_MODE_NOW.when = 'with mode "now"'  # type: ignore[attr-defined]


def split_options(spec: Any, arguments: Any) -> tuple[WriteOptions, Any]:
    """(the safe-write options, the handler's own arguments) of a validated call."""
    values = dict(arguments) if isinstance(arguments, dict) else arguments.__dict__
    options = WriteOptions.model_construct(**{k: values[k] for k in OPTION_NAMES if k in values})
    own = spec.args_model.model_construct(**{k: v for k, v in values.items() if k not in OPTION_NAMES})
    return options, own


async def preview_result(spec: Any, call: CallContext, args: Any) -> CallToolResult:
    """The `dry_run` answer: the tool's preview, marked in the audit row as a dry run."""
    call.record.dry_run = True
    if spec.preview is None:  # every write tool declares one (tests/test_safe_writes.py)
        raise ToolFailed(ToolFailure(error="invalid_arguments", message=f"{spec.name} cannot preview (dry_run) yet."))
    preview = await spec.preview(call, args)
    preview.needs_confirmation = spec.needs_confirmation(args)
    head = "Dry run, nothing was written. " + ("Allowed: " if preview.allowed else "Would be refused: ")
    text = head + preview.verdict + "\n" + preview.summary
    if preview.not_checked:
        text += "\nNot checked by this preview: " + "; ".join(preview.not_checked) + "."
    return structured_result(preview, text)


async def run_write(
    spec: Any, call: CallContext, args: Any, options: WriteOptions
) -> CallToolResult | InputRequiredResult:
    """A real write call, in this order (README "Safe writes"):

    1. idempotency: an earlier call with this key and these arguments → its outcome, with
       no upstream request (`replayed` in the audit row), and no person asked again; other
       arguments → refused;
    2. a person's confirmation when the tool needs one (`runtime.confirmation`): before
       the key is claimed, since it may answer this call (an `InputRequiredResult` asking
       through the client, `confirmation_required` with a link, `confirmation_declined`)
       and come back in another;
    3. the handler, once: with a key, claimed in the shared store first (a call holding
       it is waited for and its outcome answered) and its outcome kept for 24 h.
    """
    call.record.idempotency_key = options.idempotency_key or ""
    once = idempotency.for_call(spec, call, args, options.idempotency_key)
    # 1. Idempotency lookup.
    if once is not None and (earlier := await once.earlier_outcome()) is not None:
        return earlier
    # 2. A person's confirmation.
    asking = await confirmation.confirm_call(spec, call, args, options.idempotency_key)
    if asking is not None:
        return asking
    # 3. Run once.
    if once is None:
        return await _handle(spec, call, args)
    return await once.run(lambda: _handle(spec, call, args))


async def _handle(spec: Any, call: CallContext, args: Any) -> CallToolResult:
    """The handler, once. A failure it raises after the upstream accepted its write (an
    answer of an unexpected shape, a read that follows) would otherwise read as "nothing
    was written": the model would try again and the idempotency key would be freed. Such a
    failure says the write was most likely applied (`may_have_been_applied`, how to check),
    so the key keeps it and repeats get it again (README "Safe writes")."""
    try:
        return await spec.handler(call, args)
    except ToolFailed as failed:
        check = call.record.write_accepted
        if check is None or failed.failure.may_have_been_applied:
            raise
        failure = failed.failure.model_copy(
            update={
                "may_have_been_applied": True,
                "message": f"{failed.failure.message} The write itself was accepted, so it was most likely "
                f"applied. {before_retrying(check)}",
            }
        )
        raise ToolFailed(failure, failed.outcome) from None
