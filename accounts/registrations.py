"""Dynamic client registration (RFC 7591) beyond what DOT does: honest answers and reuse.

Answers: `token_endpoint_auth_method` is the one the client asked for (DOT always says
`client_secret_basic` for a confidential client; both secret methods work at the token,
revocation and introspection endpoints), `client_id_issued_at` is always present, and
`client_secret_expires_at` is 0 (never) whenever a secret is issued (RFC 7591 §3.2.1).

Reuse (issue 13, item 7): many MCP clients register afresh on every start, and many
people share one egress IP. A public client (`token_endpoint_auth_method: none`) whose
metadata is identical to a live self-registered public client's gets that registration
back (same `client_id`, 201) instead of a new one, and it does not count against the
per-IP cap (`DCR_PER_IP_PER_HOUR`, which only new registrations use up). "Identical"
compares every field, with list order ignored and the port of loopback redirect URIs
ignored (they match any port anyway, RFC 8252 §7.3). Public clients hold no secret, so
sharing a `client_id` gives nobody anything they could not have had by registering.
What it must not give is control: a shared registration answers without
`registration_access_token`, and the first reuse deletes the registration's
management tokens (RFC 7592), so no one, not even its first registrant, can change
the redirect URIs of a registration others rely on. Confidential clients are never
shared (each gets its own secret). Registrations that never connect are pruned
(`DCR_UNUSED_PRUNE_HOURS`, accounts.maintenance).
"""

import hashlib
import json
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from oauth2_provider.models import get_access_token_model, get_application_model
from oauth2_provider.settings import oauth2_settings

from accounts.models import ClientRegistration
from accounts.redirect_uris import LOOPBACK_HOSTS

DEFAULT_AUTH_METHOD = "client_secret_basic"  # RFC 7591 §2


def auth_method_of(data: dict) -> str:
    return data.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)


def _portless_loopback(uri):
    if not isinstance(uri, str):
        return uri
    parts = urlsplit(uri)
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return uri


def metadata_digest(data: dict) -> str:
    """SHA-256 of the canonical form of a registration request's metadata."""
    canonical = dict(data)
    canonical["token_endpoint_auth_method"] = auth_method_of(data)
    canonical.setdefault("grant_types", ["authorization_code"])
    canonical.setdefault("response_types", ["code"])
    if isinstance(canonical.get("redirect_uris"), list):
        canonical["redirect_uris"] = [_portless_loopback(uri) for uri in canonical["redirect_uris"]]
    for key, value in canonical.items():
        if isinstance(value, list):
            canonical[key] = sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shared_registration(data: dict):
    """The live public registration identical to `data`, now shared; None if there is none
    (or `data` is not a public client's)."""
    if auth_method_of(data) != "none":
        return None
    Application = get_application_model()
    with transaction.atomic():
        registration = (
            ClientRegistration.objects.select_for_update()
            .select_related("application")
            .filter(
                metadata_digest=metadata_digest(data),
                application__registration_source=Application.RegistrationSource.DCR,
                application__client_type=Application.CLIENT_PUBLIC,
            )
            .order_by("-application__created")
            .first()
        )
        if registration is None:
            return None
        if registration.reused_count == 0:
            get_access_token_model().objects.filter(
                application=registration.application, scope=oauth2_settings.DCR_REGISTRATION_SCOPE
            ).delete()
        registration.reused_count += 1
        registration.save(update_fields=["reused_count"])
    return registration.application


def record(application, data: dict) -> None:
    """Remember a new (or replaced, RFC 7592 PUT) registration's method and digest."""
    method = auth_method_of(data)
    ClientRegistration.objects.update_or_create(
        application=application,
        defaults={
            "token_endpoint_auth_method": method,
            "metadata_digest": metadata_digest(data) if method == "none" else "",
        },
    )


def complete_answer(answer: dict, application) -> dict:
    """Correct DOT's registration answer (see the module docstring)."""
    registration = ClientRegistration.objects.filter(application=application).first()
    if registration is not None:
        answer["token_endpoint_auth_method"] = registration.token_endpoint_auth_method
    answer["client_id_issued_at"] = int(application.created.timestamp())
    if answer.get("client_secret"):
        answer["client_secret_expires_at"] = 0
    return answer


def shared_answer(application) -> dict:
    """The answer to a registration that got an existing, shared registration back."""
    answer = {
        "client_id": application.client_id,
        "redirect_uris": application.redirect_uris.split(),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    if application.name:
        answer["client_name"] = application.name
    return complete_answer(answer, application)
