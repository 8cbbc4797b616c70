"""Load the demo accounts, sites, keys and users from demo/accounts.json (idempotent).

The sandbox generates its Core API data for the same accounts from the same file, so
the gateway's demo data always matches the upstream's.
"""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Account, Membership, Site

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "accounts.json"


def load_demo_spec(path: Path = DEMO_FILE) -> dict:
    return json.loads(path.read_text())


@transaction.atomic
def seed_demo(spec: dict | None = None) -> dict:
    """Create or update every demo record; returns the spec used."""
    spec = spec or load_demo_spec()
    User = get_user_model()
    accounts = {}
    for item in spec["accounts"]:
        account, _ = Account.objects.get_or_create(slug=item["slug"], defaults={"name": item["name"]})
        account.name = item["name"]
        try:
            current_key = account.get_api_key() if account.has_api_key else None
        except ValueError:  # encrypted with a key no longer configured: replace it
            current_key = None
        if current_key != item["api_key"]:
            account.set_api_key(item["api_key"])
        account.save()
        for site in item["sites"]:
            # Every demo site lets its demo subscribers (spec["subscribers"]) sign in at /open.
            Site.objects.update_or_create(
                site_id=site["site_id"],
                defaults={"account": account, "name": site["name"], "subscriber_access_enabled": True},
            )
        accounts[account.slug] = account
    for item in spec["users"]:
        user, created = User.objects.get_or_create(username=item["username"], defaults={"email": item["email"]})
        if created or not user.check_password(item["password"]):
            user.set_password(item["password"])
        user.email = item["email"]
        user.is_staff = user.is_superuser = bool(item.get("staff"))
        user.save()
        for membership in item["memberships"]:
            Membership.objects.update_or_create(
                user=user, account=accounts[membership["account"]], defaults={"role": membership["role"]}
            )
    return spec
