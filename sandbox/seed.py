"""Deterministic demo data for every account and site of demo/accounts.json.

The same seed gives the same ids, names, states and amounts; dates are laid out
backwards from the start of the current UTC day, so "active" stays active. Each site
gets plans, coupons, hundreds of customers, subscriptions in every state, invoices in
every state (some open ones partly paid), and the charges that paid them.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from sandbox import clock
from sandbox.records import new_charge, new_coupon, new_customer, new_invoice, new_plan, new_subscription
from sandbox.store import Account, Store
from sandbox.subscriptions import discounted

CURRENCIES = ("usd", "gbp", "eur", "cad", "aud")

FIRST_NAMES = (
    "Olivia Liam Emma Noah Amelia Oliver Ava Elijah Sophia Lucas Isabella Mason Mia Ethan Charlotte James "
    "Harper Benjamin Evelyn Henry Abigail Alexander Emily Sebastian Ella Jack Elizabeth Daniel Sofia Michael "
    "Avery Owen Scarlett Samuel Grace Matthew Chloe Joseph Victoria Levi Riley David Aria John Lily Wyatt "
    "Aurora Carter Zoey Julian Nora Luke Hannah Grayson Layla Isaac Zoe Gabriel Leah Anthony Priya Mateo "
    "Aisha Hiroshi Fatima Lars Ingrid Diego Lucia Kwame Amara Tomasz Katarzyna Ravi Ananya Sean Siobhan"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall "
    "Rivera Campbell Mitchell Carter Roberts Okafor Tanaka Kowalski Johansson Rossi Dubois Murphy O'Brien "
    "Patel Sharma Mensah Novak Fischer Larsen Costa Silva Kim Chen Wang Singh Khan Ali Cohen Schmidt"
).split()
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "hotmail.com", "fastmail.com", "aol.com")
ORGANISATIONS = ("Public Library", "High School", "University Library", "Dental Practice", "Law Firm", "Coffee House", "Hotel")
SOURCES = ("web", "import", "app", "call_center", "partner")
LINE_ITEMS = (
    ("Back issue", 450), ("Gift subscription (3 months)", 2997), ("Print archive access", 1500),
    ("Home delivery fee", 600), ("Reader event ticket", 2500), ("Special edition", 1200), ("Replacement copy", 350),
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
)
SUBSCRIPTION_MIX = (("active", 50), ("canceled", 22), ("past_due", 10), ("trialing", 10), ("incomplete", 8))
MANUAL_INVOICE_MIX = (("draft", 30), ("open", 30), ("paid", 25), ("void", 15))
DECLINES = ("Your card was declined.", "Your card has insufficient funds.", "Your card has expired.")


def load_accounts(seed_file: Path) -> list[Account]:
    """The accounts, keys and sites of demo/accounts.json (the gateway's demo data uses the same file)."""
    spec = json.loads(Path(seed_file).read_text())
    return [
        Account(item["slug"], item["name"], item["api_key"], {int(s["site_id"]): s["name"] for s in item["sites"]})
        for item in spec["accounts"]
    ]


def build_store(seed_file: Path, seed: int, customers_per_site: int) -> Store:
    """A fresh store with every account's demo data."""
    accounts = load_accounts(seed_file)
    store = Store(accounts)
    anchor = datetime.combine(clock.now().date(), time(), tzinfo=timezone.utc)
    rng = random.Random(seed)
    for index, account in enumerate(accounts):
        for site_id in account.sites:
            _SiteSeeder(store, rng, site_id, CURRENCIES[index % len(CURRENCIES)], anchor).run(customers_per_site)
    return store


class _SiteSeeder:
    def __init__(self, store: Store, rng: random.Random, site_id: int, currency: str, anchor: datetime):
        self.store, self.rng, self.site_id, self.currency, self.anchor = store, rng, site_id, currency, anchor

    def run(self, customers: int) -> None:
        self.plans = self._plans()
        self.coupons = self._coupons()
        for customer in self._customers(customers):
            self._customer_history(customer)

    def _between(self, start: datetime, end: datetime) -> datetime:
        """A random second in [start, end] (end if the range is empty)."""
        span = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randint(0, span)) if span > 0 else end

    def _plans(self) -> list[dict]:
        digital, print_ = self.store.next_id(), self.store.next_id()
        created = self.anchor - timedelta(days=4 * 365)
        plans = []
        for nickname, amount, interval, count, active, auto_renew in PLANS:
            product = print_ if "Print" in nickname else digital
            plans.append(self.store.add("plans", new_plan(
                self.store.next_id(), self.site_id, product, created, nickname=nickname, amount=amount,
                currency=self.currency, interval=interval, interval_count=count, active=active, auto_renew=auto_renew,
            )))
            created += timedelta(days=self.rng.randint(20, 90))
        return plans

    def _coupons(self) -> list[dict]:
        a = self.anchor
        specs = (
            dict(name="Welcome 10%", code="WELCOME10", percent_off=10),
            dict(name="Loyal reader 20%", code="LOYAL20", percent_off=20, duration="forever"),
            dict(name="Five off", code="SAVE5", amount_off=500, currency=self.currency),
            dict(name="Students half price", code="STUDENT50", percent_off=50, duration="forever", max_redemptions=500),
            dict(name="Holiday 15%", code="HOLIDAY15", percent_off=15, redeem_by=a + timedelta(days=60)),
            dict(name="Spring 25% (expired)", code="SPRING25", percent_off=25, redeem_by=a - timedelta(days=200)),
            dict(name="Free first month", code="FREEMONTH", percent_off=100, max_redemptions=40, times_redeemed=40),
        )
        created = a - timedelta(days=3 * 365)
        coupons = []
        for spec in specs:
            coupons.append(self.store.add("coupons", new_coupon(self.store.next_id(), self.site_id, created, **spec)))
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
                fields = {"display_name": f"{last} {rng.choice(ORGANISATIONS)}"}
            else:
                fields["email"] = self._email(first, last, taken)
                fields["display_name"] = f"{first} {last}"
            if rng.random() < 0.6:
                fields["phone"] = f"+1 {rng.randint(201, 989)} 555 {rng.randint(0, 9999):04d}"
            if rng.random() < 0.4:
                fields["metadata"] = {"source": rng.choice(SOURCES), "crm_id": f"C-{rng.randint(10000, 99999)}"}
            fields["mail_marketing"] = rng.random() < 0.55
            fields["tele_marketing"] = rng.random() < 0.15
            customer = self.store.add("customers", new_customer(self.store.next_id(), self.site_id, moment, **fields))
            if rng.random() < 0.03:
                customer["deleted_at"] = customer["updated_at"] = clock.iso(self._between(moment, self.anchor))
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

    # --- one customer's subscriptions, invoices and charges --------------------------------

    def _customer_history(self, customer: dict) -> None:
        rng = self.rng
        created = datetime.fromisoformat(customer["created_at"].replace("Z", "+00:00"))
        if customer["deleted_at"] is None:
            subscriptions = 0 if rng.random() < 0.2 else (2 if rng.random() < 0.12 else 1)
            for _ in range(subscriptions):
                self._subscription(customer, created, _weighted(rng, SUBSCRIPTION_MIX))
            if rng.random() < 0.12:
                self._manual_invoice(customer, created, _weighted(rng, MANUAL_INVOICE_MIX))
            if rng.random() < 0.04:
                self._balance_credit(customer, created)
        elif rng.random() < 0.7:
            self._subscription(customer, created, "canceled")

    def _subscription(self, customer: dict, created: datetime, status: str) -> None:
        rng, a = self.rng, self.anchor
        active_plans = [p for p in self.plans if p["active"]]
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
        subscription = self.store.add("subscriptions", new_subscription(
            self.store.next_id(), self.site_id, customer["id"], plan, start, status=status,
            period_start=period_start, period_end=period_end, quantity=quantity,
            coupon_id=coupon["id"] if coupon else None, trial_end=trial_end,
        ))
        if coupon:
            coupon["times_redeemed"] += 1
        if ended:
            stamp = clock.iso(ended)
            subscription.update(canceled_at=stamp, ended_at=stamp, auto_renew=False)
        elif status == "active" and rng.random() < 0.08:
            subscription.update(cancel_at_period_end=True, auto_renew=False, canceled_at=clock.iso(self._between(start, a)))
        if trial_end:
            return
        amount = discounted(plan["amount"] * quantity, coupon)
        if amount == 0:
            return
        billed = periods[-4:]
        for number, (begin, _end) in enumerate(billed, start=1):
            last = number == len(billed)
            reason = "subscription_create" if begin == start else "subscription_cycle"
            invoice = self._invoice(customer, [{"description": f"{plan['nickname']} × {quantity}", "unit_price": amount, "quantity": 1}],
                                    begin, "open", subscription_id=subscription["id"], billing_reason=reason)
            if status in ("past_due", "incomplete") and last:
                self._fail(invoice, begin)
                if status == "past_due" and rng.random() < 0.35:
                    self._pay(invoice, begin + timedelta(days=rng.randint(1, 5)), amount // rng.choice((2, 3, 4)))
            elif status == "canceled" and last:
                fate = rng.choice(("paid", "void", "uncollectible"))
                if fate == "paid":
                    self._pay(invoice, begin + timedelta(hours=1), amount)
                else:
                    self._fail(invoice, begin)
                    stamp = clock.iso(min(begin + timedelta(days=rng.randint(7, 30)), a))
                    invoice.update(status=fate, updated_at=stamp, **{"voided_at" if fate == "void" else "marked_uncollectible_at": stamp})
            elif status == "active" and not last and rng.random() < 0.04:
                self._fail(invoice, begin)
                stamp = clock.iso(begin + timedelta(days=30))
                invoice.update(status="uncollectible", updated_at=stamp, marked_uncollectible_at=stamp)
            else:
                self._pay(invoice, begin + timedelta(minutes=rng.randint(1, 90)), amount)

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
        items = [{"description": d, "unit_price": p, "quantity": rng.randint(1, 3)} for d, p in rng.sample(LINE_ITEMS, rng.randint(1, 3))]
        moment = self._between(max(created, a - timedelta(days=120)), a)
        invoice = self._invoice(customer, items, moment, "draft" if status == "draft" else "open",
                                due_date=(moment + timedelta(days=rng.choice((14, 30)))).date().isoformat())
        if status == "paid":
            method = rng.random() < 0.5
            self._pay(invoice, self._between(moment, a), invoice["amount_due"], offline=method)
        elif status == "void":
            stamp = clock.iso(self._between(moment, a))
            invoice.update(status="void", voided_at=stamp, updated_at=stamp)
        elif status == "open" and rng.random() < 0.3:
            self._pay(invoice, self._between(moment, a), invoice["amount_due"] // 2, offline=True)
        elif status == "open" and rng.random() < 0.4:
            self.store.add("charges", new_charge(
                self.store.next_id(), self.site_id, customer["id"], invoice["amount_remaining"], self.currency,
                self._between(moment, a), invoice_id=invoice["id"], status="pending", payment_category=4,
            ))

    def _balance_credit(self, customer: dict, created: datetime) -> None:
        amount = self.rng.choice((500, 1000, 2500, 5000))
        category = self.rng.randint(2, 6)
        self.store.add("charges", new_charge(
            self.store.next_id(), self.site_id, customer["id"], amount, self.currency, self._between(created, self.anchor),
            offline=True, reference=f"REF-{self.rng.randint(100000, 999999)}", payment_category=category,
        ))
        customer["balance"] += amount

    def _invoice(self, customer: dict, items: list[dict], moment: datetime, status: str, **extra) -> dict:
        extra.setdefault("due_date", moment.date().isoformat())
        return self.store.add("invoices", new_invoice(
            self.store.next_id(), self.site_id, customer["id"], self.currency, items, moment, status=status, **extra,
        ))

    def _pay(self, invoice: dict, moment: datetime, amount: int, *, offline: bool = False) -> None:
        """A succeeded charge for `amount` and the invoice's amounts (paid once nothing remains)."""
        moment = min(moment, self.anchor)
        self.store.add("charges", new_charge(
            self.store.next_id(), self.site_id, invoice["customer_id"], amount, invoice["currency"], moment,
            invoice_id=invoice["id"], offline=offline, payment_category=self.rng.randint(2, 6) if offline else 1,
            reference=f"REF-{self.rng.randint(100000, 999999)}" if offline else None,
        ))
        invoice["amount_paid"] += amount
        invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]
        invoice["updated_at"] = clock.iso(moment)
        if invoice["amount_remaining"] == 0:
            invoice.update(status="paid", paid_at=clock.iso(moment))

    def _fail(self, invoice: dict, moment: datetime) -> None:
        self.store.add("charges", new_charge(
            self.store.next_id(), self.site_id, invoice["customer_id"], invoice["amount_remaining"], invoice["currency"],
            moment, invoice_id=invoice["id"], status="failed", failure_message=self.rng.choice(DECLINES),
        ))


def _weighted(rng: random.Random, mix: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([name for name, _ in mix], weights=[weight for _, weight in mix])[0]
