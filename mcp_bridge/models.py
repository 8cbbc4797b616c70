"""The MCP side's records: the audit log (one row per tool call, whatever its outcome),
the confirmations people give to write calls, export jobs, and subscriber connections as
the admin lists them."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Connection


class ToolCall(models.Model):
    """One `tools/call` as the gateway saw it: who, which account and site, what, how it went.

    Written for every call, including refused arguments, unknown tools, denials and
    rate-limited calls. Arguments are stored with secrets redacted (`mcp_bridge.audit`).
    The names of the user, client and account are copied so the row stays readable
    after they are deleted.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error"
        DENIED = "denied", "Denied"
        RATE_LIMITED = "rate_limited", "Rate limited"

    class Confirmation(models.TextChoices):
        # Blank: the tool needs no human confirmation for these arguments.
        # This call asked and did nothing else; the person's answer is the decision of the
        # call that came back with it (confirmed, declined, expired), its own row.
        ASKED = "asked", "Asked the person (the answer is in a later call)"
        CONFIRMED = "confirmed", "Confirmed by the person"
        DECLINED = "declined", "Declined by the person"
        EXPIRED = "expired", "Expired before it was used"
        WAIVED = "waived", "Not asked (turned off for this connection)"
        # The client sent back a confirmation state that is forged, altered, replayed or
        # bound to another call (MCP 2026-07-28 requestState): nothing was run.
        REFUSED = "refused", "Refused (invalid or reused confirmation)"

    created_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="tool_calls"
    )
    username = models.CharField(max_length=150, blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    client_name = models.CharField(max_length=255, blank=True)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="tool_calls"
    )
    account_slug = models.CharField(max_length=100, blank=True)
    connection = models.ForeignKey(
        "accounts.Connection", on_delete=models.SET_NULL, null=True, blank=True, related_name="tool_calls"
    )
    site_id = models.PositiveIntegerField(null=True, blank=True)
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    upstream_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True)
    # The Open server (`/open`): the Pelcro customer the call acted for (None on `/`).
    customer_id = models.PositiveBigIntegerField(null=True, blank=True)
    # Safe writes (README "Safe writes", issue 15).
    dry_run = models.BooleanField(default=False, help_text="A preview: nothing was written upstream.")
    idempotency_key = models.CharField(max_length=100, blank=True)
    replayed = models.BooleanField(
        default=False, help_text="Answered from an earlier call with the same idempotency key: no upstream request."
    )
    confirmation = models.CharField(max_length=10, choices=Confirmation.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["connection", "-created_at"], name="toolcall_connection_recent"),
            models.Index(fields=["account", "-created_at"], name="toolcall_account_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} by {self.username or '?'} on {self.account_slug or '?'}: {self.outcome}"


class PendingConfirmation(models.Model):
    """A person's confirmation of one write call: asked, answered, used at most once.

    One row per question (`mcp_bridge.runtime.confirmation`), bound to the connection, the
    tool and the hash of the exact arguments, and answerable until `expires_at`. Asked
    through MCP elicitation (`channel=elicitation`: the sealed request state names this
    row) or on the confirmation page (`channel=link`: the signed-in person of the
    connection confirms or declines there, and the repeated call uses the answer).
    `status` is the person's answer; `used_at` is set by the one call that acted on it (or
    reported it expired): the conditional update that sets it is what makes a confirmation
    single use, in every process.
    """

    class Channel(models.TextChoices):
        ELICITATION = "elicitation", "Asked in the app (MCP elicitation)"
        LINK = "link", "Asked on the confirmation page"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the person"
        CONFIRMED = "confirmed", "Confirmed"
        DECLINED = "declined", "Declined"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey("accounts.Connection", on_delete=models.CASCADE, related_name="confirmations")
    server = models.CharField(max_length=10)  # "core" or "open": which MCP server's tool
    tool = models.CharField(max_length=100)
    arguments_hash = models.CharField(max_length=64)  # SHA-256 of the canonical arguments
    arguments = models.JSONField(default=dict, blank=True)  # redacted (mcp_bridge.audit.redact), for the page
    summary = models.TextField()
    # The upstream request the person was shown (the preview's `would_send`; null for a tool
    # without a preview): a value the arguments leave to a default (pay_invoice's card) is
    # the one the question named, which the call then uses (`CallRecord.confirmed_request`).
    request = models.JSONField(null=True, blank=True)
    channel = models.CharField(max_length=12, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["connection", "tool", "arguments_hash"], name="confirmation_call"),
            models.Index(fields=["created_at"], name="confirmation_created"),
        ]

    def __str__(self) -> str:
        return f"confirmation of {self.tool} for connection {self.connection_id} ({self.status})"

    def expired(self, now=None) -> bool:
        """Past its time (an unused confirmation can no longer be given or used)."""
        return (now or timezone.now()) >= self.expires_at


class ExportJob(models.Model):
    """A CSV export of every customer or invoice of one site (`mcp_bridge.exports`).

    Started by the `start_export` tool, run by a Celery worker on the account's background
    share of the rate limit, and readable only through the connection that started it
    until `expires_at`, when beat deletes the file.
    """

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        INVOICES = "invoices", "Invoices"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey("accounts.Connection", on_delete=models.CASCADE, related_name="export_jobs")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="export_jobs")
    site_id = models.PositiveIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    # The CSV's length after the last saved page: a retried task truncates to it first.
    bytes_written = models.PositiveBigIntegerField(default=0)
    file_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="exportjob_expiry")]

    def __str__(self) -> str:
        return f"export {self.kind} of site {self.site_id} ({self.status})"


class SubscriberConnection(Connection):
    """A subscriber's connection to the Open server (`/open`), for its own admin list
    (`mcp_bridge.admin`): the same rows as `accounts.Connection`, those whose user is a
    subscriber."""

    class Meta:
        proxy = True
        verbose_name = "subscriber connection"
