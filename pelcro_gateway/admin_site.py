"""The Django admin as the gateway's operators see it: branded, only the models they use,
grouped by what an operator is doing, with a link to the ops dashboard
(templates/admin/base_site.html).

Left out on purpose (unregistered in `ready`): auth Groups (the gateway's only roles are
staff / superuser on the user, and the per-account roles on Membership), and DOT's Grant,
AccessToken, RefreshToken and IDToken (short-lived secrets; operators revoke access
through Connections, which revokes every token at once; OpenID Connect is off, so there
are no ID tokens). DOT's Application stays: it is the list of registered (often
self-registered) clients, where an operator can inspect or delete one.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# Section → (app_label, model name) in display order. Anything registered but not listed
# here (a model added later) still shows, under "Other", so nothing silently disappears.
SECTIONS = [
    (
        "People and Pelcro accounts",
        [("auth", "User"), ("accounts", "Account"), ("accounts", "Membership"), ("accounts", "Site")],
    ),
    ("Connected apps", [("accounts", "Connection"), ("oauth2_provider", "Application")]),
    ("Audit", [("mcp_bridge", "ToolCall")]),
]


class GatewayAdminSite(admin.AdminSite):
    site_header = "Pelcro MCP Gateway · administration"
    site_title = "Pelcro MCP Gateway admin"
    index_title = "Operate the gateway"

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {(app["app_label"], model["object_name"]): (app, model) for app in apps for model in app["models"]}
        grouped = []
        for title, keys in SECTIONS:
            entries = [models.pop(key) for key in keys if key in models]
            if entries:
                grouped.append(
                    {
                        **entries[0][0],
                        "name": title,
                        "app_label": entries[0][0]["app_label"],
                        "models": [model for _, model in entries],
                    }
                )
        if models:
            first = next(iter(models.values()))[0]
            grouped.append({**first, "name": "Other", "models": [model for _, model in models.values()]})
        return grouped


class GatewayAdminConfig(AdminConfig):
    default_site = "pelcro_gateway.admin_site.GatewayAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin.py
        from django.contrib.auth.models import Group
        from oauth2_provider import models as dot

        for model in (
            Group,
            dot.get_grant_model(),
            dot.get_access_token_model(),
            dot.get_refresh_token_model(),
            dot.get_id_token_model(),
        ):
            if admin.site.is_registered(model):
                admin.site.unregister(model)
