from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "pelcro_gateway"
    verbose_name = "Pelcro MCP Gateway"

    def ready(self) -> None:
        from pelcro_gateway import checks  # noqa: F401  (registers the system checks)
