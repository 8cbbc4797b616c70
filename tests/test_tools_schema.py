"""Tool declarations: names, annotations, descriptions, and valid JSON Schemas, as the
registry declares them and as a client receives them over the wire."""

import jsonschema
import pytest

from mcp_bridge.servers import TOOLS
from tests.support.mcp import CORE_TOOLS, WRITE_TOOLS, mcp_session

DESTRUCTIVE = {
    "delete_customer",
    "void_invoice",
    "mark_invoice_uncollectible",
    "cancel_subscription",
    "cancel_refunds",
    "delete_address",
}
LISTS = {name for name in CORE_TOOLS if name.startswith("list_")}
# The Core API's documented sort fields per list (CORE_API.md §4); none for coupons, charges,
# refunds and addresses.
SORTS = {
    "list_customers": {"id", "email"},
    "list_invoices": {"id", "created_at", "status"},
    "list_plans": {"id", "nickname"},
    "list_subscriptions": {"status"},
    "list_coupons": set(),
    "list_charges": set(),
    "list_refunds": set(),
    "list_addresses": set(),
}
# Every list tool's filters: exactly the attributes CORE_API.md §5 documents, as friendly
# arguments (besides page, per_page, sort; expand and include embed related objects).
FILTERS = {
    "list_customers": {
        "email",
        "email_contains",
        "first_name",
        "last_name",
        "ids",
        "metadata",
        "has_metadata_key",
        "match",
        "expand",
    },
    "list_invoices": {"ids", "status_in", "metadata", "has_metadata_key", "match"},
    "list_refunds": {"include_charge"},
    "list_subscriptions": set(),
    "list_plans": set(),
    "list_coupons": set(),
    "list_charges": set(),
    "list_addresses": set(),
}


def test_the_core_tools_are_all_declared():
    assert set(TOOLS) >= CORE_TOOLS


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_tool_states_all_four_annotations_truthfully(name):
    annotations = TOOLS[name].annotations.model_dump(by_alias=True)
    for hint in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"):
        assert isinstance(annotations[hint], bool), (name, hint)
    if name in CORE_TOOLS:
        assert annotations["readOnlyHint"] is (name not in WRITE_TOOLS)
        assert annotations["destructiveHint"] is (name in DESTRUCTIVE)
        assert annotations["openWorldHint"] is True  # they all reach the Core API
        if annotations["readOnlyHint"]:
            assert annotations["idempotentHint"] is True
        if name.startswith("create_"):
            assert annotations["idempotentHint"] is False  # each call creates another object


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_schema_is_valid_json_schema(name):
    spec = TOOLS[name]
    tool = spec.sdk_tool()
    for schema in (tool.parameters, tool.output_schema):
        assert schema["type"] == "object"
        jsonschema.validators.validator_for(schema).check_schema(schema)
    inputs = tool.parameters
    assert inputs["additionalProperties"] is False
    if name == "get_account":  # the connected account itself: no site
        assert inputs.get("properties", {}) == {}
    elif name == "list_recent_writes":  # the connection's own calls, on every site
        assert "site_id" not in inputs["properties"] and "required" not in inputs
    else:
        assert "site_id" in inputs["required"] and inputs["properties"]["site_id"]["type"] == "integer"
    # The output schema admits both the typed result and the failure shape.
    jsonschema.validate({"error": "not_found", "message": "Customer 1 was not found on site 14."}, tool.output_schema)


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_tools_page_and_sort(name):
    properties = TOOLS[name].sdk_tool().parameters["properties"]
    assert properties["page"]["minimum"] == 1
    assert (properties["per_page"]["minimum"], properties["per_page"]["maximum"]) == (1, 100)
    if SORTS[name]:
        # An optional argument is published plain (runtime.json_schema): the enum itself.
        assert set(properties["sort"]["enum"]) == SORTS[name] | {f"-{field}" for field in SORTS[name]}
    else:
        assert "sort" not in properties
    # One object admitting the page or a failure (test_tool_schemas.py checks real answers).
    output = TOOLS[name].sdk_tool().output_schema
    assert {"items", "page", "per_page", "total", "last_page", "has_more"} <= set(output["properties"])
    assert output["properties"]["items"]["type"] == "array" and output["properties"]["has_more"]["type"] == "boolean"


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_tools_offer_exactly_the_documented_filters(name):
    properties = set(TOOLS[name].sdk_tool().parameters["properties"])
    assert properties - {"site_id", "page", "per_page", "sort"} == FILTERS[name]


@pytest.mark.parametrize(
    "name,undocumented",
    [
        ("list_invoices", {"customer_id"}),
        ("list_subscriptions", {"status", "customer_id"}),
        ("list_charges", {"status", "customer_id", "sort"}),
    ],
)
def test_list_tools_offer_no_filter_the_core_api_lacks(name, undocumented):
    assert not undocumented & set(TOOLS[name].sdk_tool().parameters["properties"])


@pytest.mark.parametrize("name", sorted(CORE_TOOLS))
def test_descriptions_tell_an_assistant_what_matters(name):
    description = TOOLS[name].description
    assert len(description) > 80
    if name in DESTRUCTIVE:
        assert "irreversible" in description.lower() or "cannot be undone" in description.lower()
    if name in {"list_invoices", "get_invoice", "list_charges", "create_offline_charge", "create_invoice"}:
        assert "cents" in description
    if name in {"list_invoices", "list_charges"}:  # what the Core API cannot do is said, not faked
        assert "CANNOT" in description and "customer" in description
    if name in {"list_subscriptions", "list_addresses"}:
        assert "get_customer" in description


def test_timestamps_are_iso_8601_strings_in_every_output_schema():
    for name, spec in TOOLS.items():
        text = str(spec.sdk_tool().output_schema)
        assert "'created_at': {'type': ['integer'" not in text, name
    customer = TOOLS["get_customer"].sdk_tool().output_schema["properties"]
    assert customer["created_at"] == {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "ISO 8601 UTC time (Pelcro sends Unix seconds).",
    }


@pytest.mark.sqlite
async def test_the_wire_carries_the_same_valid_schemas(mcp_env):
    token = mcp_env.token()
    async with mcp_session(mcp_env.url, token, "2026-07-28") as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == set(TOOLS)
    for tool in tools:
        assert tool.description and tool.title
        for schema in (tool.input_schema, tool.output_schema):
            jsonschema.validators.validator_for(schema).check_schema(schema)
        hints = tool.annotations
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
