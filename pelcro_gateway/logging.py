"""Secrets never reach a log line; client errors never log a traceback.

Defence in depth: code should never log secrets in the first place, but a library that
logs a URL, a header or a request (uvicorn's access log, Django's "Not Found: /path",
httpx, oauthlib) must not leak one either. `redact()` masks every kind of place a
credential turns up in, wherever it is in the line:

- URLs and paths (the access log's request target, Django's request warnings, URLs in
  messages): query and fragment values are masked unless their parameter is known to be
  harmless (`PUBLIC_QUERY_NAMES`); a bare query or fragment (`/?<token>`) is masked; a path
  segment that looks like a credential (16+ letters-and-digits) is masked.
- `name=value`, `name: value`, JSON and repr pairs whose name says secret (token, secret,
  password, code, verifier, API key, session, cookie, assertion, …), in any case.
- Authorization-like values: `Bearer …`, `Basic …` and other schemes, and the values of
  `Authorization`, `Cookie`, `X-Api-Key`-like headers in any notation; JWTs anywhere;
  oauthlib's prose ("Validating access token <token>").
- Percent-encoded forms of all of the above (`access_token%3D…`, `%26code%3D…`, twice
  encoded): a line whose decoded form holds a secret is logged decoded and masked.

It runs on every record of every logger, whichever handler writes it (uvicorn's, Celery's,
ours): `install()` (called from the app config) wraps the log record factory, so the
message, its traceback and its stack are masked when the record is made. The console
handler's `RedactSecretsFilter` does the same for records made before that.

`ClientErrorsWithoutTraceback` drops the traceback Django attaches to 4xx records
("Forbidden (Permission denied): /ops/", SuspiciousOperation's 400s): a refused request
is not a fault of the server, and the line itself says what happened.
"""

from __future__ import annotations

import logging
import re
import traceback
from urllib.parse import unquote

MASK = "[redacted]"

# Query/fragment parameters whose values are never credentials and help reading the log.
PUBLIC_QUERY_NAMES = frozenset(
    {
        "response_type",
        "client_id",
        "scope",
        "code_challenge_method",
        "prompt",
        "redirect_uri",
        "resource",
        "grant_type",
        "token_type_hint",
        "error",
        "error_description",
        "iss",
        "next",
        "page",
        "per_page",
        "sort",
        "site_id",
        "since",
        "account",
        "o",
        "q",
        "p",
        "format",
        "lang",
        "all",
        "_changelist_filters",
    }
)

_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?:token|secret|passw(?:or)?d|passwd|api[_-]?key|apikey|session(?:id)?|cookie|assertion"
    r"|credential|signature|verifier)[A-Za-z0-9_.-]*"
    r"|code|(?:auth(?:orization)?|device|user)_code|key|pwd|sig|jwt|auth"
)
_PATTERNS = [
    # Header-like values in any notation: "Authorization: Bearer x", "('authorization', 'Basic x')",
    # b"cookie": b"...", Authorization=Bearer x.
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-csrftoken"
            r"|x-sandbox-admin|http_authorization|http_cookie)(['\"]?\s*[:=,]\s*\(?\s*b?['\"]?)([^'\"\n)]+)"
        ),
        r"\1\2" + MASK,
    ),
    # "Bearer xyz" anywhere (also + or %20 as the space of a form or URL).
    (re.compile(r"(?i)\b(bearer)(\s+|\+|%20)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK),
    # Other authorization schemes with a credential-sized value.
    (re.compile(r"(?i)\b(basic|digest|dpop|mac|negotiate)(\s+|\+|%20)[A-Za-z0-9._~+/=-]{12,}"), r"\1\2" + MASK),
    # JWTs (header.payload.signature, base64url of '{"...').
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Prose, e.g. oauthlib's DEBUG "Validating refresh token <token> for client ...".
    (
        re.compile(
            r"(?i)\b((?:access|refresh|bearer|id|registration)[ _]token,?\s+|code\s+)(?=[A-Za-z0-9._~+/=-]*\d)"
            r"[A-Za-z0-9._~+/=-]{16,}"
        ),
        r"\1" + MASK,
    ),
    # name=value / name: value / "name": "value" / 'name': 'value', in any case.
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9_.-])("
            + _SECRET_NAME
            + r")(['\"]?\s*(?:=|:)\s*['\"]?)(?!\[redacted\])([^&;\s'\",}\])#]+)"
        ),
        r"\1\2" + MASK,
    ),
]

