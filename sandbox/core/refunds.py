"""Refunds (CORE_API.md §8.8): list (`include=charge`) and cancel pending ones.

`POST /refunds/cancelled` `{"refund_ids": "1,2"}` or `{"refund_ids": "all"}` answers 202
`{"data": {"queued": [ids]}}`: the site's refunds among those named that are `to_issue` and
have a creation date (others are not queued, **chosen**: no error for them). They become
`canceled` later, in a background job (sandbox/jobs.py says when).
"""

from __future__ import annotations

import re

from sandbox.store import Store
from sandbox.validation import Checker

_ID_LIST = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*$")


def cancellable(refund: dict) -> bool:
    return refund["status"] == "to_issue" and refund["created_at"] is not None


def cancel_refunds(store: Store, site_id: int, body: dict, queue_job) -> list[int]:
    check = Checker(body, {"refund_ids"})
    raw = check.string("refund_ids", required=True, nullable=False, max_len=10_000)
    if isinstance(raw, str) and raw != "all" and not _ID_LIST.match(raw):
        check.add("refund_ids", 'The refund ids must be a comma-separated list of refund ids (e.g. "1,2") or "all".')
    check.done()
    refunds = store.live("refunds", site_id)
    if raw != "all":
        wanted = {int(part) for part in raw.split(",")}
        refunds = [r for r in refunds if r["id"] in wanted]
    queued = [r["id"] for r in refunds if cancellable(r)]
    if queued:
        queue_job("cancel_refunds", site_id, queued)
    return queued
