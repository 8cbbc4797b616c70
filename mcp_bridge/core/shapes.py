"""Shapes every Core resource module shares: Core API time, sorting and filtering, the list
envelope, and the "contract" way of validating an answer.

Time: Core objects carry Unix seconds (CORE_API.md §1, "Changes" 1); `Timestamp`
(`runtime.values`, shared with the Open tools) shows them as ISO 8601 UTC.

Contract: the same models describe what the Core API answers. Validated with
`contract_validate` they are strict where the contract is (timestamps must be Unix
integers); `make contract-check` uses that to say whether an answer matched.

Sorting and filtering (CORE_API.md §4, §5, "beta"): each list tool offers only the sort
fields and filter attributes documented for its resource; `filter_query` turns the tool's
friendly arguments into `filter[<attribute>]=<op>:<value>` with the six documented
operators (`eq`, `like`, `has` and their OR-ed `oreq`, `orlike`, `orhas`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from mcp_bridge.runtime.values import (  # noqa: F401 (CONTRACT, Timestamp, iso: re-exported)
    CONTRACT,
    UNIX_MAX,
    UNIX_MIN,
    Timestamp,
    iso,
    to_datetime,
)

M = TypeVar("M", bound=BaseModel)


# --- Models of Core objects --------------------------------------------------------------


class CoreObject(BaseModel):
    """A Core object as the Core API returns it. Fields beyond the typed ones are kept (the
    API may add fields; clients ignore what they do not know, CORE_API.md §3); those named
    `*_at` holding Unix seconds are given to the model as ISO 8601 UTC too."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _untyped_times(self) -> CoreObject:
        extra = self.__pydantic_extra__ or {}
        for name, value in extra.items():
            if (
                name.endswith("_at")
                and isinstance(value, int)
                and not isinstance(value, bool)
                and UNIX_MIN <= value <= UNIX_MAX
            ):
                extra[name] = datetime.fromtimestamp(value, tz=UTC)
        return self


# Metadata is a JSON object; PHP (Pelcro) encodes an empty one as [].
CoreMetadata = Annotated[dict[str, Any] | None, BeforeValidator(lambda value: {} if value == [] else value)]


def contract_validate(model: type[M], data: Any) -> M:
    """Validate `data` as the contract describes `model` (strict timestamps)."""
    return model.model_validate(data, context={CONTRACT: True})


class ListLinks(BaseModel):
    model_config = ConfigDict(extra="allow")
    first: str
    last: str
    prev: str | None
    next: str | None


class ListMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    current_page: int = Field(ge=1)
    last_page: int = Field(ge=1)
    per_page: int = Field(ge=1, le=100)
    total: int = Field(ge=0)
    from_: int | None = Field(alias="from")
    to: int | None
    path: str | None = None


class ListEnvelope(BaseModel):
    """A list answer (CORE_API.md §3): `data`, `links` and Laravel-style `meta`."""

    model_config = ConfigDict(extra="allow")
    data: list[Any]
    links: ListLinks
    meta: ListMeta


# --- Sorting and filtering ---------------------------------------------------------------

Match = Literal["all", "any"]

MATCH_FIELD: Any = Field(
    "all",
    description="all (default): an item must match every filter given. any: it must match at least one "
    "(Pelcro's OR-ed operators oreq/orlike/orhas).",
)

METADATA_FILTER: Any = Field(
    None,
    max_length=10,
    description='Only items whose metadata has these exact values, e.g. {"company": "Acme"} '
    "(Pelcro: filter[metadata.company]=eq:Acme). Keys are metadata keys (letters, digits, _ or -).",
)

HAS_METADATA_KEY: Any = Field(
    None,
    min_length=1,
    max_length=40,
    pattern=r"^[A-Za-z0-9_-]+$",
    description="Only items whose metadata has this key, whatever its value.",
)

IdList = Annotated[list[Annotated[int, Field(ge=1, le=2_147_483_647)]], Field(min_length=1, max_length=100)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
FilterText = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^,]*$")]


class FilterQuery:
    """Builds `filter[...]` query parameters. Values never contain commas (a comma separates
    alternatives in a Pelcro filter value); the input models refuse them."""

    def __init__(self, match: Match = "all"):
        self.prefix = "or" if match == "any" else ""
        self.params: dict[str, str] = {}

    def eq(self, attribute: str, *values: Any) -> FilterQuery:
        """Exact match; several values match any of them (`eq:a,b`)."""
        kept = [_text(v) for v in values if v is not None]
        if kept:
            self.params[f"filter[{attribute}]"] = f"{self.prefix}eq:{','.join(kept)}"
        return self

    def like(self, attribute: str, value: str | None) -> FilterQuery:
        """Contains `value` (case-insensitive)."""
        if value:
            self.params[f"filter[{attribute}]"] = f"{self.prefix}like:{value}"
        return self

    def metadata(self, values: dict[str, Any] | None, has_key: str | None) -> FilterQuery:
        for key, value in (values or {}).items():
            self.eq(f"metadata.{key}", value)
        if has_key:
            self.params["filter[metadata]"] = f"{self.prefix}has:{has_key}"
        return self


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def sort_field(allowed: tuple[str, ...], default_note: str = "Default: id ascending.") -> Any:
    """A `sort` argument over the documented fields (`-field` for descending)."""
    values = tuple(v for field in allowed for v in (field, f"-{field}"))
    return Annotated[
        Literal[values], Field(description=f"Sort by {', '.join(allowed)}; prefix - for descending. {default_note}")
    ]


def expand_param(tokens: list[str] | None) -> dict[str, str]:
    """`expand=a,b` (CORE_API.md §6), or nothing."""
    return {"expand": ",".join(dict.fromkeys(tokens))} if tokens else {}


# --- Times and categories given by the model ----------------------------------------------


def _input_time(value: Any, info: ValidationInfo) -> Any:
    """A time the model gives: Unix seconds, or an ISO 8601 date or date-time (UTC if no zone)."""
    return to_datetime(value, info)


UnixTimeInput = Annotated[
    datetime,
    BeforeValidator(_input_time),
    PlainSerializer(lambda moment: int(moment.timestamp()), return_type=int),
    WithJsonSchema(
        {
            "type": ["integer", "string"],
            "description": "Unix seconds, or an ISO 8601 date or date-time (UTC when no zone is given), "
            "e.g. 2026-12-31 or 2026-12-31T17:00:00Z.",
        }
    ),
]

# Offline payment categories (CORE_API.md §8.4, §8.7): Pelcro takes the string "2".."6".
PAYMENT_CATEGORIES = {"check": "2", "wire": "3", "transfer": "4", "external": "5", "cash": "6"}
PaymentCategory = Literal["check", "wire", "transfer", "external", "cash"]
PAYMENT_CATEGORY_NAMES = {code: name for name, code in PAYMENT_CATEGORIES.items()}


def embedded(model: type[BaseModel], what: str, *, or_id: bool = False) -> Any:
    """A related object as an expand embeds it (or, `or_id`, its id when not expanded):
    validated and rendered as `model` (times in ISO 8601), but published in the output
    schema as a plain object, so each tool's schema stays small (the related tool's own
    output schema describes it in full)."""
    schema: dict[str, Any] = {
        "type": ["integer", "object", "null"] if or_id else "object",
        "description": f"{what}" + (" (its id unless expanded)" if or_id else ""),
    }
    return Annotated[model, WithJsonSchema(schema)]
