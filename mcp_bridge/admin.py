"""The audit log in the admin (searchable, filterable, read-only), the account admin
with the upstream read of `GET /account`, and subscribers' connections (the Open server)
with a revoke that also signs the subscriber's Pelcro sign-in out."""

from django.contrib import admin, messages

from accounts.admin import AccountAdmin, ConnectionAdmin
from accounts.auth_epoch import EpochUnavailable
from accounts.models import Account, Connection
from mcp_bridge.core.account_refresh import RefreshOutcome, refresh_account
from mcp_bridge.models import SubscriberConnection, ToolCall
from mcp_bridge.open.connections import Ended, end_connections


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


def _revoke(model_admin: admin.ModelAdmin, request, queryset) -> None:
    """Revoke the selected connections with their tokens, and sign the subscribers' ones out
    at Pelcro (`mcp_bridge.open.connections.end_connections`); say what happened."""
    try:
        ended = end_connections(queryset, by=f"staff:{request.user.get_username()}")
    except EpochUnavailable as refused:
        model_admin.message_user(request, f"No connection was revoked. {refused.message}", messages.ERROR)
        return
    count = sum(e.revoked for e in ended)
    model_admin.message_user(
        request, f"Revoked {count} connection(s); their tokens stop working now.", messages.SUCCESS
    )
    _report_sign_outs(model_admin, request, ended)


def _report_sign_outs(model_admin: admin.ModelAdmin, request, ended: list[Ended]) -> None:
    signed_out = sum(e.signed_out is True for e in ended)
    failed = [str(e.connection_id) for e in ended if e.signed_out is False]
    if signed_out:
        model_admin.message_user(request, f"Signed {signed_out} subscriber sign-in(s) out at Pelcro.", messages.SUCCESS)
    if failed:
        model_admin.message_user(
            request,
            f"Pelcro could not be reached to sign out connection(s) {', '.join(failed)}: their Pelcro sign-in "
            "is kept, unusable, until the sweep signs it out once Pelcro answers (the gateway log says why).",
            messages.WARNING,
        )


class GatewayConnectionAdmin(ConnectionAdmin):
    """The connection admin (accounts.admin) whose revoke also signs a subscriber's
    connection out at Pelcro, wherever it is revoked from."""

    @admin.action(description="Revoke selected connections (and all their tokens)")
    def revoke(self, request, queryset):
        _revoke(self, request, queryset)


admin.site.unregister(Connection)
admin.site.register(Connection, GatewayConnectionAdmin)


@admin.register(SubscriberConnection)
class SubscriberConnectionAdmin(admin.ModelAdmin):
    """Subscribers' connections: who (site, Pelcro customer), which app, what it may do,
    when it was used, and whether and by whom it was revoked. Read-only; made by the
    subscriber's sign-in and consent, ended by the revoke action (never deleted here, so
    the sign-out at Pelcro always happens)."""

    list_display = [
        "application",
        "site",
        "customer_id",
        "email",
        "access",
        "confirm_writes",
        "created_at",
        "last_used_at",
        "status",
    ]
    list_filter = [
        "access",
        "confirm_writes",
        ("revoked_at", admin.EmptyFieldListFilter),
        ("user__subscriber__site", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["user__subscriber__email", "=user__subscriber__customer_id", "application__name"]
    list_select_related = ["application", "account", "user__subscriber__site"]
    fields = [
        "application",
        "site",
        "customer_id",
        "email",
        "account",
        "access",
        "confirm_writes",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by_words",
        "pelcro_sign_in",
    ]
    readonly_fields = fields
    actions = ["revoke"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(user__subscriber__isnull=False)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="site", ordering="user__subscriber__site__site_id")
    def site(self, connection: SubscriberConnection) -> str:
        site = connection.user.subscriber.site
        return f"{site.name} ({site.site_id})"

    @admin.display(description="customer id", ordering="user__subscriber__customer_id")
    def customer_id(self, connection: SubscriberConnection) -> int:
        return connection.user.subscriber.customer_id

    @admin.display(description="e-mail", ordering="user__subscriber__email")
    def email(self, connection: SubscriberConnection) -> str:
        return connection.user.subscriber.email

    @admin.display(description="status")
    def status(self, connection: SubscriberConnection) -> str:
        if connection.is_active:
            return "active"
        return f"revoked {connection.revoked_at:%Y-%m-%d %H:%M} by {connection.revoked_by_display()}"

    @admin.display(description="revoked by")
    def revoked_by_words(self, connection: SubscriberConnection) -> str:
        return connection.revoked_by_display() if connection.revoked_by else "—"

    @admin.display(description="Pelcro sign-in")
    def pelcro_sign_in(self, connection: SubscriberConnection) -> str:
        credential = getattr(connection, "subscriber_credential", None)
        if credential is None:
            return "none held (signed out, or never stored)"
        return f"held, encrypted; expires {credential.expires_at:%Y-%m-%d %H:%M} UTC"

    @admin.action(description="Revoke selected connections (their tokens, and sign out at Pelcro)")
    def revoke(self, request, queryset):
        _revoke(self, request, queryset)
