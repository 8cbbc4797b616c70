"""Core API client behaviour the contract tests do not reach: what the gate hears on
failed attempts, and errors that survive pickling (Celery ships them between processes)."""

import pickle

import pytest

from devtools.servers import free_port
from mcp_bridge.core.client import CoreAPIClient
from mcp_bridge.upstream.errors import (
    NotFound,
    RateLimited,
    RateLimiterUnavailable,
    UpstreamUnavailable,
    ValidationFailed,
)


class CountingGate:
    def __init__(self):
        self.events = []

    async def acquire(self, account_id, *, limit=None, background=False, budgets=()):
        self.events.append("acquire")

    async def finished(self, account_id, seconds):
        self.events.append("finished")

    async def upstream_rate_limited(self, account_id, retry_after):
        self.events.append("429")


async def test_every_failed_attempt_is_reported_finished_so_its_slot_frees():
    gate = CountingGate()
    client = CoreAPIClient(f"http://127.0.0.1:{free_port()}/api/v1/core", gate=gate, max_retries=2, backoff_base=0.01)
    try:
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            await client.request("POST", "/customers", account_id=1, api_key="k", site_id=14, json={"email": "a@b.c"})
    finally:
        await client.aclose()
    # Connection refused never reaches the upstream, so even a POST is retried; each of the
    # three attempts passed the gate and was reported over.
    assert gate.events == ["acquire", "finished"] * 3


async def test_answered_attempts_are_reported_finished(sandbox_server):
    gate = CountingGate()
    client = CoreAPIClient(sandbox_server.url + "/api/v1/core", gate=gate)
    try:
        with pytest.raises(NotFound):
            await client.request(
                "GET", "/customers/999999999", account_id=1, api_key="sbx_acme_4f1c9a7e2b8d6035", site_id=14
            )
    finally:
        await client.aclose()
    assert gate.events == ["acquire", "finished"]


@pytest.mark.parametrize(
    "error",
    [
        RateLimited(3.2, source="upstream"),
        ValidationFailed({"email": ["is not valid"]}, status=422),
        UpstreamUnavailable("Core API timed out", maybe_processed=True),
        RateLimiterUnavailable(),
        NotFound("Customer not found"),
    ],
)
def test_errors_survive_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.message, copy.status) == (error.message, error.status)
    for attribute in ("retry_after", "source", "fields", "maybe_processed"):
        assert getattr(copy, attribute, None) == getattr(error, attribute, None)
