from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "pelcro_gateway"
    verbose_name = "Pelcro MCP Gateway"

    def ready(self) -> None:
        from pelcro_gateway import checks  # noqa: F401  (registers the system checks)
        from pelcro_gateway import logging as gateway_logging

        gateway_logging.install()  # every log record of this process is redacted when made
