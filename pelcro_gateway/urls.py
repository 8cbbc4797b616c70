"""URL map. The MCP endpoint itself is not here: the ASGI router (asgi.py) sends MCP
traffic at "/" to the MCP app before Django sees it."""

from django.contrib import admin
from django.urls import include, path

from pelcro_gateway import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("health/ready", health.ready, name="health-ready"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("mcp_bridge.urls")),
    path("", include("ops.urls")),
]

handler500 = "pelcro_gateway.errors.server_error"
