"""`manage.py contract_check`: check the Core API client against a Core API (see
`mcp_bridge.core.contract_check`); `make contract-check` runs it."""

import asyncio
import os

from django.core.management.base import BaseCommand, CommandError

from mcp_bridge.core.contract_check import ENV_WRITES, Target, format_table, run_contract_check


class Command(BaseCommand):
    help = (
        "Send the gateway's Core API requests to CONTRACT_CHECK_BASE_URL with CONTRACT_CHECK_API_KEY and "
        "CONTRACT_CHECK_SITE_ID, and check every answer against the contract (CORE_API.md). Read-only "
        f"unless --writes or {ENV_WRITES}=1."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--writes",
            action="store_true",
            help="also create, change and delete objects on the target (use a staging account)",
        )

    def handle(self, *args, **options):
        try:
            target = Target.from_env()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        writes = options["writes"] or os.environ.get(ENV_WRITES, "") in ("1", "true", "yes")
        self.stdout.write(
            f"Core API {target.base_url}, site {target.site_id}, {'reads and writes' if writes else 'read-only'}\n\n"
        )
        rows = asyncio.run(run_contract_check(target, writes=writes))
        self.stdout.write(format_table(rows))
        if not all(row.passed for row in rows):
            raise CommandError("the Core API answered outside the contract (rows above)")
