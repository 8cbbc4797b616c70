"""Export tools: start a CSV export of a site's customers or invoices, follow its progress.

The export runs in a Celery worker on the account's background share of the rate limit
(`exports.jobs`); the finished CSV is the MCP resource `pelcro://exports/{job_id}`,
readable only by the connection that started it (`register_export_resource`).
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from kombu.exceptions import OperationalError
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp_types import CallToolResult, ResourceLink, TextContent
from pydantic import BaseModel, Field

from accounts.principal import Principal
from mcp_bridge.exports import jobs as exports
from mcp_bridge.exports import tasks
from mcp_bridge.models import ExportJob
from mcp_bridge.orm import run_db
from mcp_bridge.runtime.context import CallContext, request_token
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import SiteInput, ToolFailure

logger = logging.getLogger(__name__)

RESOURCE_TEMPLATE = "pelcro://exports/{job_id}"


class StartExportInput(SiteInput):
    kind: Literal["customers", "invoices"] = Field(description="What to export: every customer or every invoice.")


class ExportIdInput(SiteInput):
    job_id: str = Field(min_length=1, max_length=64, description="The job id start_export returned (a UUID).")


class ExportProgress(BaseModel):
    job_id: str
    kind: str
    site_id: int
    status: Literal["queued", "running", "succeeded", "failed", "expired"]
    rows_done: int = Field(description="Rows written so far.")
    rows_total: int | None = Field(description="Rows the site has, once the first page is in.")
    percent: float | None
    error: str | None = Field(description="Why the export failed, if it did.")
    created_at: str
    finished_at: str | None
    expires_at: str | None = Field(description="When the finished file is deleted.")
    resource_uri: str | None = Field(description="Read the finished CSV here (resources/read).")


def _progress(job: ExportJob) -> ExportProgress:
    data = exports.progress(job)
    uri = RESOURCE_TEMPLATE.format(job_id=job.id) if job.status == ExportJob.Status.SUCCEEDED else None
    return ExportProgress(**data, resource_uri=uri)


def _result(progress: ExportProgress, summary: str) -> CallToolResult:
    data = progress.model_dump(mode="json")
    content: list = [
        TextContent(type="text", text=summary),
        TextContent(type="text", text=json.dumps(data, separators=(",", ":"))),
    ]
    if progress.resource_uri:
        content.append(
            ResourceLink(name=f"{progress.kind}-{progress.site_id}.csv", uri=progress.resource_uri, mimeType="text/csv")
        )
    return CallToolResult(content=content, structured_content=data)


def _start(principal: Principal, site_id: int, kind: str) -> ExportJob | None:
    job = exports.create_export(principal.connection_id, principal.account_id, site_id, kind)
    if job is None:
        return None
    try:
        tasks.run_export.delay(str(job.id))
    except OperationalError:
        exports.fail_export(str(job.id), "could not queue the export (the job queue is unavailable)")
        job.refresh_from_db()
    return job


@tool(
    "start_export",
    title="Start a CSV export",
    input=StartExportInput,
    output=ExportProgress,
    read_only=True,
    destructive=False,
    idempotent=False,
    open_world=True,
)
async def start_export(call: CallContext, args: StartExportInput) -> CallToolResult:
    """Start exporting every customer or every invoice of a site to a CSV file, in the
    background. Returns a job_id at once; call get_export with it to follow progress.
    When it has succeeded, read the file from its resource_uri. Exports share the
    account's rate limit but leave most of it to other tools, so a large site takes a while."""
    # The registry has checked the site against the token's credentials, as for every tool.
    job = await run_db(_start, call.principal, args.site_id, args.kind)
    if job is None:  # the site left the account after the token was checked
        raise ToolFailed(
            ToolFailure(
                error="unknown_site",
                message=f"Site {args.site_id} is no longer a site of the connected account "
                f"({call.principal.account_slug}).",
            )
        )
    progress = _progress(job)
    if job.status == ExportJob.Status.FAILED:
        raise ToolFailed(ToolFailure(error="upstream_unavailable", message=job.error))
    return _result(
        progress,
        f"Export {job.id} of the {args.kind} of site {args.site_id} started. "
        "Call get_export with this job_id to follow it.",
    )


@tool(
    "get_export",
    title="Export progress",
    input=ExportIdInput,
    output=ExportProgress,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=False,
)
async def get_export(call: CallContext, args: ExportIdInput) -> CallToolResult:
    """Report the progress of an export started with start_export: status (queued,
    running, succeeded, failed, expired), rows done of the total, and once it has
    succeeded the resource_uri to read the CSV from."""
    try:
        job = await run_db(exports.job_for_connection, call.principal.connection_id, args.job_id)
    except exports.ExportNotFound:
        job = None
    if job is None or job.site_id != args.site_id:
        raise ToolFailed(
            ToolFailure(
                error="not_found",
                message=f"No export {args.job_id} of site {args.site_id} was started through this connection.",
            )
        )
    progress = _progress(job)
    summary = {
        "queued": "Export queued; it starts when a worker is free.",
        "running": f"Export running: {job.rows_done} of {job.rows_total or '?'} rows.",
        "succeeded": f"Export done: {job.rows_done} rows. Read the CSV at {progress.resource_uri}.",
        "failed": f"Export failed: {job.error}",
        "expired": "Export expired: its file was deleted after the retention period.",
    }[job.status]
    return _result(progress, summary)


def register_export_resource(server: MCPServer) -> None:
    """Serve finished exports as `pelcro://exports/{job_id}` (text/csv) on `server`."""

    @server.resource(
        RESOURCE_TEMPLATE,
        name="export",
        title="CSV export",
        description="A finished export started through this connection (see start_export).",
        mime_type="text/csv",
    )
    async def read_export(job_id: str) -> str:
        try:
            return await run_db(exports.read_finished_export, request_token().principal.connection_id, job_id)
        except exports.ExportNotFound:
            # The not-found code of the request's protocol version (runtime.server).
            shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"
            raise ResourceNotFoundError(
                f"No finished export {shown} for this connection: read an export's resource_uri "
                "once get_export reports it succeeded."
            ) from None
