"""The shapes of the ops JSON API (`/ops/api/…`), as Django REST framework serializers.

`ops.state` gathers live objects (limiter state from Redis, rows from the database); these
serializers are the one place that decides what the JSON looks like. Units are in the
names (`_seconds`, `_ms`, `_last_hour`) and in each field's help_text.

Two different refusals are kept apart on purpose:
- `rejections_last_hour`: calls **the gateway's own limiter refused** (answered
  `retry_after`, nothing sent upstream);
- `upstream_429s_last_hour`: **429 answers from the Pelcro Core API** itself.
"""

from rest_framework import serializers

from mcp_bridge.models import ExportJob, ToolCall


class LimitSerializer(serializers.Serializer):
    """The limiter's settings: in the overview the defaults (an account's own limit is on its
    row), on an account's page that account's limit."""

    limit = serializers.IntegerField(help_text="Core API limit per window (requests).")
    window_seconds = serializers.FloatField(source="window", help_text="Rolling window (seconds).")
    safety_margin = serializers.IntegerField(source="margin", help_text="Requests kept unused (requests).")
    cap = serializers.IntegerField(help_text="What the gateway lets through per window (requests).")
    background_cap = serializers.IntegerField(help_text="Of the cap, the most background jobs may use (requests).")
    wait_budget_seconds = serializers.FloatField(
        source="wait_budget", help_text="Longest a caller waits for a slot (seconds)."
    )
    cap_per_minute = serializers.SerializerMethodField(help_text="The cap as requests per minute.")

    def get_cap_per_minute(self, config) -> float:
        return round(config.per_minute, 2)


class AccountRowSerializer(serializers.Serializer):
    """One account's live limiter numbers (`ops.state.AccountLive`)."""

    id = serializers.IntegerField(source="account.id")
    slug = serializers.CharField(source="account.slug")
    name = serializers.CharField(source="account.name")
    limit = serializers.IntegerField(
        source="account.rate_limit",
        help_text="The account's Core API limit per window (requests): its own "
        "from Pelcro's GET /account, one entered by hand, or the default.",
    )
    limit_source = serializers.CharField(
        source="account.rate_limit_source",
        help_text="Where the limit came from: upstream (GET /account), manual or default.",
    )
    limit_read_at = serializers.DateTimeField(
        source="account.upstream_read_at", allow_null=True, help_text="Last successful GET /account (UTC)."
    )
    limit_read_error = serializers.CharField(
        source="account.upstream_read_error", help_text="Why the last GET /account failed (empty if it did not)."
    )
    cap = serializers.IntegerField(
        source="state.cap",
        help_text="What the gateway lets through per window for this account: its limit "
        "minus the safety margin (requests).",
    )
    remaining = serializers.IntegerField(source="state.remaining", help_text="Requests left in the window.")
    in_window = serializers.IntegerField(source="state.in_window", help_text="Requests started in the window.")
    background_in_window = serializers.IntegerField(source="state.background_in_window")
    waiting = serializers.IntegerField(source="state.waiting", help_text="Callers sleeping until a slot frees.")
    blocked_for = serializers.FloatField(help_text="Seconds the Core API told us to wait (Retry-After).")
    next_free_in = serializers.FloatField(help_text="Seconds until the oldest request leaves the window.")
    calls_last_hour = serializers.IntegerField(source="hour.calls", help_text="Requests let through, last 60 min.")
    waits_last_hour = serializers.IntegerField(source="hour.waits")
    rejections_last_hour = serializers.IntegerField(
        source="hour.rejections",
        help_text="Calls the gateway's own limiter refused (never sent upstream), last 60 min.",
    )
    upstream_429s_last_hour = serializers.IntegerField(
        source="hour.upstream_429s", help_text="429 answers from the Core API, last 60 min."
    )
    active_connections = serializers.IntegerField(source="connections")


class OverviewSerializer(serializers.Serializer):
    """GET /ops/api/accounts."""

    generated_at = serializers.DateTimeField(allow_null=True, help_text="Redis time of the numbers (UTC).")
    limit = LimitSerializer(source="config")
    accounts = AccountRowSerializer(many=True)


class MinuteSerializer(serializers.Serializer):
    """One minute of one account (`mcp_bridge.upstream.usage.MinuteUsage`)."""

    minute = serializers.DateTimeField(source="start", help_text="Start of the minute (UTC).")
    calls = serializers.IntegerField(source="usage.calls", help_text="Requests let through (sent upstream).")
    background_calls = serializers.IntegerField(source="usage.background_calls")
    waits = serializers.IntegerField(source="usage.waits", help_text="Calls that waited for a slot.")
    rejections = serializers.IntegerField(source="usage.rejections", help_text="Calls the gateway's limiter refused.")
    upstream_429s = serializers.IntegerField(source="usage.upstream_429s", help_text="429 answers from the Core API.")


class ToolCallSerializer(serializers.ModelSerializer):
    """One audit row. `upstream_status` is null when Pelcro did not answer (the call was
    refused locally, denied, or failed before reaching it). `server` is "core" (the staff's
    tools at `/`) or "open" (a subscriber's tools at `/open`, whose rows name the Pelcro
    `customer_id` acted for)."""

    at = serializers.DateTimeField(source="created_at")
    server = serializers.SerializerMethodField(help_text='"core" (at /) or "open" (a subscriber, at /open).')
    user = serializers.CharField(source="username")
    client = serializers.SerializerMethodField()
    refused_locally = serializers.SerializerMethodField(
        help_text="True when the gateway's own limiter refused the call (nothing was sent upstream)."
    )

    class Meta:
        model = ToolCall
        fields = [
            "at",
            "server",
            "tool",
            "outcome",
            "refused_locally",
            "user",
            "customer_id",
            "client",
            "site_id",
            "upstream_status",
            "latency_ms",
        ]

    def get_server(self, call: ToolCall) -> str:
        return "open" if call.customer_id is not None else "core"

    def get_client(self, call: ToolCall) -> str:
        return call.client_name or call.client_id

    def get_refused_locally(self, call: ToolCall) -> bool:
        return call.outcome == ToolCall.Outcome.RATE_LIMITED and call.upstream_status is None


class ExportSerializer(serializers.ModelSerializer):
    job_id = serializers.CharField(source="id")

    class Meta:
        model = ExportJob
        fields = ["job_id", "kind", "site_id", "status", "rows_done", "rows_total", "created_at"]


class LatencySerializer(serializers.Serializer):
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField()


class AccountDetailSerializer(serializers.Serializer):
    """GET /ops/api/accounts/<id>."""

    generated_at = serializers.DateTimeField()
    limit = LimitSerializer(source="config")
    account = AccountRowSerializer(source="row")
    latency_last_5_min = LatencySerializer(source="latency")
    per_minute = MinuteSerializer(many=True)
    tool_calls = ToolCallSerializer(many=True)
    exports = ExportSerializer(many=True)
