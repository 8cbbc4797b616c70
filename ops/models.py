"""Per-minute usage of each account, rolled up from Redis by Celery beat (`ops.rollups`)."""

from django.db import models


class UsageMinute(models.Model):
    """One account's Core API usage during one minute (Redis time, UTC)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="usage_minutes")
    minute = models.DateTimeField(help_text="Start of the minute (UTC).")
    calls = models.PositiveIntegerField(default=0, help_text="Requests the limiter let through.")
    background_calls = models.PositiveIntegerField(default=0, help_text="Of which by background jobs.")
    waits = models.PositiveIntegerField(default=0, help_text="Calls that waited for a slot.")
    rejections = models.PositiveIntegerField(default=0, help_text="Calls refused with retry_after.")
    upstream_429s = models.PositiveIntegerField(default=0, help_text="429 answers from the Core API.")
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["account", "minute"], name="one_usage_row_per_minute")]

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.minute:%Y-%m-%d %H:%M}: {self.calls} calls"
