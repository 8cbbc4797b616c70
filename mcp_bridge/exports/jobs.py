"""CSV exports of every customer or invoice of a site: a background job on the limiter.

`start_export` (the MCP tool) creates an `ExportJob` and queues `exports.tasks.run_export`.
The task pages through the Core API with `background=True`, so it only ever uses the
account's background share of the rate limit and interactive tool calls keep the rest.
Each page is appended to the CSV and the job's progress saved; when the limiter says
"retry in N s" the task is retried by Celery with that countdown and resumes at the
next page (truncating any half-written page first). The finished file is readable
only through the connection that started it, until beat deletes it after
`EXPORT_RETENTION_HOURS`.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Connection, Site
from mcp_bridge.core.client import CoreAPIResponse, build_client
from mcp_bridge.models import ExportJob
from mcp_bridge.upstream.errors import RateLimited, RateLimiterUnavailable, UpstreamError
from mcp_bridge.upstream.redis_clients import close_redis_for_loop

logger = logging.getLogger(__name__)

COLUMNS: dict[str, list[str]] = {
    ExportJob.Kind.CUSTOMERS: [
        "id",
        "email",
        "first_name",
        "last_name",
        "display_name",
        "phone",
        "balance",
        "mail_marketing",
        "tele_marketing",
        "metadata",
        "created_at",
        "updated_at",
    ],
    ExportJob.Kind.INVOICES: [
        "id",
        "customer_id",
        "subscription_id",
        "status",
        "currency",
        "total",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "due_date",
        "billing_reason",
        "metadata",
        "created_at",
        "paid_at",
        "voided_at",
    ],
}

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection):
# such text values get a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportNotFound(Exception):
    """No export with that id for this connection (the same answer for another's export)."""


def export_dir() -> Path:
    path = Path(settings.PELCRO_GATEWAY["EXPORT_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_export(connection_id: int, account_id: int, site_id: int, kind: str) -> ExportJob | None:
    """A queued export job, or None if `site_id` is not one of the account's sites."""
    if not Site.objects.filter(site_id=site_id, account_id=account_id).exists():
        return None
    with transaction.atomic():
        job = ExportJob.objects.create(connection_id=connection_id, account_id=account_id, site_id=site_id, kind=kind)
        job.file_path = str(export_dir() / f"{job.id}.csv")
        job.save(update_fields=["file_path"])
    return job


def job_for_connection(connection_id: int, job_id: str) -> ExportJob:
    """The export `job_id` if this connection started it, else ExportNotFound."""
    try:
        return ExportJob.objects.get(id=job_id, connection_id=connection_id)
    except (ExportJob.DoesNotExist, ValidationError, ValueError, TypeError):  # not a UUID: no such job
        raise ExportNotFound(job_id) from None


def read_finished_export(connection_id: int, job_id: str) -> str:
    """The CSV text of a finished, unexpired export of this connection, else ExportNotFound."""
    job = job_for_connection(connection_id, job_id)
    if (
        job.status != ExportJob.Status.SUCCEEDED
        or not Connection.objects.filter(id=connection_id, revoked_at__isnull=True).exists()
    ):
        raise ExportNotFound(job_id)
    try:
        return Path(job.file_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportNotFound(job_id) from None


def progress(job: ExportJob) -> dict[str, Any]:
    """What the progress tool reports."""
    percent = None
    if job.status == ExportJob.Status.SUCCEEDED:
        percent = 100.0
    elif job.rows_total:
        percent = round(min(100.0, 100.0 * job.rows_done / job.rows_total), 1)
    return {
        "job_id": str(job.id),
        "kind": job.kind,
        "site_id": job.site_id,
        "status": job.status,
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "percent": percent,
        "error": job.error or None,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "expires_at": job.expires_at.isoformat() if job.expires_at else None,
    }


# --- Running an export (Celery worker) --------------------------------------------------------


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


PROGRESS_FIELDS = ["bytes_written", "pages_done", "rows_done", "rows_total"]


def _append_page(job: ExportJob, rows: list[dict], *, save: bool = True) -> None:
    """Append one page to the CSV (after cutting off any half-written page) and save progress.

    The last page is saved together with the job's end (`save=False`), so "running" never
    shows every row done: a reader between two saves would otherwise see a finished export
    that is not yet readable.
    """
    path = Path(job.file_path)
    with open(path, "a+", encoding="utf-8", newline="") as handle:
        handle.truncate(job.bytes_written)
        handle.seek(job.bytes_written)
        writer = csv.writer(handle)
        if job.bytes_written == 0:
            writer.writerow(COLUMNS[job.kind])
        for row in rows:
            writer.writerow([_cell(row.get(column)) for column in COLUMNS[job.kind]])
        handle.flush()
        os.fsync(handle.fileno())
        job.bytes_written = handle.tell()
    job.pages_done += 1
    job.rows_done += len(rows)
    if save:
        job.save(update_fields=PROGRESS_FIELDS)


def _is_last_page(response: CoreAPIResponse, page: int, page_size: int) -> bool:
    meta = response.meta or {}
    if isinstance(meta.get("last_page"), int):
        return page >= meta["last_page"]
    return len(response.data or []) < page_size


def run_export(job_id: str) -> ExportJob:
    """Fetch the job's remaining pages and write them; marks it succeeded or failed.

    `RateLimited` (and `RateLimiterUnavailable`) propagate with progress saved, so the
    Celery task can retry later and resume where this run stopped.
    """
    job = ExportJob.objects.select_related("account").get(id=job_id)
    if job.status not in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
        return job
    if job.status == ExportJob.Status.QUEUED:
        job.status, job.started_at = ExportJob.Status.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    page_size = settings.PELCRO_GATEWAY["EXPORT_PAGE_SIZE"]
    api_key = job.account.get_api_key()
    with asyncio.Runner() as runner:
        client = build_client()
        try:
            while True:
                page = job.pages_done + 1
                try:
                    response = runner.run(
                        client.request(
                            "GET",
                            f"/{job.kind}",
                            account_id=job.account_id,
                            api_key=api_key,
                            site_id=job.site_id,
                            params={"page": page, "limit": page_size, "sort": "id"},
                            background=True,
                        )
                    )
                except (RateLimiterUnavailable, RateLimited):
                    raise  # the task retries later (the gateway's limiter or a Core API 429)
                except UpstreamError as exc:
                    return _finish(job, ExportJob.Status.FAILED, error=exc.message)
                total = (response.meta or {}).get("total")
                if isinstance(total, int):
                    job.rows_total = total
                last = _is_last_page(response, page, page_size)
                _append_page(job, list(response.data or []), save=not last)
                if last:
                    return _finish(job, ExportJob.Status.SUCCEEDED)
        finally:
            runner.run(_close(client))


async def _close(client) -> None:
    await client.aclose()
    await close_redis_for_loop()


def _finish(job: ExportJob, status: str, *, error: str = "") -> ExportJob:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    if status == ExportJob.Status.SUCCEEDED:
        job.expires_at = job.finished_at + timedelta(hours=settings.PELCRO_GATEWAY["EXPORT_RETENTION_HOURS"])
        job.rows_total = job.rows_done
    else:
        Path(job.file_path).unlink(missing_ok=True)
    job.save(update_fields=["status", "error", "finished_at", "expires_at", *PROGRESS_FIELDS])
    logger.info("export %s of site %s: %s (%d rows)", job.id, job.site_id, status, job.rows_done)
    return job


def fail_export(job_id: str, message: str) -> None:
    """Mark an export failed (its task gave up) and delete its partial file."""
    job = ExportJob.objects.filter(id=job_id).first()
    if job is not None and job.status in (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING):
        _finish(job, ExportJob.Status.FAILED, error=message)


def delete_expired_exports() -> int:
    """Delete the files of exports past their retention; returns how many."""
    expired = ExportJob.objects.filter(status=ExportJob.Status.SUCCEEDED, expires_at__lte=timezone.now())
    count = 0
    for job in expired:
        Path(job.file_path).unlink(missing_ok=True)
        job.status = ExportJob.Status.EXPIRED
        job.save(update_fields=["status"])
        count += 1
    return count
