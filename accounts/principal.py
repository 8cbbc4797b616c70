"""The account-scoped principal a verified access token yields.

MCP tool handlers receive this and never look tokens up themselves (DESIGN.md:
"decorators carry the principal").
"""

from dataclasses import dataclass
from datetime import datetime

READ_SCOPE = "read"
WRITE_SCOPE = "write"


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    account_id: int
    account_slug: str
    connection_id: int
    client_id: str
    client_name: str
    scopes: frozenset[str]
    expires_at: datetime

    @property
    def can_write(self) -> bool:
        return WRITE_SCOPE in self.scopes
