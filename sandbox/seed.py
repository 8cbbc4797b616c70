"""Deterministic demo data for every account and site of demo/accounts.json.

The same seed gives the same ids, names, states and amounts; dates are laid out
backwards from the start of the current UTC day, so "active" stays active. Each site
gets organizations, plans (one archived, one agency-managed), coupons (one restricted to a
plan, one expired, one used up), hundreds of customers with payment sources and addresses,
subscriptions in every state (with `latest_invoice`, some gift-recipient, some canceled
"now", i.e. forcefully), invoices in every state (open, past_due, partly paid, advance),
the charges that paid them (offline ones with hidden `pelcro*` metadata), customers with a
credit balance, and refunds in each status (one `to_issue` without a creation date, which
a cancellation does not touch). Every timestamp is Unix seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sandbox import clock
from sandbox.passwords import hash_password
from sandbox.records import (
    new_address,
    new_charge,
    new_coupon,
    new_customer,
    new_invoice,
    new_organization,
    new_plan,
    new_refund,
    new_source,
    new_subscription,
)
from sandbox.store import Account, OpenSettings, Site, Store

CURRENCIES = ("usd", "gbp", "eur", "cad", "aud")

FIRST_NAMES = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Ava",
    "Elijah",
    "Sophia",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "James",
    "Harper",
    "Benjamin",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Emily",
    "Sebastian",
    "Ella",
    "Jack",
    "Elizabeth",
    "Daniel",
    "Sofia",
    "Michael",
    "Avery",
    "Owen",
    "Scarlett",
    "Samuel",
    "Grace",
    "Matthew",
    "Chloe",
    "Joseph",
    "Victoria",
    "Levi",
    "Riley",
    "David",
    "Aria",
    "John",
    "Lily",
    "Wyatt",
    "Aurora",
    "Carter",
    "Zoey",
    "Julian",
    "Nora",
    "Luke",
    "Hannah",
    "Grayson",
    "Layla",
    "Isaac",
    "Zoe",
    "Gabriel",
    "Leah",
    "Anthony",
    "Priya",
    "Mateo",
    "Aisha",
    "Hiroshi",
    "Fatima",
    "Lars",
    "Ingrid",
    "Diego",
    "Lucia",
    "Kwame",
    "Amara",
    "Tomasz",
    "Katarzyna",
    "Ravi",
    "Ananya",
    "Sean",
    "Siobhan",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Okafor",
    "Tanaka",
    "Kowalski",
    "Johansson",
    "Rossi",
    "Dubois",
    "Murphy",
    "O'Brien",
    "Patel",
    "Sharma",
    "Mensah",
    "Novak",
    "Fischer",
    "Larsen",
    "Costa",
    "Silva",
    "Kim",
    "Chen",
    "Wang",
    "Singh",
    "Khan",
    "Ali",
    "Cohen",
    "Schmidt",
]
EMAIL_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "proton.me",
    "hotmail.com",
    "fastmail.com",
    "aol.com",
)
ORGANISATIONS = (
    "Public Library",
    "High School",
    "University Library",
    "Dental Practice",
    "Law Firm",
    "Coffee House",
    "Hotel",
)
SOURCES = ("web", "import", "app", "call_center", "partner")
LINE_ITEMS = (
    ("Back issue", 450),
    ("Gift subscription (3 months)", 2997),
    ("Print archive access", 1500),
    ("Home delivery fee", 600),
    ("Reader event ticket", 2500),
    ("Special edition", 1200),
    ("Replacement copy", 350),
)
PLANS = (
    # nickname, amount (cents), interval, interval_count, active, auto_renew
    ("Digital Monthly", 999, "month", 1, True, True),
    ("Digital Annual", 9900, "year", 1, True, True),
    ("Print + Digital Monthly", 2499, "month", 1, True, True),
    ("Weekend Print Quarterly", 3900, "month", 3, True, True),
    ("Student Digital Monthly", 499, "month", 1, True, True),
    ("Weekly Pass", 299, "week", 1, True, True),
    ("Day Pass", 199, "day", 1, True, False),
    ("Legacy Print Monthly", 1999, "month", 1, False, True),
    ("Agency Print Annual", 14900, "year", 1, True, True),
)
AGENCY_PLAN = "Agency Print Annual"
CARD_BRANDS = ("visa", "mastercard", "amex", "discover")
CITIES = (
    # country, state, city, postal code
    ("US", "NY", "New York", "10001"),
    ("US", "CA", "Oakland", "94607"),
    ("CA", "ON", "Toronto", "M5V 2T6"),
    ("GB", None, "London", "EC1A 1BB"),
    ("AU", "NSW", "Sydney", "2000"),
    ("DE", None, "Berlin", "10115"),
)
STREETS = ("Main St", "High Street", "Maple Ave", "King St W", "George St", "Unter den Linden")
SUBSCRIPTION_MIX = (("active", 50), ("canceled", 22), ("past_due", 10), ("trialing", 10), ("incomplete", 8))
MANUAL_INVOICE_MIX = (("draft", 30), ("open", 30), ("paid", 25), ("void", 15))
DECLINES = ("Your card was declined.", "Your card has insufficient funds.", "Your card has expired.")
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent", None)


def discounted(amount: int, coupon: dict | None) -> int:
    """`amount` after the coupon's percent or fixed discount, never below zero."""
    if coupon is None:
        return amount
    if coupon["percent_off"] is not None:
        return amount - round(amount * coupon["percent_off"] / 100)
    return max(0, amount - coupon["amount_off"])


