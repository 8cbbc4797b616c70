"""CSV exports: started by an MCP tool, run by a real Celery worker on the account's
background share of the limit, while interactive tool calls keep working; the file is
readable by the starting connection only, and deleted after the retention period."""

import asyncio
import csv
import io
import statistics
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from django.db.models.signals import post_save
from django.utils import timezone
from oauth2_provider.models import Application
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Connection
from devtools.oauth_client import mcp_url, obtain_tokens
from mcp_bridge.exports.jobs import create_export, run_export
from mcp_bridge.exports.tasks import delete_expired_exports
from mcp_bridge.models import ExportJob
from tests.support.mcp import PASSWORDS, mcp_session
from tests.support.ratelimit import (
    CUSTOMERS_PER_SITE,
    EXPORT_PAGE_SIZE,
    TIGHT_LIMIT,
    TIGHT_WINDOW,
    log_times,
    max_in_window,
)
from tests.support.sandbox import DEMO, SandboxClient

pytestmark = pytest.mark.sqlite
SITE = 14


def is_export_request(entry: dict) -> bool:
    query = parse_qs(entry["query"])
    return entry["path"].endswith("/customers") and query.get("limit") == [str(EXPORT_PAGE_SIZE)]


def interactive_waits(gateway_url: str) -> float:
    """How many interactive calls this gateway's limiter has made wait for a slot so far
    (its /metrics counter `pelcro_ratelimit_decisions_total{decision="wait"}`)."""
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(gateway_url + "/metrics", timeout=10).text)}
    decisions = families["pelcro_ratelimit_decisions"]  # present once the limiter decided anything
    return sum(
        s.value
        for s in decisions.samples
        if s.name.endswith("_total") and s.labels == {"decision": "wait", "kind": "interactive"}
    )


async def timed_calls(client, count: int) -> list[tuple[bool, float]]:
    """`count` interactive calls, 0.4 s apart: (ok, seconds) of each."""
    calls = []
    for _ in range(count):
        t0 = time.monotonic()
        result = await client.call_tool("list_plans", {"site_id": SITE, "per_page": 1})
        calls.append((not result.is_error, time.monotonic() - t0))
        await asyncio.sleep(0.4)
    return calls


async def export_while_working(url: str, token: str, deadline: float) -> dict:
    """Start an export, keep calling an interactive tool until it is done; returns what
    happened, with the same interactive calls timed just before the export as a baseline."""
    interactive: list[tuple[bool, float]] = []
    async with mcp_session(url, token, "2026-07-28") as client:
        baseline = await timed_calls(client, 5)
        start = await client.call_tool("start_export", {"site_id": SITE, "kind": "customers"})
        assert not start.is_error, start.structured_content
        job_id = start.structured_content["job_id"]
        progress_seen = []

        async def poll():
            while time.monotonic() < deadline:
                result = await client.call_tool("get_export", {"site_id": SITE, "job_id": job_id})
                progress_seen.append(result.structured_content)
                if result.structured_content["status"] in ("succeeded", "failed"):
                    return result
                await asyncio.sleep(0.5)
            raise AssertionError(f"export not done in time: {progress_seen[-1]}")

        async def work(done: asyncio.Event):
            async with mcp_session(url, token, "2026-07-28") as other:
                while not done.is_set():
                    interactive.extend(await timed_calls(other, 1))

        done = asyncio.Event()
        worker = asyncio.create_task(work(done))
        final = await poll()
        done.set()
        await worker
        csv_text = None
        if final.structured_content["status"] == "succeeded":
            read = await client.read_resource(final.structured_content["resource_uri"])
            csv_text = read.contents[0].text
    return {
        "start": start.structured_content,
        "job_id": job_id,
        "final": final,
        "progress": progress_seen,
        "interactive": interactive,
        "baseline": baseline,
        "csv": csv_text,
    }


