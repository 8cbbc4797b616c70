"""The Core API's error answers, raised by the business code and rendered by the app.

Shapes (CORE_API.md): validation `{"errors": {field: [messages]}}`; everything else
`{"error": {"status": N, "message": "..."}}`.
"""

from __future__ import annotations


class APIError(Exception):
    """An error answer: HTTP status, JSON body, extra headers."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"status": self.status, "message": self.message}}


class ValidationError(APIError):
    """400 with field-by-field messages."""

    status = 400

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("The given data was invalid.")
        self.errors = errors

    def body(self) -> dict:
        return {"errors": self.errors}


class BusinessRuleError(APIError):
    """400: well-formed, but the object's state does not allow it."""

    status = 400


class Unauthenticated(APIError):
    status = 401

    def __init__(self, message: str = "Unauthenticated."):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(APIError):
    status = 403


class NotFound(APIError):
    status = 404


class MethodNotAllowed(APIError):
    status = 405


class RateLimited(APIError):
    """429 `{"error": {"status": 429, "message": "Too Many Attempts.", "retry_after": N}}` + Retry-After (§2)."""

    status = 429

    def __init__(self, retry_after: int):
        super().__init__("Too Many Attempts.", headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after

    def body(self) -> dict:
        body = super().body()
        body["error"]["retry_after"] = self.retry_after
        return body


class InjectedServerError(APIError):
    """A 5xx the fault injector chose; nothing was processed."""

    def __init__(self, status: int):
        super().__init__("The server encountered an error (injected by the sandbox).")
        self.status = status
