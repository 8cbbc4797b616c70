from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.demo import seed_demo


class Command(BaseCommand):
    help = (
        "Create (or refresh) the demo accounts, sites, API keys and users (passwords published in "
        "demo/accounts.json). Safe to run repeatedly. Refused outside GATEWAY_ENV=dev unless "
        "--allow-outside-dev is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--allow-outside-dev",
            action="store_true",
            help="seed even though GATEWAY_ENV is not dev (e.g. a throw-away staging box)",
        )

    def handle(self, *args, **options):
        if settings.GATEWAY_ENV != "dev" and not options["allow_outside_dev"]:
            raise CommandError(
                f"GATEWAY_ENV is {settings.GATEWAY_ENV!r}: demo users have published passwords, so seed_demo "
                "runs only in dev. Create real users with `manage.py createsuperuser` and the admin, or pass "
                "--allow-outside-dev on a throw-away instance."
            )
        spec = seed_demo()
        for user in spec["users"]:
            accounts = ", ".join(m["account"] for m in user["memberships"])
            self.stdout.write(f"demo login: {user['username']} / {user['password']}  (accounts: {accounts})")