def load_accounts(seed_file: Path) -> list[Account]:
    """The accounts, keys, limits and sites of demo/accounts.json (the gateway's demo data uses
    the same file; it reads only slug, name, api_key and sites' site_id/name).

    Per account: `api_core_rate_limit` (default 120, CORE_API.md §2), `account_id`, `country`,
    `default_currency`, `is_enterprise`, `taxes_enabled`, `payment_gateway` (`tap` turns on the
    TAP customer rules). Per site: `currency` (default: the account's), `url`, `open` (the
    site's Open API settings, `OpenSettings` field names; unknown names are refused).
    """
    spec = json.loads(Path(seed_file).read_text())
    accounts = []
    for index, item in enumerate(spec["accounts"]):
        default_currency = item.get("default_currency", CURRENCIES[index % len(CURRENCIES)])
        sites = {}
        for site in item["sites"]:
            site_id = int(site["site_id"])
            slug = "".join(ch if ch.isalnum() else "-" for ch in site["name"].lower())
            sites[site_id] = Site(
                id=site_id,
                name=site["name"],
                currency=site.get("currency", default_currency),
                url=site.get("url", f"https://{slug}.example.com"),
                slug=slug,
                country_code=item.get("country", "US"),
                open=open_settings(site.get("open", {})),
            )
        accounts.append(
            Account(
                id=int(item.get("account_id", index + 1)),
                slug=item["slug"],
                name=item["name"],
                api_key=item["api_key"],
                api_core_rate_limit=int(item.get("api_core_rate_limit", 120)),
                country=item.get("country", "US"),
                default_currency=default_currency,
                is_enterprise=bool(item.get("is_enterprise", False)),
                taxes_enabled=bool(item.get("taxes_enabled", False)),
                payment_gateway=item.get("payment_gateway", "stripe"),
                sites=sites,
            )
        )
    return accounts


