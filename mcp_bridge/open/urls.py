"""The subscriber pages (mcp_bridge.open.views: sign-in and sign-out;
mcp_bridge.open.connection_views: their connected apps). `/open` itself is the Open MCP server
(the ASGI router sends MCP traffic there before Django sees it)."""

from django.urls import path

from mcp_bridge.open import connection_views, views

urlpatterns = [
    path("open/sign-in", views.sign_in, name="open-sign-in"),
    path("open/sign-out", views.sign_out, name="open-sign-out"),
    path("open/connections", connection_views.connection_list, name="open-connections"),
    path("open/connections/<int:pk>/revoke", connection_views.connection_revoke, name="open-connection-revoke"),
]
