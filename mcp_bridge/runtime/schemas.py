"""Input and output shapes shared by every tool.

Inputs are pydantic models that refuse unknown arguments (`extra="forbid"`, so the JSON
Schema says `additionalProperties: false`). They subclass the SDK's `ArgModelBase`
because the SDK validates a call's arguments with the tool's model before the handler
runs. Outputs are typed objects (the Core API's objects: `mcp_bridge.core.shapes`).
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Generic, Literal, TypeVar

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

# --- Inputs ------------------------------------------------------------------------------

NOT_A_BOOLEAN = "must be a number (as the tool's schema says), not true or false"


class ToolInput(ArgModelBase):
    """Base of every tool's arguments: unknown arguments are refused, and so is a JSON
    boolean given for a number (an id, an amount, a page): pydantic's lax mode would read
    `true` as 1 and act on object 1."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _numeric_only(field.annotation):
                raise ValueError(NOT_A_BOOLEAN)
        return value


def _leaves(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (through Optional, unions and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return {leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)}
    return {origin or annotation}


def _numeric_only(annotation: Any) -> bool:
    """Whether a field takes numbers and never a boolean (`int`, `float | None`, …)."""
    leaves = _leaves(annotation)
    return bool(leaves & {int, float}) and not leaves & {bool, Any}


class SiteInput(ToolInput):
    site_id: int = Field(
        ge=1,
        le=2_147_483_647,
        description="The Pelcro site to act on (an integer, e.g. 14). It must be one of the connected "
        "account's sites; ask the user if you do not know it.",
    )


class ListInput(SiteInput):
    page: int = Field(1, ge=1, le=1_000_000, description="Page number, starting at 1.")
    per_page: int = Field(10, ge=1, le=100, description="Items per page, 1 to 100.")

    def list_query(self) -> dict[str, Any]:
        """The Core API query for paging and sorting (`per_page` is the API's `limit`)."""
        query: dict[str, Any] = {"page": self.page, "limit": self.per_page}
        sort = getattr(self, "sort", None)
        if sort:
            query["sort"] = sort
        return query


NOTHING_TO_CHANGE = "give at least one field to change"


def require_a_change(model: BaseModel, own: type[BaseModel], *ids: str) -> None:
    """An update tool's validator: refuse arguments naming no field to change (`ValueError`,
    answered as invalid_arguments), which would be sent as an empty write and read as a
    success. Counts only `own`'s fields (the tool's input model) other than the object's
    `ids`: never the runtime's `dry_run` / `idempotency_key`, which the published model (a
    subclass) adds."""
    if not model.model_dump(include=set(own.model_fields) - set(ids), exclude_none=True):
        raise ValueError(NOTHING_TO_CHANGE)


def id_field(noun: str) -> Any:
    return Field(ge=1, le=2_147_483_647, description=f"The {noun}'s id (integer).")


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Currency = Annotated[
    str,
    BeforeValidator(_lower),
    Field(pattern="^[a-z]{3}$", description="Three-letter ISO 4217 currency code in lower case, e.g. usd."),
]
Cents = Annotated[int, Field(ge=0, le=2_147_483_647)]
MetadataValue = Annotated[str, Field(max_length=500)] | int | float | bool | None
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], MetadataValue],
    Field(
        max_length=50,
        description="Your own key/value data: up to 50 keys of 1-40 characters; values are strings "
        "(up to 500 characters), numbers or booleans. It is merged into what is there: a key set to "
        "null is removed, keys you leave out stay.",
    ),
]


# --- Outputs -----------------------------------------------------------------------------

T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    page: int = Field(description="This page's number (1-based).")
    per_page: int = Field(description="Page size used.")
    total: int = Field(description="Number of items across all pages.")
    last_page: int = Field(description="Number of the last page.")
    has_more: bool = Field(description="True if a later page exists (call again with page + 1).")


ErrorKind = Literal[
    "invalid_arguments",
    "unknown_site",
    "insufficient_scope",
    "validation_failed",
    "refused",
    "not_found",
    "forbidden",
    "unauthorized",
    "rate_limited",
    "upstream_unavailable",
    "upstream_error",
    "internal_error",
    # Safe writes (runtime.writes): a person must confirm first / declined; a key reused;
    # an earlier call with the same key never reported its outcome (runtime.idempotency).
    "confirmation_required",
    "confirmation_declined",
    "idempotency_key_reused",
    "outcome_unknown",
]


class ToolFailure(BaseModel):
    """The `structuredContent` of a failed call (`isError: true`)."""

    error: ErrorKind
    message: str
    upstream_status: int | None = Field(None, description="The Core API's HTTP status, if it answered.")
    fields: dict[str, list[str]] | None = Field(None, description="Validation messages per argument.")
    retry_after: int | None = Field(None, description="Seconds to wait before retrying (rate limit).")
    may_have_been_applied: bool | None = Field(
        None, description="True when a write's fate is unknown: check the object before retrying."
    )
    confirmation_url: str | None = Field(
        None, description="Where the person confirms this action (confirmation_required); then call again."
    )
