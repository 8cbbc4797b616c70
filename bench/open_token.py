"""Print an Open server (`/open`) access token for a demo subscriber, made in the run's scratch
database as the subscriber sign-in makes one: the subscriber's gateway record, a connection
holding the Pelcro JWT of a real Open API login at the sandbox, and an access token bound to
`<gateway>/open`. (The benchmark does not drive the subscriber's sign-in pages at
/oauth/authorize, whose HTML forms it would have to follow; the records are the same.)

    python -m bench.open_token <gateway url> <sandbox url> <site id> <email> <password>

Run by `bench.stack.Stack.open_access_token` with the run's environment (DATABASE_URL, ...).
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")


def main(gateway_url: str, sandbox_url: str, site_id: str, email: str, password: str) -> str:
    import django
    import httpx

    django.setup()
    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model, get_application_model

    from accounts.models import Connection, Site, SubscriberCredential, TokenBinding
    from accounts.subscribers import subscriber_for
    from mcp_bridge.open.client import jwt_times

    login = httpx.post(
        f"{sandbox_url}/api/v1/sdk/auth/login",
        params={"site_id": site_id},
        json={"email": email, "password": password},
        timeout=10,
    )
    login.raise_for_status()
    customer = login.json()["data"]
    site = Site.objects.get(site_id=int(site_id))
    subscriber = subscriber_for(site, customer["id"], customer["email"])
    application = get_application_model().objects.create(
        name="pelcro-bench (open)",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(
        user=subscriber.user, application=application, account=site.account, access=Connection.Access.READ
    )
    credential = SubscriberCredential(connection=connection)
    credential.set_jwt(customer["auth_token"], jwt_times(customer["auth_token"])[0])
    credential.save()
    raw = secrets.token_urlsafe(32)
    token = get_access_token_model().objects.create(
        user=subscriber.user,
        application=application,
        token=raw,
        scope="read",
        expires=timezone.now() + timedelta(hours=2),
        resource=[gateway_url + "/open"],
    )
    TokenBinding.objects.create(access_token=token, connection=connection)
    return raw


if __name__ == "__main__":
    print(main(*sys.argv[1:6]))
