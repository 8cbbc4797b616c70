"""Payment sources (CORE_API.md §8.10 `DELETE /sources/{id}` [src-del]; the customer's
saved sources that subscriptions name in `source_id`/`default_source`).

Delete answers 204, or 400 with the documented text while a subscription that has not
ended uses the source; a deleted default source leaves the customer without a default.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.errors import BusinessRuleError
from sandbox.store import Store

IN_USE = "Cannot delete source already associated to a subscription"


def delete_source(store: Store, site_id: int, source_id: int) -> None:
    source = store.get("sources", site_id, source_id)
    if any(
        s["default_source"] == source_id and s["status"] not in ("canceled", "expired")
        for s in store.live("subscriptions", site_id)
    ):
        raise BusinessRuleError(IN_USE)
    source["deleted_at"] = clock.now_unix()
    customer = store.by_site["customers"][site_id].get(source["user_id"])
    if customer is not None and customer["default_source_id"] == source_id:
        customer["default_source_id"] = None
