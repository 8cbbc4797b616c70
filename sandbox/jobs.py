"""Background work Pelcro does after answering (CORE_API.md §8.8: refund cancellation "runs
later in a background job").

**chosen (sandbox):** `POST /refunds/cancelled` answers 202 and queues a job; the job runs
before the first API request (any account) handled at least `job_delay` seconds later
(knob, default 2 s; `SANDBOX_JOB_DELAY`), or at once through `POST /_sandbox/jobs/run`.
It re-checks each refund when it runs: only those still `to_issue` become `canceled`.
"""

from __future__ import annotations

from sandbox.store import PendingJob, Store


def cancel_refunds(store: Store, site_id: int, ids: list[int]) -> None:
    for refund_id in ids:
        refund = store.find("refunds", site_id, refund_id)
        if refund is not None and refund["status"] == "to_issue" and refund["created_at"] is not None:
            refund["status"] = "canceled"


JOBS = {"cancel_refunds": cancel_refunds}


def apply_job(store: Store, job: PendingJob) -> None:
    JOBS[job.kind](store, job.site_id, job.ids)
