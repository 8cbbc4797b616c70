"""Fetching client ID metadata documents (CIMD): DOT's SSRF-hardened fetcher, plus our
redirect-URI policy, plus one dev/test-only allowance.

The allowance: with `GATEWAY_ENV=dev` and `CIMD_DEV_LOOPBACK_CA_FILE` set, a document on
a loopback https server whose certificate that CA signed may be fetched (DOT refuses
loopback addresses, rightly, in production). `accounts.checks` refuses the setting
outside dev, so production always uses the hardened path alone.
"""

import ssl
from urllib.parse import urlparse

import urllib3
from django.conf import settings
from oauth2_provider import cimd
from oauth2_provider.settings import oauth2_settings

from accounts.redirect_uris import LOOPBACK_HOSTS, RedirectURIError, check_redirect_uris

MAX_CLIENT_NAME = 200


def dev_loopback_allowed() -> bool:
    return settings.IS_DEV and bool(settings.CIMD_DEV_LOOPBACK_CA_FILE)


class GatewayMetadataFetcher(cimd.SafeMetadataFetcher):
    def fetch(self, client_id):
        host = urlparse(client_id).hostname
        if dev_loopback_allowed() and host in LOOPBACK_HOSTS:
            metadata, max_age = self._fetch_loopback(client_id)
        else:
            metadata, max_age = super().fetch(client_id)
        try:
            check_redirect_uris(metadata.get("redirect_uris"))
        except RedirectURIError as exc:
            raise cimd.CIMDError(str(exc)) from None
        name = metadata.get("client_name", "")
        if not isinstance(name, str) or len(name) > MAX_CLIENT_NAME:
            raise cimd.CIMDError(f"client_name must be a string of at most {MAX_CLIENT_NAME} characters")
        return metadata, max_age

    def _fetch_loopback(self, client_id):
        parsed = cimd._validate_client_id_url(client_id)
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        timeout = oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        pool = urllib3.HTTPSConnectionPool(
            host=parsed.hostname,
            port=parsed.port or 443,
            timeout=urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
            retries=False,
            maxsize=1,
            ssl_context=ssl.create_default_context(cafile=settings.CIMD_DEV_LOOPBACK_CA_FILE),
        )
        try:
            response = pool.urlopen(
                "GET", path, headers={"Accept": "application/json"}, redirect=False, preload_content=False
            )
            try:
                return self._read_document(response)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise cimd.CIMDError(f"could not fetch client_id document: {exc}") from None
        finally:
            pool.close()
