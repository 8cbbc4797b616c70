"""Discovery documents: RFC 8414, OpenID discovery, RFC 9728 — one each, one issuer.

DOT builds them from OAUTH2_PROVIDER settings; we only correct what DOT cannot know:
introspection needs a client secret (public clients cannot introspect), and the
authorization server honours `offline_access` (accounts.scopes) besides the resource's
`read`/`write` (which stay the protected-resource document's `scopes_supported`; `write`
implies `read`, accounts.scopes). The OpenID
document is the RFC 8414 document served at the OpenID path, so a client that probes
either finds the same issuer and endpoints; the gateway issues no ID tokens, so it
advertises no OpenID-only features. CORS (open to any origin) is set for every discovery
document in one place, `pelcro_gateway/cors.py`.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from oauth2_provider import views as dot_views
from oauth2_provider.views import OAuthServerMetadataView

from accounts import scopes

SECRET_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class AuthorizationServerMetadataView(OAuthServerMetadataView):
    def get(self, request, *args, **kwargs):
        data = json.loads(super().get(request, *args, **kwargs).content)
        if "introspection_endpoint" in data:
            data["introspection_endpoint_auth_methods_supported"] = SECRET_AUTH_METHODS
        data["scopes_supported"] = scopes.ADVERTISED
        response = JsonResponse(data)
        response["Cache-Control"] = "public, max-age=300"
        return response


class OpenResourceMetadataView(dot_views.OAuthProtectedResourceMetadataView):
    """RFC 9728 metadata of the Open server (`PUBLIC_URL/open`), served at the path form
    `/.well-known/oauth-protected-resource/open` (RFC 9728 §3.1); the same authorization
    server issues its tokens, bound to this resource."""

    def get_resource(self, request):
        return settings.OPEN_RESOURCE_URL

    def get_resource_name(self):
        return "Pelcro MCP Gateway: subscriber (Open) server"