def open_settings(raw: dict) -> OpenSettings:
    """A site's `open` block of demo/accounts.json as OpenSettings (ValueError on unknown names)."""
    unknown = set(raw) - set(OpenSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown Open settings {sorted(unknown)}")
    return OpenSettings(**raw)


def build_store(seed_file: Path, seed: int, customers_per_site: int) -> Store:
    """A fresh store with every account's demo data, then the demo subscribers."""
    accounts = load_accounts(seed_file)
    store = Store(accounts)
    anchor = datetime.combine(clock.now().date(), time(), tzinfo=UTC)
    rng = random.Random(seed)
    seeders = {}
    for account in accounts:
        for site in account.sites.values():
            seeders[site.id] = _SiteSeeder(store, rng, site.id, site.currency, anchor)
            seeders[site.id].run(customers_per_site)
    for subscriber in json.loads(Path(seed_file).read_text()).get("subscribers", []):
        seeders[int(subscriber["site_id"])].subscriber(subscriber)
    return store


def _u(moment: datetime) -> int:
    return clock.unix(moment)


class _SiteSeeder:
    def __init__(self, store: Store, rng: random.Random, site_id: int, currency: str, anchor: datetime):
        self.store, self.rng, self.site_id, self.currency, self.anchor = store, rng, site_id, currency, anchor

    def run(self, customers: int) -> None:
        self.organizations = self._organizations()
        self.plans = self._plans()
        self.coupons = self._coupons()
        self.refundable: list[dict] = []
        for customer in self._customers(customers):
            self._customer_history(customer)
        self._refunds()

    def subscriber(self, spec: dict) -> dict:
        """A demo subscriber of demo/accounts.json `subscribers`: a customer with a password
        (demo-only, published), a saved default card, a default shipping address, an active
        Digital Monthly subscription paid by that card, and an open manual invoice."""
        a = self.anchor
        created = a - timedelta(days=40)
        customer = self.store.add(
            "customers",
            new_customer(
                self.store.next_id(),
                self.site_id,
                _u(created),
                email=spec["email"].lower(),
                first_name=spec.get("first_name"),
                last_name=spec.get("last_name"),
                display_name=" ".join(p for p in (spec.get("first_name"), spec.get("last_name")) if p) or None,
                has_password=True,
            ),
        )
        salt = hashlib.sha256(spec["email"].lower().encode()).digest()[:16]  # deterministic demo data
        customer["_password_hash"] = hash_password(spec["password"], salt)
        customer["email_confirm"] = True
        source = self.store.add(
            "sources",
            new_source(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                _u(created),
                brand="visa",
                last4="4242",
                exp_month=12,
                exp_year=a.year + 3,
                gateway_id=f"pm_demo_{customer['id']}",
            ),
        )
        customer["default_source_id"] = source["id"]
        country = self.store.account_of(self.site_id).sites[self.site_id].country_code
        _, state, city, postal = next((c for c in CITIES if c[0] == country), CITIES[0])
        address = self.store.add(
            "addresses",
            new_address(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                _u(created),
                type="shipping",
                is_default=True,
                line1="1 Demo Street",
                country=country,
                state=state,
                city=city,
                postal_code=postal,
                first_name=customer["first_name"],
                last_name=customer["last_name"],
            ),
        )
        plan = next(p for p in self.plans if p["nickname"] == "Digital Monthly")
        start = a - timedelta(days=10)
        end = clock.add_interval(start, plan["interval"], plan["interval_count"])
        subscription = self.store.add(
            "subscriptions",
            new_subscription(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                plan,
                _u(start),
                status="active",
                period_start=_u(start),
                period_end=_u(end),
                address_id=address["id"],
                source_id=source["id"],
            ),
        )
        invoice = self._invoice(
            customer,
            [{"description": f"{plan['nickname']} × 1", "unit_price": plan["amount"], "quantity": 1}],
            start,
            "open",
            subscription_id=subscription["id"],
            billing_reason="subscription_create",
            period_start=_u(start),
            period_end=_u(end),
        )
        self._pay(invoice, start, invoice["amount_due"])
        subscription["latest_invoice"] = invoice["id"]
        self._invoice(
            customer,
            [{"description": "Print archive access", "unit_price": 1500, "quantity": 1}],
            a - timedelta(days=2),
            "open",
            billing="send_invoice",
        )
        if spec.get("membership"):
            self._membership(customer, source, address)
        return customer

    def _membership(self, customer: dict, source: dict, address: dict) -> None:
        """A group (membership) subscription the subscriber owns: 5 seats, one invited member."""
        a = self.anchor
        plan_id = self.store.next_id()
        plan = self.store.add(
            "plans",
            new_plan(
                plan_id,
                self.site_id,
                self.plans[0]["product_id"],
                _u(a - timedelta(days=400)),
                nickname="Group Digital Annual (5 seats)",
                amount=29900,
                currency=self.currency,
                interval="year",
                old_provider_id=f"plan_{plan_id}",
            ),
        )
        plan.update(type="membership", _seats=5)
        start = a - timedelta(days=30)
        end = clock.add_interval(start, "year")
        subscription = self.store.add(
            "subscriptions",
            new_subscription(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                plan,
                _u(start),
                status="active",
                period_start=_u(start),
                period_end=_u(end),
                address_id=address["id"],
                source_id=source["id"],
            ),
        )
        invoice = self._invoice(
            customer,
            [{"description": f"{plan['nickname']} × 1", "unit_price": plan["amount"], "quantity": 1}],
            start,
            "open",
            subscription_id=subscription["id"],
            billing_reason="subscription_create",
            period_start=_u(start),
            period_end=_u(end),
        )
        self._pay(invoice, start, invoice["amount_due"])
        subscription["latest_invoice"] = invoice["id"]
        subscription["_members"] = [
            {
                "id": self.store.next_id(),
                "invitation_email": f"colleague@{customer['email'].split('@')[1]}",
                "created_at": _u(start),
            }
        ]

    def _between(self, start: datetime, end: datetime) -> datetime:
        """A random second in [start, end] (end if the range is empty)."""
        span = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randint(0, span)) if span > 0 else end

    def _organizations(self) -> list[dict]:
        at = _u(self.anchor - timedelta(days=4 * 365))
        return [
            self.store.add("organizations", new_organization(self.store.next_id(), self.site_id, at, name))
            for name in ("Springfield Public Library", "Northside High School", "Harbor Law Group")
        ]

    def _plans(self) -> list[dict]:
        digital, print_ = self.store.next_id(), self.store.next_id()
        created = self.anchor - timedelta(days=4 * 365)
        plans = []
        for nickname, amount, interval, count, active, auto_renew in PLANS:
            product = print_ if "Print" in nickname else digital
            plan_id = self.store.next_id()
            plans.append(
                self.store.add(
                    "plans",
                    new_plan(
                        plan_id,
                        self.site_id,
                        product,
                        _u(created),
                        nickname=nickname,
                        amount=amount,
                        currency=self.currency,
                        interval=interval,
                        interval_count=count,
                        active=active,
                        auto_renew=auto_renew,
                        trial_period_days=14 if nickname.startswith("Digital") else None,
                        agency_id=7001 if nickname == AGENCY_PLAN else None,
                        old_provider_id=f"plan_{plan_id}",
                    ),
                )
            )
            created += timedelta(days=self.rng.randint(20, 90))
        return plans

    def _coupons(self) -> list[dict]:
        a = self.anchor
        annual = next(p["id"] for p in self.plans if p["nickname"] == "Digital Annual")
        specs = (
            dict(name="Welcome 10%", code="WELCOME10", percent_off=10),
            dict(name="Loyal reader 20%", code="LOYAL20", percent_off=20, duration="forever"),
            dict(name="Five off", code="SAVE5", amount_off=500, currency=self.currency),
            dict(name="Students half price", code="STUDENT50", percent_off=50, duration="forever", max_redemptions=500),
            dict(
                name="Holiday 15%",
                code="HOLIDAY15",
                percent_off=15,
                redeem_by=clock.end_of_day((a + timedelta(days=60)).date()),
            ),
            dict(name="Annual 30% (annual plan only)", code="ANNUAL30", percent_off=30, plans=[annual]),
            dict(
                name="Spring 25% (expired)",
                code="SPRING25",
                percent_off=25,
                redeem_by=clock.end_of_day((a - timedelta(days=200)).date()),
            ),
            dict(name="Free first month", code="FREEMONTH", percent_off=100, max_redemptions=40, times_redeemed=40),
        )
        created = a - timedelta(days=3 * 365)
        coupons = []
        for spec in specs:
            coupons.append(
                self.store.add("coupons", new_coupon(self.store.next_id(), self.site_id, _u(created), **spec))
            )
            created += timedelta(days=self.rng.randint(30, 120))
        return coupons

    def _customers(self, count: int) -> list[dict]:
        rng = self.rng
        start = self.anchor - timedelta(days=3 * 365)
        moments = sorted(self._between(start, self.anchor - timedelta(hours=1)) for _ in range(count))
        taken: set[str] = set()
        customers = []
        for moment in moments:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            fields: dict = {"first_name": first, "last_name": last}
            if rng.random() < 0.03:  # an organisation with no email on file
                fields = {"display_name": f"{last} {rng.choice(ORGANISATIONS)}"[:100]}
            else:
                fields["email"] = self._email(first, last, taken)
                fields["display_name"] = f"{first} {last}"
            if rng.random() < 0.6:
                fields["phone"] = f"1{rng.randint(201, 989)}555{rng.randint(0, 9999):04d}"
            if rng.random() < 0.4:
                fields["metadata"] = {"source": rng.choice(SOURCES), "crm_id": f"C-{rng.randint(10000, 99999)}"}
            if rng.random() < 0.1:
                fields["old_provider_id"] = f"cus_legacy_{rng.randint(100000, 999999)}"
            if rng.random() < 0.05:
                fields["organization"] = rng.choice(self.organizations)["id"]
            fields["mail_marketing"] = rng.random() < 0.55
            fields["tele_marketing"] = rng.random() < 0.15
            fields["has_password"] = rng.random() < 0.7
            customer = self.store.add(
                "customers", new_customer(self.store.next_id(), self.site_id, _u(moment), **fields)
            )
            if rng.random() < 0.03:
                customer["deleted_at"] = customer["updated_at"] = _u(self._between(moment, self.anchor))
            customers.append(customer)
        return customers

    def _email(self, first: str, last: str, taken: set[str]) -> str:
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        if self.rng.random() < 0.3:
            local = f"{first[0]}{last}".lower().replace("'", "")
        email = f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"
        number = 2
        while email in taken:
            email = f"{local}{number}@{email.split('@')[1]}"
            number += 1
        taken.add(email)
        return email

    # --- one customer's sources, addresses, subscriptions, invoices and charges ----------------

    def _customer_history(self, customer: dict) -> None:
        rng = self.rng
        created = datetime.fromtimestamp(customer["created_at"], UTC)
        deleted = customer["deleted_at"] is not None
        source = self._source(customer, created) if rng.random() < 0.85 else None
        address = self._address(customer, created) if rng.random() < 0.6 else None
        if deleted:
            for obj in (source, address):
                if obj is not None:
                    obj["deleted_at"] = customer["deleted_at"]
            if rng.random() < 0.7:
                subscription = self._subscription(customer, created, "canceled", source, address)
                subscription["deleted_at"] = customer["deleted_at"]
            return
        subscriptions = 0 if rng.random() < 0.2 else (2 if rng.random() < 0.12 else 1)
        for _ in range(subscriptions):
            self._subscription(customer, created, _weighted(rng, SUBSCRIPTION_MIX), source, address)
        if rng.random() < 0.12:
            self._manual_invoice(customer, created, _weighted(rng, MANUAL_INVOICE_MIX))
        if rng.random() < 0.05:
            self._balance_credit(customer, created)

    def _source(self, customer: dict, created: datetime) -> dict:
        rng = self.rng
        source_id = self.store.next_id()
        source = self.store.add(
            "sources",
            new_source(
                source_id,
                self.site_id,
                customer["id"],
                _u(created),
                brand=rng.choice(CARD_BRANDS),
                last4=f"{rng.randint(0, 9999):04d}",
                exp_month=rng.randint(1, 12),
                exp_year=self.anchor.year + rng.randint(0, 5),
                old_provider_id=f"src_{source_id}",
            ),
        )
        customer["default_source_id"] = source["id"]
        return source

    def _address(self, customer: dict, created: datetime) -> dict:
        rng = self.rng
        country, state, city, postal = rng.choice(CITIES)
        fields = dict(
            type="shipping",
            is_default=True,
            line1=f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            country=country,
            state=state,
            city=city,
            postal_code=postal,
            first_name=customer["first_name"],
            last_name=customer["last_name"],
        )
        address = self.store.add(
            "addresses", new_address(self.store.next_id(), self.site_id, customer["id"], _u(created), **fields)
        )
        if rng.random() < 0.3:
            fields.update(type="billing", line2="Suite 200")
            self.store.add(
                "addresses", new_address(self.store.next_id(), self.site_id, customer["id"], _u(created), **fields)
            )
        return address

    def _subscription(
        self, customer: dict, created: datetime, status: str, source: dict | None, address: dict | None
    ) -> dict:
        rng, a = self.rng, self.anchor
        active_plans = [p for p in self.plans if p["active"] == "active"]
        plan = rng.choice(self.plans if status == "canceled" else active_plans)
        coupon = rng.choice(self.coupons[:5]) if rng.random() < 0.15 else None
        quantity = rng.randint(2, 5) if rng.random() < 0.05 else 1
        if status == "trialing":
            start = self._between(max(created, a - timedelta(days=13)), a)
        elif status == "incomplete":
            start = self._between(max(created, a - timedelta(days=6)), a)
        else:
            start = self._between(created, a - timedelta(days=1))
        ended = self._between(start, a) if status == "canceled" else None
        periods = self._periods(plan, start, ended or a)
        trial_end = start + timedelta(days=14) if status == "trialing" else None
        period_start, period_end = (start, trial_end) if trial_end else periods[-1]
        billing = "charge_automatically" if source is not None and rng.random() < 0.85 else "send_invoice"
        subscription = self.store.add(
            "subscriptions",
            new_subscription(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                plan,
                _u(start),
                status=status,
                period_start=_u(period_start),
                period_end=_u(period_end),
                quantity=quantity,
                coupon_id=coupon["id"] if coupon else None,
                trial_end=_u(trial_end) if trial_end else None,
                address_id=address["id"] if address else None,
                source_id=source["id"] if source and billing == "charge_automatically" else None,
                billing=billing,
                is_gift_recipient=status == "active" and rng.random() < 0.05,
            ),
        )
        subscription["old_provider_id"] = f"sub_{subscription['id']}"
        if coupon:
            coupon["times_redeemed"] += 1
        forced = False
        if ended:
            forced = rng.random() < 0.5
            # Forced: ended at once. Otherwise it ran to the end of the period it was
            # canceled in, so it keeps cancel_at_period_end (what invoices tell them by).
            subscription.update(
                canceled_at=_u(ended),
                ended_at=_u(ended),
                auto_renew=False,
                renews_at=None,
                cancel_at_period_end=not forced,
                cancel_at=None if forced else _u(ended),
                canceled_by_type="admin" if forced else "customer",
                cancel_reason="Canceled now by support" if forced else "Customer request",
            )
        elif status == "active" and rng.random() < 0.08:
            at = _u(self._between(start, a))
            subscription.update(
                cancel_at_period_end=True,
                auto_renew=False,
                canceled_at=at,
                cancel_at=subscription["current_period_end"],
                renews_at=None,
                cancel_reason="Too expensive",
                canceled_by_type="customer",
            )
        if trial_end:
            return subscription
        amount = discounted(plan["amount"] * quantity, coupon)
        if amount == 0:
            return subscription
        billed = periods[-4:]
        for number, (begin, end) in enumerate(billed, start=1):
            last = number == len(billed)
            reason = "subscription_create" if begin == start else "subscription_cycle"
            invoice = self._invoice(
                customer,
                [{"description": f"{plan['nickname']} × {quantity}", "unit_price": amount, "quantity": 1}],
                begin,
                "open",
                subscription_id=subscription["id"],
                billing_reason=reason,
                period_start=_u(begin),
                period_end=_u(end),
                billing=billing,
            )
            subscription["latest_invoice"] = invoice["id"]
            if status in ("past_due", "incomplete") and last:
                self._fail(invoice, begin)
                if status == "past_due":
                    invoice["status"] = "past_due"
                    if rng.random() < 0.35:
                        self._pay(invoice, begin + timedelta(days=rng.randint(1, 5)), amount // rng.choice((2, 3, 4)))
            elif status == "canceled" and last:
                fate = "open" if forced and rng.random() < 0.5 else rng.choice(("paid", "void", "uncollectible"))
                if fate == "paid":
                    self._pay(invoice, begin + timedelta(hours=1), amount)
                elif fate == "open":
                    self._fail(invoice, begin)  # left open by a forced cancel: pay_offline refuses it
                else:
                    self._fail(invoice, begin)
                    at = _u(min(begin + timedelta(days=rng.randint(7, 30)), a))
                    invoice.update(
                        status=fate, updated_at=at, **{"voided_at" if fate == "void" else "marked_uncollectible_at": at}
                    )
            elif status == "active" and not last and rng.random() < 0.04:
                self._fail(invoice, begin)
                at = _u(begin + timedelta(days=30))
                invoice.update(status="uncollectible", updated_at=at, marked_uncollectible_at=at)
            else:
                self._pay(invoice, begin + timedelta(minutes=rng.randint(1, 90)), amount)
        if status == "active" and billing == "send_invoice" and rng.random() < 0.3:
            # An advance invoice for the next period, issued ahead of it: void refuses it.
            begin, end = billed[-1][1], clock.add_interval(billed[-1][1], plan["interval"], plan["interval_count"])
            invoice = self._invoice(
                customer,
                [
                    {
                        "description": f"{plan['nickname']} × {quantity} (next period)",
                        "unit_price": amount,
                        "quantity": 1,
                    }
                ],
                min(a, begin),
                "open",
                subscription_id=subscription["id"],
                billing_reason="subscription_cycle",
                period_start=_u(begin),
                period_end=_u(end),
                is_advance=True,
                billing=billing,
            )
            subscription["latest_invoice"] = invoice["id"]
        return subscription

    def _periods(self, plan: dict, start: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        """Billing periods from `start`, the last one containing `until` (at most the 4 latest kept)."""
        periods = []
        begin = start
        while True:
            end = clock.add_interval(begin, plan["interval"], plan["interval_count"])
            periods.append((begin, end))
            if end > until:
                return periods[-4:]
            begin = end

    def _manual_invoice(self, customer: dict, created: datetime, status: str) -> None:
        rng, a = self.rng, self.anchor
        items = [
            {"description": d, "unit_price": p, "quantity": rng.randint(1, 3)}
            for d, p in rng.sample(LINE_ITEMS, rng.randint(1, 3))
        ]
        moment = self._between(max(created, a - timedelta(days=120)), a)
        invoice = self._invoice(
            customer,
            items,
            moment,
            "draft" if status == "draft" else "open",
            due_date=_u(moment + timedelta(days=rng.choice((14, 30)))),
            billing="send_invoice",
            metadata={"po_number": f"PO-{rng.randint(1000, 9999)}"} if rng.random() < 0.5 else None,
        )
        invoice["old_provider_id"] = f"in_{invoice['id']}"
        if status == "paid":
            self._pay(invoice, self._between(moment, a), invoice["amount_due"], offline=rng.random() < 0.5)
        elif status == "void":
            at = _u(self._between(moment, a))
            invoice.update(status="void", voided_at=at, updated_at=at)
        elif status == "open" and rng.random() < 0.3:
            self._pay(invoice, self._between(moment, a), invoice["amount_due"] // 2, offline=True)
        elif status == "open" and rng.random() < 0.4:
            self.store.add(
                "charges",
                new_charge(
                    self.store.next_id(),
                    self.site_id,
                    customer["id"],
                    invoice["amount_remaining"],
                    self.currency,
                    _u(self._between(moment, a)),
                    invoice_id=invoice["id"],
                    status="pending",
                ),
            )

    def _balance_credit(self, customer: dict, created: datetime) -> None:
        """An offline charge without an invoice: the customer's credit balance (for apply_balance)."""
        amount = self.rng.choice((500, 1000, 2500, 5000))
        self.store.add(
            "charges",
            new_charge(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                amount,
                self.currency,
                _u(self._between(created, self.anchor)),
                offline=True,
                reference=f"REF-{self.rng.randint(100000, 999999)}",
                payment_category=str(self.rng.randint(2, 6)),
                metadata={"note": "credit", "pelcro_batch": "seed"},
            ),
        )
        customer["balance"] += amount
        customer["currency"] = self.currency

    def _invoice(self, customer: dict, items: list[dict], moment: datetime, status: str, **extra) -> dict:
        extra.setdefault(
            "due_date", _u(moment + timedelta(days=30)) if extra.get("billing") == "send_invoice" else _u(moment)
        )
        return self.store.add(
            "invoices",
            new_invoice(
                self.store.next_id(),
                self.site_id,
                customer["id"],
                self.currency,
                items,
                _u(moment),
                status=status,
                **extra,
            ),
        )

    def _pay(self, invoice: dict, moment: datetime, amount: int, *, offline: bool = False) -> None:
        """A succeeded charge for `amount` and the invoice's amounts (paid once nothing remains)."""
        moment = min(moment, self.anchor)
        charge = self.store.add(
            "charges",
            new_charge(
                self.store.next_id(),
                self.site_id,
                invoice["customer_id"],
                amount,
                invoice["currency"],
                _u(moment),
                invoice_id=invoice["id"],
                offline=offline,
                payment_category=str(self.rng.randint(2, 6)) if offline else None,
                reference=f"REF-{self.rng.randint(100000, 999999)}" if offline else None,
                metadata={"pelcro_import_batch": "seed-2026", "channel": "mail"} if offline else None,
            ),
        )
        invoice["amount_paid"] += amount
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
        invoice["updated_at"] = _u(moment)
        if invoice["amount_remaining"] == 0:
            invoice.update(status="paid", paid=True, paid_at=_u(moment))
            if not offline and self.rng.random() < 0.08:
                self.refundable.append(charge)

    def _fail(self, invoice: dict, moment: datetime) -> None:
        self.store.add(
            "charges",
            new_charge(
                self.store.next_id(),
                self.site_id,
                invoice["customer_id"],
                invoice["amount_remaining"],
                invoice["currency"],
                _u(moment),
                invoice_id=invoice["id"],
                status="failed",
                failure_message=self.rng.choice(DECLINES),
            ),
        )

    def _refunds(self) -> None:
        """Refunds of some paid card charges: to_issue (one with no creation date), issued, canceled."""
        statuses = ("to_issue", "to_issue", "issued", "canceled")
        for index, charge in enumerate(self.refundable):
            status = statuses[index % len(statuses)]
            amount = charge["amount"] if self.rng.random() < 0.6 else charge["amount"] // 2
            created = _u(self._between(datetime.fromtimestamp(charge["created_at"], UTC), self.anchor))
            if index == 1:
                created = None  # a pending refund with no creation date: cancellation skips it
            self.store.add(
                "refunds",
                new_refund(
                    self.store.next_id(),
                    self.site_id,
                    charge,
                    amount,
                    created,
                    status=status,
                    reason=self.rng.choice(REFUND_REASONS),
                ),
            )
            if status == "issued":
                charge["amount_refunded"] = amount
                charge["refunded"] = amount == charge["amount"]


def _weighted(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in mix], weights=[weight for _, weight in mix])[0]