# A URL, or a path in a message ("Not Found: /x", '"GET /x?y HTTP/1.1"').
_URL = re.compile(r"(?i)\b(?:https?|wss?)://[^\s'\"<>]+|(?<![\w./:%-])/[^\s'\"<>]*")
_TOKEN_LIKE = re.compile(r"(?=[A-Za-z0-9_~+=-]*\d)(?=[A-Za-z0-9_~+=-]*[A-Za-z])[A-Za-z0-9_~+=-]{16,}")


def _mask_params(part: str) -> str:
    """The pairs of a query string or fragment, with values masked unless public."""
    pairs = []
    for pair in re.split(r"([&;])", part):
        if pair in ("&", ";") or pair == "":
            pairs.append(pair)
            continue
        name, equals, value = pair.partition("=")
        if not equals:
            pairs.append(MASK)  # a bare value: a token pasted after "?" or "#"
        elif unquote(name).strip().lower() in PUBLIC_QUERY_NAMES or value == MASK:
            pairs.append(pair)
        else:
            pairs.append(f"{name}={MASK}" if value else pair)
    return "".join(pairs)


def _mask_url(match: re.Match) -> str:
    url = match.group(0)
    url, hash_mark, fragment = url.partition("#")
    url, question, query = url.partition("?")
    head, _, path = url.rpartition("://") if "://" in url else ("", "", url)
    host, slash, path = path.partition("/") if head else ("", "", path)
    segments = [MASK if _TOKEN_LIKE.fullmatch(segment) else segment for segment in path.split("/")]
    masked = (f"{head}://{host}{slash}" if head else "") + "/".join(segments)
    if question:
        masked += "?" + _mask_params(query)
    if hash_mark:
        masked += "#" + _mask_params(fragment)
    return masked


def _redact_plain(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _URL.sub(_mask_url, text)


def _decoded(text: str) -> str:
    """`text` percent-decoded until it stops changing (at most 3 rounds: %253D → %3D → =)."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def redact(text: str) -> str:
    """`text` with every credential in it replaced by "[redacted]" (see the module docstring)."""
    cleaned = _redact_plain(text)
    if "%" not in cleaned:
        return cleaned
    decoded = _decoded(cleaned)
    cleaned_decoded = _redact_plain(decoded)
    return cleaned_decoded if cleaned_decoded != decoded else cleaned


def redact_record(record: logging.LogRecord) -> None:
    """Mask the record's message, traceback and stack in place. The arguments keep their
    shape when masking each one is enough (uvicorn's access formatter unpacks them)."""
    message = record.getMessage()
    cleaned = redact(message)
    if cleaned != message:
        args = record.args
        masked_args = None
        if isinstance(args, tuple) and args:
            masked_args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in args)
            try:
                if str(record.msg) % masked_args != cleaned:
                    masked_args = None
            except (TypeError, ValueError):
                masked_args = None
        if masked_args is not None:
            record.args = masked_args
        else:
            record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keeps the line of a 4xx record (Django's request and security loggers) but not its
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if (isinstance(status, int) and 400 <= status < 500) or record.name.startswith("django.security"):
            record.exc_info, record.exc_text = None, None
        return True


_installed = False


def install() -> None:
    """Mask every record this process makes, at creation (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            redact_record(record)
        except Exception:  # e.g. arguments that do not fit the format: keep only the format
            record.msg, record.args = f"[unformattable log line] {redact(str(record.msg))}", None
            record.exc_info = record.exc_text = None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