def test_export_runs_in_the_background_while_interactive_calls_continue(
    acme, tight_sandbox, tight_gateways, celery_worker_process
):
    gateway = tight_gateways[0]
    url = mcp_url(gateway.url)
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"]
    sandbox = SandboxClient(tight_sandbox)
    since = sandbox.last_seq()
    waits_before = interactive_waits(gateway.url)

    outcome = asyncio.run(export_while_working(url, token, time.monotonic() + 90))

    # The tool answers at once with a job id (the job not yet done: the worker runs it);
    # progress was visible while it ran.
    assert outcome["start"]["status"] in ("queued", "running"), outcome["start"]
    final = outcome["final"].structured_content
    assert final["status"] == "succeeded", final
    running = [p for p in outcome["progress"] if p["status"] == "running" and p["rows_total"]]
    assert running and all(0 < p["rows_done"] < p["rows_total"] for p in running)
    upstream_total = running[0]["rows_total"]  # the Core API's own count (a few are deleted)
    # Plus the sandbox's demo subscribers of the site (demo/accounts.json `subscribers`).
    seeded = CUSTOMERS_PER_SITE + sum(1 for s in DEMO["subscribers"] if s["site_id"] == SITE)
    assert CUSTOMERS_PER_SITE * 0.9 < upstream_total <= seeded
    assert final["rows_done"] == final["rows_total"] == upstream_total

    # The CSV: a header and every customer once, in id order.
    rows = list(csv.DictReader(io.StringIO(outcome["csv"])))
    assert len(rows) == upstream_total
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(set(ids))
    assert all(r["email"] or r["display_name"] for r in rows)

    # Interactive calls kept working, without waiting for the export's requests: the
    # gateway's limiter never made one wait for a slot, and they were no slower than the
    # same calls just before the export (medians; a busy machine slows both alike).
    assert len(outcome["interactive"]) >= 10
    assert all(ok for ok, _ in outcome["interactive"] + outcome["baseline"])
    assert interactive_waits(gateway.url) == waits_before
    during = statistics.median(seconds for _, seconds in outcome["interactive"])
    before = statistics.median(seconds for _, seconds in outcome["baseline"])
    assert during < 2 * before + 0.25, (during, before)

    # The upstream never said 429, never saw more than its limit in a window, and the
    # export never used more than its share (half the limit) in any window.
    entries = sandbox.log(since, account="acme")
    assert {e["status"] for e in entries} == {200}
    assert max_in_window(log_times(entries), TIGHT_WINDOW) <= TIGHT_LIMIT
    export_requests = [e for e in entries if is_export_request(e)]
    assert len(export_requests) == -(-upstream_total // EXPORT_PAGE_SIZE)
    assert max_in_window(log_times(export_requests), TIGHT_WINDOW) <= TIGHT_LIMIT // 2
    # Beyond its in-process wait budget, the worker handed waits to Celery (retry with countdown).
    assert "Retry in" in celery_worker_process.log_text()


def test_a_running_export_never_shows_every_row_done(acme, mcp_sandbox, settings, tmp_path):
    """Every state a reader of get_export can see, recorded as it is saved: the last page
    is saved with the job's end, so "running" always has rows left to fetch."""
    settings.PELCRO_GATEWAY = {
        **settings.PELCRO_GATEWAY,
        "EXPORT_DIR": str(tmp_path),
        "EXPORT_PAGE_SIZE": 40,
        "CORE_API_BASE_URL": mcp_sandbox.url + "/api/v1/core",
    }
    user = acme.memberships.first().user
    application = Application.objects.create(
        name="export-states", client_type="public", user=user, authorization_grant_type="authorization-code"
    )
    connection = Connection.objects.create(user=user, application=application, account=acme)
    job = create_export(connection.id, acme.id, SITE, "customers")
    saved: list[tuple[str, int, int | None]] = []

    def record(sender, instance, **kwargs):
        saved.append((instance.status, instance.rows_done, instance.rows_total))

    post_save.connect(record, sender=ExportJob)
    try:
        finished = run_export(str(job.id))
    finally:
        post_save.disconnect(record, sender=ExportJob)

    assert finished.status == ExportJob.Status.SUCCEEDED and finished.rows_done > 40 * 2
    progress = [state for state in saved if state[0] == ExportJob.Status.RUNNING and state[1]]
    assert len(progress) >= 2
    assert all(rows_done < rows_total for _, rows_done, rows_total in progress)
    assert saved[-1] == (ExportJob.Status.SUCCEEDED, finished.rows_done, finished.rows_done)
    assert len(Path(finished.file_path).read_text().splitlines()) == finished.rows_done + 1


async def read_as(url: str, token: str, job_id: str):
    async with mcp_session(url, token, "2026-07-28") as client:
        progress = await client.call_tool("get_export", {"site_id": SITE, "job_id": job_id})
        try:
            read = await client.read_resource(f"pelcro://exports/{job_id}")
        except Exception as exc:  # the SDK raises the JSON-RPC error
            read = exc
    return progress, read


def test_only_the_starting_connection_can_read_an_export(acme, tight_gateways, tight_env):
    gateway = tight_gateways[0]
    url = mcp_url(gateway.url)
    owner = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", client_name="owner")["access_token"]
    other = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", client_name="other")["access_token"]
    job = finished_job(acme, tight_env, owner_client="owner")

    progress, read = asyncio.run(read_as(url, owner, str(job.id)))
    assert progress.structured_content["status"] == "succeeded"
    assert read.contents[0].text == "id,email\n1,a@example.com\n"

    progress, read = asyncio.run(read_as(url, other, str(job.id)))
    assert progress.is_error and progress.structured_content["error"] == "not_found"
    assert isinstance(read, Exception) and "No finished export" in str(read)


async def start_on_site(url: str, token: str, site_id: int):
    async with mcp_session(url, token, "2026-07-28") as client:
        return await client.call_tool("start_export", {"site_id": site_id, "kind": "invoices"})


def test_an_export_of_another_accounts_site_is_refused(acme, tight_gateways):
    gateway = tight_gateways[0]
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"]
    result = asyncio.run(start_on_site(mcp_url(gateway.url), token, 27))  # a site of "other"
    assert result.is_error and result.structured_content["error"] == "unknown_site"
    assert not ExportJob.objects.exists()


def finished_job(account, tight_env, owner_client: str) -> ExportJob:
    """A succeeded export of `owner_client`'s connection, with its file in EXPORT_DIR."""
    from accounts.models import Connection

    connection = Connection.objects.get(account=account, application__name=owner_client)
    job = ExportJob.objects.create(
        connection=connection,
        account=account,
        site_id=SITE,
        kind="customers",
        status=ExportJob.Status.SUCCEEDED,
        rows_done=1,
        rows_total=1,
        finished_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    job.file_path = str(Path(tight_env["EXPORT_DIR"]) / f"{job.id}.csv")
    Path(job.file_path).write_text("id,email\n1,a@example.com\n")
    job.save()
    return job


def test_expired_exports_are_deleted(acme, tight_gateways, tight_env):
    gateway = tight_gateways[0]
    url = mcp_url(gateway.url)
    token = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme", client_name="owner")["access_token"]
    job = finished_job(acme, tight_env, owner_client="owner")
    keep = finished_job(acme, tight_env, owner_client="owner")
    ExportJob.objects.filter(id=job.id).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert delete_expired_exports.apply().get() == 1  # the beat task, run in this process

    assert not Path(job.file_path).exists() and Path(keep.file_path).exists()
    progress, read = asyncio.run(read_as(url, token, str(job.id)))
    assert progress.structured_content["status"] == "expired"
    assert isinstance(read, Exception)
