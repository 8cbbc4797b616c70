"""The subscriber pages (mcp_bridge.open.views). `/open` itself is the Open MCP server
(the ASGI router sends MCP traffic there before Django sees it)."""

from django.urls import path

from mcp_bridge.open import views

urlpatterns = [
    path("open/sign-in", views.sign_in, name="open-sign-in"),
    path("open/sign-out", views.sign_out, name="open-sign-out"),
]
