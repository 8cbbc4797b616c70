"""Checks the `dry_run` preview tables share (tests/test_previews_core_customers.py,
test_previews_core_billing.py, test_open_subscriptions.py): a preview against what its row
expects, and the real call against the preview.

- `previewed(dry, tool, allowed, ...)`: the preview a dry run answered, checked as every
  row checks it (a dry run of `tool`, the verdict expected, a refusal's rule and no changes,
  a rule the preview could not settle named in `not_checked` and in the text).
- `sent_as_previewed(would_send, entry, base)`: the sandbox's log entry of the write the real
  call made is exactly the preview's `would_send` (method, path, query, body bytes).
- `answered_as_previewed(real, preview, writes, expected, base, where)`: the real call made
  that one write and answered as the row expects ("ok", or the error kind).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs

import httpx

CORE_BASE = "/api/v1/core"
OPEN_BASE = "/api/v1/sdk"


def previewed(dry, tool: str, allowed: bool, *, rule: str = "", unchecked: str = "", where: str = "") -> dict:
    """The preview (`structuredContent`) of `dry`, a `dry_run: true` result of `tool`, after
    checking it: no error, a dry run of `tool` whose text opens "Dry run, nothing was
    written.", `allowed` as expected with a verdict and a rule; refused, `rule` is in its
    rule or verdict and nothing would change; `unchecked` (if given) is in `not_checked`
    and the text names what was not checked."""
    assert not dry.is_error, (where, dry.content[0].text)
    preview = dry.structured_content
    assert preview["dry_run"] is True and preview["tool"] == tool, where
    assert preview["allowed"] is allowed, (where, preview["verdict"], preview["not_checked"])
    assert preview["verdict"] and preview["rule"], where
    assert dry.content[0].text.startswith("Dry run, nothing was written."), where
    if not allowed:
        assert rule in preview["rule"] or rule in preview["verdict"], (where, preview["rule"], preview["verdict"])
        assert preview["changes"] == [], where
    if unchecked:
        assert any(unchecked in entry for entry in preview["not_checked"]), (where, preview["not_checked"])
        assert "Not checked by this preview" in dry.content[0].text, where
    return preview


def sent_as_previewed(would_send: dict, entry: dict, base: str) -> None:
    """The write the real call sent (`entry`, the sandbox's log of it) is exactly the
    preview's `would_send`: method, path under `base` (CORE_BASE, OPEN_BASE), query (every
    request of both APIs has one: its site_id), and the body's bytes as httpx encodes JSON
    (the gateway's client)."""
    assert entry["method"] == would_send["method"]
    assert entry["path"] == base + would_send["path"]
    assert parse_qs(entry["query"]) == {k: [str(v)] for k, v in would_send["query"].items()}
    body = would_send["body"]
    expected = hashlib.sha256(httpx.Request("POST", "http://x", json=body).content).hexdigest() if body else None
    assert entry["body_sha256"] == expected


def answered_as_previewed(
    real, preview: dict, writes: list[dict], expected: str, base: str, where: str = ""
) -> dict[str, Any] | None:
    """The real call (`real`, made after the dry run) sent exactly one write (`writes`, the
    sandbox's log entries of its non-reading requests), the one the preview said, and
    answered as `expected`: "ok" (then the preview had changes to show; its answer is
    returned) or the error kind the upstream's refusal maps to (None is returned)."""
    assert len(writes) == 1, (where, writes)
    sent_as_previewed(preview["would_send"], writes[0], base)
    if expected == "ok":
        assert not real.is_error, (where, real.content[0].text)
        assert preview["changes"], where
        return real.structured_content
    assert real.is_error, (where, real.content[0].text)
    assert real.structured_content["error"] == expected, (where, real.structured_content)
    return None
