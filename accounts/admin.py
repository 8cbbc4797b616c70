"""Admin pages: accounts (API key write-only), sites, members, connections (bulk revoke),
and members on the user page. DOT registers its own OAuth models."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts import subscribers
from accounts.auth_epoch import EpochUnavailable
from accounts.connections import revoke_connections
from accounts.forms import AdminLoginForm
from accounts.models import Account, Connection, Membership, Site, Subscriber, SubscriberCredential
from accounts.upstream_account import set_manual_limit


class AccountForm(forms.ModelForm):
    api_key = forms.CharField(
        label="Core API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: stored encrypted and never shown. Leave blank to keep the current key.",
    )

    class Meta:
        model = Account
        fields = ["name", "slug", "api_core_rate_limit"]

    def save(self, commit=True):
        account = super().save(commit=False)
        if self.cleaned_data.get("api_key"):
            account.set_api_key(self.cleaned_data["api_key"])
        if "api_core_rate_limit" in self.changed_data:
            set_manual_limit(account, self.cleaned_data.get("api_core_rate_limit"))
        if commit:
            account.save()
        return account


class SiteInline(admin.TabularInline):
    """Sites read from GET /account (source upstream), or entered by hand (manual) when the
    account's key cannot read /account."""

    model = Site
    extra = 0
    fields = ["site_id", "name", "url", "source", "subscriber_access_enabled"]
    readonly_fields = ["source"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ["name", "slug", "api_key_hint", "api_key_set_at", "limit", "upstream_read_at", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = [
        "api_key_hint",
        "api_key_set_at",
        "rate_limit_source",
        "upstream_read_at",
        "upstream_read_error",
        "created_at",
    ]
    fields = [
        "name",
        "slug",
        "api_key",
        "api_key_hint",
        "api_key_set_at",
        "api_core_rate_limit",
        "rate_limit_source",
        "upstream_read_at",
        "upstream_read_error",
        "created_at",
    ]
    inlines = [SiteInline, MembershipInline]

    @admin.display(description="API key")
    def api_key_hint(self, account: Account) -> str:
        return f"•••• {account.api_key_last4}" if account.has_api_key else "not set"

    @admin.display(description="rate limit / min")
    def limit(self, account: Account) -> str:
        return f"{account.rate_limit} ({account.get_rate_limit_source_display()})"


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["site_id", "name", "account", "source", "subscriber_access_enabled"]
    list_filter = ["account", "subscriber_access_enabled"]
    search_fields = ["name", "=site_id", "account__name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_filter = ["role", "account"]
    search_fields = ["user__username", "user__email", "account__name"]
    autocomplete_fields = ["user", "account"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["application", "user", "account", "access", "created_at", "last_used_at", "status"]
    list_filter = ["access", "account", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "user__email", "account__name", "application__name", "application__client_id"]
    list_select_related = ["application", "user", "account"]
    readonly_fields = [
        "user",
        "application",
        "account",
        "access",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # connections come from consent only

    def has_delete_permission(self, request, obj=None):
        # One holding a subscriber's Pelcro JWT is revoked instead (which signs the JWT out at
        # Pelcro): deleted, the JWT would go unsigned-out, valid there until it expires.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not SubscriberCredential.objects.filter(connection=obj).exists())

    @admin.display(description="status")
    def status(self, connection: Connection) -> str:
        return "active" if connection.is_active else f"revoked {connection.revoked_at:%Y-%m-%d %H:%M}"

    @admin.action(description="Revoke selected connections (and all their tokens)")
    def revoke(self, request, queryset):
        try:
            count = revoke_connections(queryset, by=f"staff:{request.user.get_username()}")
        except EpochUnavailable as refused:
            self.message_user(request, f"No connection was revoked. {refused.message}", messages.ERROR)
            return
        self.message_user(request, f"Revoked {count} connection(s); their tokens stop working now.", messages.SUCCESS)


# The admin signs in through the one sign-in path and its lock-out (accounts/sign_in.py).
admin.site.login_form = AdminLoginForm

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class GatewayUserAdmin(UserAdmin):
    """Django's user admin (staff flags, passwords) with the user's account memberships."""

    inlines = [MembershipInline]
    list_display = ["username", "email", "is_staff", "is_active", "last_login"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    """Subscribers are made by their own sign-in (`accounts.subscribers`), never by hand. One
    is deleted here (or with their user record or their site) only once nothing of theirs is
    live (`subscribers.has_live_access`): deleting one with an active connection left that
    connection, its tokens and their Pelcro JWT live. End a subscriber's access first:
    revoke their connections (Subscriber connections, which also signs them out at Pelcro)
    or turn off the site's subscriber access. Their next sign-in takes up the user record a
    deleted subscriber leaves."""

    list_display = ["email", "customer_id", "site", "created_at"]
    list_filter = ["site"]
    search_fields = ["email", "=customer_id"]
    readonly_fields = ["user", "site", "customer_id", "email", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not subscribers.has_live_access(obj))
