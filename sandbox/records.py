"""Builders of the stored objects, one shape per kind (CORE_API.md fields plus a few more).

The seed and the write operations both build objects here, so every object of a kind
has the same keys. Money is integer cents; timestamps are ISO 8601 UTC strings.
"""

from __future__ import annotations

from datetime import datetime

from sandbox import clock


def new_customer(obj_id: int, site_id: int, moment: datetime, **fields) -> dict:
    stamp = clock.iso(moment)
    return {
        "id": obj_id,
        "site_id": site_id,
        "email": fields.get("email"),
        "first_name": fields.get("first_name"),
        "last_name": fields.get("last_name"),
        "display_name": fields.get("display_name"),
        "phone": fields.get("phone"),
        "metadata": fields.get("metadata") or {},
        "mail_marketing": fields.get("mail_marketing", False),
        "tele_marketing": fields.get("tele_marketing", False),
        "balance": fields.get("balance", 0),
        "created_at": stamp,
        "updated_at": stamp,
        "deleted_at": None,
    }


def new_plan(obj_id: int, site_id: int, product_id: int, moment: datetime, *, nickname: str, amount: int,
             currency: str, interval: str, interval_count: int = 1, active: bool = True, auto_renew: bool = True) -> dict:
    return {
        "id": obj_id,
        "site_id": site_id,
        "product_id": product_id,
        "nickname": nickname,
        "amount": amount,
        "currency": currency,
        "interval": interval,
        "interval_count": interval_count,
        "active": active,
        "auto_renew": auto_renew,
        "created_at": clock.iso(moment),
    }


def new_coupon(obj_id: int, site_id: int, moment: datetime, *, name: str, code: str, percent_off: int | None = None,
               amount_off: int | None = None, currency: str | None = None, duration: str = "once",
               redeem_by: datetime | None = None, max_redemptions: int | None = None, times_redeemed: int = 0) -> dict:
    return {
        "id": obj_id,
        "site_id": site_id,
        "name": name,
        "code": code,
        "percent_off": percent_off,
        "amount_off": amount_off,
        "currency": currency if amount_off is not None else None,
        "duration": duration,
        "redeem_by": clock.iso(redeem_by) if redeem_by else None,
        "max_redemptions": max_redemptions,
        "times_redeemed": times_redeemed,
        "created_at": clock.iso(moment),
    }


def new_subscription(obj_id: int, site_id: int, customer_id: int, plan: dict, moment: datetime, *,
                     status: str, period_start: datetime, period_end: datetime, quantity: int = 1,
                     coupon_id: int | None = None, auto_renew: bool | None = None,
                     trial_end: datetime | None = None) -> dict:
    return {
        "id": obj_id,
        "site_id": site_id,
        "customer_id": customer_id,
        "plan_id": plan["id"],
        "coupon_id": coupon_id,
        "status": status,
        "quantity": quantity,
        "auto_renew": plan["auto_renew"] if auto_renew is None else auto_renew,
        "current_period_start": clock.iso(period_start),
        "current_period_end": clock.iso(period_end),
        "cancel_at_period_end": False,
        "canceled_at": None,
        "ended_at": None,
        "trial_start": clock.iso(moment) if trial_end else None,
        "trial_end": clock.iso(trial_end) if trial_end else None,
        "created_at": clock.iso(moment),
    }


def line_items(items: list[dict]) -> list[dict]:
    """Normalised line items, each with its `amount` (unit_price × quantity)."""
    return [
        {
            "description": item["description"],
            "unit_price": item["unit_price"],
            "quantity": item.get("quantity", 1),
            "amount": item["unit_price"] * item.get("quantity", 1),
        }
        for item in items
    ]


def set_line_items(invoice: dict, items: list[dict]) -> None:
    """Replace an invoice's lines and recompute its amounts."""
    invoice["line_items"] = line_items(items)
    invoice["total"] = invoice["amount_due"] = sum(item["amount"] for item in invoice["line_items"])
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]


def new_invoice(obj_id: int, site_id: int, customer_id: int, currency: str, items: list[dict], moment: datetime, *,
                status: str = "draft", subscription_id: int | None = None, billing_reason: str = "manual",
                due_date: str | None = None, metadata: dict | None = None) -> dict:
    stamp = clock.iso(moment)
    invoice = {
        "id": obj_id,
        "site_id": site_id,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "status": status,
        "currency": currency,
        "line_items": [],
        "total": 0,
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "due_date": due_date,
        "billing_reason": billing_reason,
        "metadata": metadata or {},
        "created_at": stamp,
        "updated_at": stamp,
        "finalized_at": stamp if status != "draft" else None,
        "paid_at": None,
        "voided_at": None,
        "marked_uncollectible_at": None,
    }
    set_line_items(invoice, items)
    return invoice


def new_charge(obj_id: int, site_id: int, customer_id: int, amount: int, currency: str, moment: datetime, *,
               invoice_id: int | None = None, status: str = "succeeded", offline: bool = False,
               reference: str | None = None, payment_category: int = 1, failure_message: str | None = None) -> dict:
    """A charge; payment_category 1 is a card, 2..6 the offline kinds (check, wire, transfer, external, cash)."""
    return {
        "id": obj_id,
        "site_id": site_id,
        "customer_id": customer_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "amount_refunded": 0,
        "currency": currency,
        "status": status,
        "paid": status == "succeeded",
        "refunded": False,
        "offline": offline,
        "reference": reference,
        "payment_category": payment_category,
        "failure_message": failure_message,
        "created_at": clock.iso(moment),
    }
