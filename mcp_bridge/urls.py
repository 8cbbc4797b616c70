from django.urls import include, path

from mcp_bridge import views

urlpatterns = [
    # Only browsers reach this: the ASGI router sends MCP traffic at "/" to the MCP app.
    path("", views.landing, name="landing"),
    path("connections/<int:pk>/activity", views.connection_activity, name="connection-activity"),
    path("confirm/<uuid:pk>", views.confirmation_page, name="confirmation"),
    path("", include("mcp_bridge.open.urls")),
]
