"""The audit log in the admin (searchable, filterable, read-only), and the account admin
with the upstream read of `GET /account`."""

from django.contrib import admin, messages

from accounts.admin import AccountAdmin
from accounts.models import Account
from mcp_bridge.core.account_refresh import RefreshOutcome, refresh_account
from mcp_bridge.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "tool",
        "outcome",
        "account_slug",
        "site_id",
        "username",
        "client_name",
        "upstream_status",
        "latency_ms",
    )
    list_filter = ("outcome", "tool", "account_slug")
    search_fields = ("tool", "username", "client_name", "client_id", "account_slug", "error_message")
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False  # counting a large audit table on every page is slow
    fields = (
        "created_at",
        "tool",
        "outcome",
        "error_message",
        "arguments",
        "site_id",
        "upstream_status",
        "latency_ms",
        "username",
        "user",
        "client_name",
        "client_id",
        "account_slug",
        "account",
        "connection",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class UpstreamAccountAdmin(AccountAdmin):
    """The account admin (accounts.admin) plus Pelcro's own view of the account: saving a
    new API key reads `GET /account` with it (rate limit and sites) and says what it found,
    or why it could not (the key is saved either way, and sites can be entered by hand)."""

    actions = ["read_from_pelcro"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.cleaned_data.get("api_key"):
            self._report(request, form.instance, refresh_account(form.instance, background=False))

    @admin.action(description="Read rate limit and sites from Pelcro (GET /account)")
    def read_from_pelcro(self, request, queryset):
        for account in queryset:
            self._report(request, account, refresh_account(account, background=False))

    def _report(self, request, account: Account, outcome: RefreshOutcome) -> None:
        if outcome.ok:
            level = messages.WARNING if outcome.report and outcome.report.has_warnings else messages.SUCCESS
            self.message_user(request, f"{account.name}: {outcome.message}", level)
        else:
            self.message_user(
                request,
                f"{account.name}: could not read GET /account. {outcome.message} The rate limit stays "
                f"{account.rate_limit}/min ({account.get_rate_limit_source_display()}); sites can be entered "
                "by hand below.",
                messages.WARNING,
            )


admin.site.unregister(Account)
admin.site.register(Account, UpstreamAccountAdmin)
