from django.core.management.base import BaseCommand

from accounts.demo import seed_demo


class Command(BaseCommand):
    help = "Create (or refresh) the demo accounts, sites, API keys and users. Safe to run repeatedly."

    def handle(self, *args, **options):
        spec = seed_demo()
        for user in spec["users"]:
            accounts = ", ".join(m["account"] for m in user["memberships"])
            self.stdout.write(f"demo login: {user['username']} / {user['password']}  (accounts: {accounts})")
