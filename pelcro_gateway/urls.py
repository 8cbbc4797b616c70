"""URL map. The MCP endpoint itself is not here: the ASGI router (asgi.py) sends MCP
traffic at "/" to the MCP app before Django sees it."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic.base import RedirectView

from accounts.views import login
from mcp_bridge.open import views as open_views
from pelcro_gateway import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    # The admin's password forms, through the one sign-in path (accounts.sign_in).
    path("admin/login/", login.admin_login),
    path("admin/password_change/", login.admin_password_change),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico before reading the page's <link rel="icon">.
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "favicon.svg", permanent=True)),
    # Ahead of accounts' own route of the same path (whose name DOT reverses): requests for
    # the Open server's resource get the subscriber's sign-in, all others the operators'
    # consent (mcp_bridge.open.views.authorize).
    path("oauth/authorize", open_views.authorize),
    path("", include("accounts.urls")),
    path("", include("mcp_bridge.urls")),
    path("", include("ops.urls")),
]

handler500 = "pelcro_gateway.errors.server_error"
handler403 = "pelcro_gateway.errors.permission_denied"
handler404 = "pelcro_gateway.errors.page_not_found"
