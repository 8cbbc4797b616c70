from django.conf import settings


def deployment(request):
    """Values every template may show: the public URL and which environment this is."""
    return {
        "PUBLIC_URL": settings.PUBLIC_URL,
        "MCP_URL": settings.MCP_RESOURCE_URL,
        "GATEWAY_ENV": settings.GATEWAY_ENV,
        "GATEWAY_VERSION": settings.VERSION,
    }
