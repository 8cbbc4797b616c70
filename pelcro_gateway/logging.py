"""A logging filter that masks bearer tokens, API keys and OAuth codes in any log line.

Defence in depth: code should never log secrets in the first place, but a library that
logs a URL or a header (httpx, oauthlib) must not leak one either.
"""

import logging
import re

_PATTERNS = [
    # Authorization headers and "Bearer xyz" anywhere.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    # Prose, e.g. oauthlib's DEBUG "Validating refresh token <token> for client ...".
    (re.compile(r"(?i)\b((?:access|refresh) token,?\s+)[A-Za-z0-9._~+/=-]{20,}"), r"\1[redacted]"),
    # key=value pairs in query strings, form bodies and reprs.
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|code|code_verifier|client_secret|api_key|token|password)"
            r"(['\"]?\s*[=:]\s*['\"]?)[^&\s'\",}]+"
        ),
        r"\1\2[redacted]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
