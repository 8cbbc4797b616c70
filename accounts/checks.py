"""System checks for the OAuth provider's configuration."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def check_oauth_safety(app_configs=None, **kwargs):
    errors = []
    if settings.CIMD_DEV_LOOPBACK_CA_FILE and not settings.IS_DEV:
        errors.append(
            Error(
                "CIMD_DEV_LOOPBACK_CA_FILE lets client metadata be fetched from loopback; "
                "it is for dev and tests only.",
                hint="Unset CIMD_DEV_LOOPBACK_CA_FILE.",
                id="accounts.E001",
            )
        )
    bad = [
        s
        for s in settings.OAUTH_NATIVE_REDIRECT_SCHEMES
        if s.lower() in {"http", "https", "javascript", "data", "file"}
    ]
    if bad:
        errors.append(Error(f"OAUTH_NATIVE_REDIRECT_SCHEMES may not contain {', '.join(bad)}.", id="accounts.E002"))
    return errors
