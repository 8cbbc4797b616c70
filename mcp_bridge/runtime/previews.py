"""What both servers' `dry_run` previews share (issue 15 item 3, `runtime.writes.WritePreview`).

A preview applies the documented rules of its upstream (docs/CORE_API.md, docs/OPEN_API.md)
to the state it read, one by one in the order the upstream applies them (`Verdict`: the
first refusal stands, as the upstream answers with the first rule a write breaks; a rule
the preview's one read cannot settle is named in `not_checked`), says what would change
(`changes`, `described`, `merged_metadata`) and assembles the answer (`preview`).

How a write's request is built and sent, and how a preview reads state, is each server's
own: `core.previews` (the account's API key, `site_id` on every call) and `open.previews`
(the subscriber's Pelcro JWT), which build on this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp_bridge.runtime.writes import Change, UpstreamRequest, WritePreview

__all__ = ["IRREVERSIBLE", "Verdict", "changes", "counted", "described", "merged_metadata", "preview"]

# The sentence a preview's summary ends with when the write, once made, cannot be undone.
IRREVERSIBLE = "This cannot be undone."


def changes(*triples: tuple[str, Any, Any]) -> list[Change]:
    """`Change`s of (field, before, after) triples, leaving out the fields whose value would
    stay the same. A field names its object where a write touches more than one:
    "invoice.status", "customer.balance"."""
    return [Change(field=name, before=before, after=after) for name, before, after in triples if before != after]


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, str) else str(value)


def described(changed: list[Change], prefix: str = "") -> str:
    """Changes as a person reads them, e.g. "city 'Leeds' → 'York'; mail_marketing no → yes"
    (`prefix`, e.g. "customer.", left out of the field names)."""
    return "; ".join(f"{c.field.removeprefix(prefix)} {_shown(c.before)} → {_shown(c.after)}" for c in changed)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """ "1 address", "2 addresses"."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def merged_metadata(before: Any, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata after an update merges `patch` into it: keys set, a key given null removed,
    other keys kept (CORE_API.md §8.2; the Open API's customer update the same, OPEN_API.md
    §5.3). A `before` that is not a mapping (none yet, or an answer of another shape) counts
    as no metadata."""
    merged = dict(before) if isinstance(before, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@dataclass
class Verdict:
    """What the documented rules say about a write, as its preview checks them one by one
    in the upstream's own order: the first refusal stands (the upstream, too, answers with
    the first rule it breaks); rules the preview's one read cannot settle are noted."""

    refusal: str | None = None
    rule: str | None = None
    not_checked: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def refuse(self, reason: str, rule: str) -> None:
        """The write breaks `rule` (e.g. "CORE_API.md §8.3: ..."); `reason` says how, as the
        upstream would. A later refusal does not replace the first."""
        if self.refusal is None:
            self.refusal, self.rule = reason, rule

    def unchecked(self, rule: str) -> None:
        """A documented rule this preview could not check (the real call may break it);
        once refused, there is nothing more to warn about."""
        if self.refusal is None:
            self.not_checked.append(rule)


def preview(
    tool: str,
    request: UpstreamRequest,
    verdict: Verdict,
    *,
    allowed: str,
    rule: str,
    changed: list[Change],
    summary: str,
    irreversible: bool = False,
) -> WritePreview:
    """The `dry_run` answer of `tool` that would send `request`: `allowed` is the verdict
    when no rule refuses and `rule` the rules that were applied; a refused write changes
    nothing (its verdict and rule are the refusal's)."""
    return WritePreview(
        tool=tool,
        would_send=request,
        allowed=verdict.allowed,
        verdict=allowed if verdict.allowed else verdict.refusal or "",
        rule=rule if verdict.allowed else verdict.rule,
        changes=changed if verdict.allowed else [],
        summary=summary,
        irreversible=irreversible,
        not_checked=verdict.not_checked,
    )
