"""The audit log in the admin: searchable, filterable, and read-only."""

from django.contrib import admin

from mcp_bridge.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = (
        "created_at", "tool", "outcome", "account_slug", "site_id", "username", "client_name",
        "upstream_status", "latency_ms",
    )
    list_filter = ("outcome", "tool", "account_slug")
    search_fields = ("tool", "username", "client_name", "client_id", "account_slug", "error_message")
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False  # counting a large audit table on every page is slow
    fields = (
        "created_at", "tool", "outcome", "error_message", "arguments", "site_id", "upstream_status", "latency_ms",
        "username", "user", "client_name", "client_id", "account_slug", "account", "connection",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
