"""The Core API sandbox as tests of the sandbox (and of the Core API client) use it.

`sandbox_api` is this feature's own sandbox process (its limit set out of reach, so
functional tests never trip it; limit tests start their own). `sbx` hands it over with
the runtime knobs back at their start-up values; `fresh_sbx` also re-seeds the data.
"""

import json

import httpx

from devtools.servers import ROOT, ServerProcess
from tests.support.servers import SANDBOX_ADMIN_TOKEN

DEMO = json.loads((ROOT / "demo" / "accounts.json").read_text())
KEYS = {account["slug"]: account["api_key"] for account in DEMO["accounts"]}
SITES = {account["slug"]: [site["site_id"] for site in account["sites"]] for account in DEMO["accounts"]}
ACME_SITE, ACME_SITE_2 = SITES["acme"]
OTHER_SITE = SITES["other"][0]


class SandboxClient:
    """HTTP access to one running sandbox: the Core API as any demo account, and the admin API."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.url = server.url
        self.base = server.url + "/api/v1/core"
        self.admin = httpx.Client(base_url=server.url + "/_sandbox", headers={"X-Sandbox-Admin": SANDBOX_ADMIN_TOKEN})
        self.http = httpx.Client(base_url=self.base, timeout=10)

    def api(
        self,
        method: str,
        path: str,
        *,
        account: str = "acme",
        site_id: int | None = ACME_SITE,
        params: dict | None = None,
        json: object = None,
        key: str | None = None,
    ) -> httpx.Response:
        """One Core API call as `account` (or with an explicit `key`); site_id=None leaves it out."""
        query = dict(params or {})
        if site_id is not None:
            query = {"site_id": site_id, **query}
        headers = {"Authorization": f"Bearer {key if key is not None else KEYS[account]}"}
        return self.http.request(method, path, params=query, json=json, headers=headers)

    def ok(self, method: str, path: str, status: int = 200, **kwargs) -> dict:
        """`api()` that must answer `status`; returns the `data` of the envelope."""
        response = self.api(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()["data"]

    def configure(self, **knobs) -> dict:
        response = self.admin.put("/config", json=knobs)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def log(self, since: int = 0, **params) -> list[dict]:
        response = self.admin.get("/log", params={"since": since, **params})
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def last_seq(self) -> int:
        return self.admin.get("/log").json()["meta"]["last_seq"]

    def restore_config(self) -> None:
        assert self.admin.delete("/config").status_code == 200

    def reset(self) -> None:
        assert self.admin.post("/reset").status_code == 200

    def close(self) -> None:
        self.admin.close()
        self.http.close()


# --- the Open API (/api/v1/sdk) --------------------------------------------------------------------

SUBSCRIBERS = DEMO["subscribers"]  # demo-only passwords (demo/accounts.json)
READER, SECOND = SUBSCRIBERS[0], SUBSCRIBERS[1]  # two customers of site 14


class OpenClient:
    """HTTP access to the Open API of one running sandbox, as a browser SDK would call it."""

    def __init__(self, sandbox: SandboxClient):
        self.sbx = sandbox
        self.http = httpx.Client(base_url=sandbox.url + "/api/v1/sdk", timeout=10)

    def call(
        self,
        method: str,
        path: str,
        *,
        site_id: int | None = ACME_SITE,
        token: str | None = None,
        json: object = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> httpx.Response:
        query = dict(params or {})
        if site_id is not None:
            query = {"site_id": site_id, **query}
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, params=query, json=json, headers=headers)

    def ok(self, method: str, path: str, status: int = 200, **kwargs) -> dict:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def login(self, subscriber: dict = READER) -> dict:
        """The customer resource of a demo subscriber (with its fresh `auth_token`)."""
        return self.ok(
            "POST",
            "/auth/login",
            site_id=subscriber["site_id"],
            json={"email": subscriber["email"], "password": subscriber["password"]},
        )["data"]

    def settings(self, site_id: int, **changes) -> dict:
        response = self.sbx.admin.patch(f"/sites/{site_id}/open", json=changes)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def close(self) -> None:
        self.http.close()
