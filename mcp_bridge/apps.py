from django.apps import AppConfig


class McpBridgeConfig(AppConfig):
    name = "mcp_bridge"
    verbose_name = "MCP bridge"

    def ready(self) -> None:
        # Every revoke in `accounts` (which may not import this app) queues the sign-out of
        # the subscriber's Pelcro JWT it leaves behind (`mcp_bridge.open.tasks`).
        from accounts.connections import connections_revoked
        from mcp_bridge.open.tasks import queue_sign_out

        connections_revoked.connect(queue_sign_out, dispatch_uid="mcp_bridge.open.tasks.queue_sign_out")
