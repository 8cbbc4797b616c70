"""The oauthlib server behind DOT's views: authorization code + refresh token, nothing else.

- PKCE: S256 only. oauthlib would accept "plain" (and treat a missing method as
  "plain"); here both are refused at the authorization endpoint.
- RFC 8707: every authorization request's `resource` must be this server's MCP URL
  (checked before the consent screen, and again when the form is submitted).
"""

from urllib.parse import parse_qsl

from oauthlib.oauth2 import WebApplicationServer
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from accounts.resource import canonical_resources


def requested_resources(request) -> list[str]:
    """All `resource` values of an oauthlib request (repeatable per RFC 8707)."""
    value = getattr(request, "resource", None)
    if isinstance(value, list):
        return value
    from_query = [v for k, v in parse_qsl(request.uri_query or "", keep_blank_values=True) if k == "resource"]
    if from_query:
        return from_query
    return value.split() if isinstance(value, str) and value.strip() else []


def check_resource_indicator(request) -> dict:
    """oauthlib pre-auth validator: refuse any resource other than the MCP URL."""
    try:
        canonical_resources(requested_resources(request))
    except ValueError as exc:
        raise CustomOAuth2Error(error="invalid_target", description=str(exc), request=request) from None
    return {}


class GatewayServer(WebApplicationServer):
    """oauthlib's web-application server (code + refresh grants), tightened as above."""

    def __init__(
        self,
        request_validator,
        token_expires_in=None,
        token_generator=None,
        refresh_token_generator=None,
        **_device_flow_kwargs,
    ):
        # DOT passes device-flow settings too; this server has no device flow.
        super().__init__(
            request_validator,
            token_generator=token_generator,
            token_expires_in=token_expires_in,
            refresh_token_generator=refresh_token_generator,
        )
        self.auth_grant._code_challenge_methods = {"S256": code_challenge_method_s256}
        self.auth_grant.custom_validators.pre_auth.append(check_resource_indicator)
