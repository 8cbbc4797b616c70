"""The OAuth endpoints, composed from DOT's views (no application-management views).

Namespaced "oauth2_provider" because DOT's metadata and registration views reverse
their URLs by those names.
"""

from django.urls import path
from oauth2_provider import views as dot_views

from accounts.views.consent import ConsentView
from accounts.views.metadata import AuthorizationServerMetadataView, OpenResourceMetadataView
from accounts.views.registration import RegistrationManagementView, RegistrationView
from accounts.views.token_endpoints import IntrospectView, RevokeView, TokenView

app_name = "oauth2_provider"

urlpatterns = [
    path("oauth/authorize", ConsentView.as_view(), name="authorize"),
    path("oauth/token", TokenView.as_view(), name="token"),
    path("oauth/revoke", RevokeView.as_view(), name="revoke-token"),
    path("oauth/introspect", IntrospectView.as_view(), name="introspect"),
    path("oauth/register", RegistrationView.as_view(), name="dcr-register"),
    path("oauth/register/<str:client_id>", RegistrationManagementView.as_view(), name="dcr-register-management"),
    path(
        ".well-known/oauth-authorization-server",
        AuthorizationServerMetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path(
        ".well-known/openid-configuration",
        AuthorizationServerMetadataView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(
        ".well-known/oauth-protected-resource",
        dot_views.OAuthProtectedResourceMetadataView.as_view(),
        name="oauth-resource-metadata",
    ),
    path(
        ".well-known/oauth-protected-resource/open",
        OpenResourceMetadataView.as_view(),
        name="oauth-resource-metadata-open",
    ),
]
