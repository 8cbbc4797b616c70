"""Subscriber passwords as the sandbox stores them: PBKDF2-HMAC-SHA256 (RFC 8018) with a
random 16-byte salt, in the customer's internal `_password_hash` (never shown by any API).

The iteration count is deliberately low: these are sandbox and demo passwords, and tests log
in many times. Nothing here is a production password store.
"""

from __future__ import annotations

import hashlib
import hmac
import os

ITERATIONS = 10_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored` (False for a customer without a password)."""
    if not stored:
        return False
    try:
        _, iterations, salt, digest = stored.split("$")
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)
