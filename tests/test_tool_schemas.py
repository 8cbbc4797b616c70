"""Tool schemas every client can read (`mcp_bridge.runtime.json_schema`), for every tool
the registry holds, now and later: no `$ref`/`$defs`, an object at the top with no
top-level combinator, plain optional arguments; a compact `tools/list`; and the
`structuredContent` of real calls (results and failures) valid against the emitted
output schema."""

import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from mcp_bridge.runtime.json_schema import tool_input_schema, tool_output_schema
from mcp_bridge.runtime.registry import REGISTRY
from mcp_bridge.runtime.schemas import Page, SiteInput, ToolFailure
from mcp_bridge.servers import TOOLS
from tests.support.mcp import ERAS, mcp_session

pytestmark = pytest.mark.sqlite

COMBINATORS = ("anyOf", "oneOf", "allOf")


def walk(node, path="#"):
    """Every (path, key, value) in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def readability_problems(schema: dict, *, is_input: bool) -> list[str]:
    problems = [f"{path}: {key}" for path, key, _ in walk(schema) if key in ("$ref", "$defs")]
    problems += [f"top level: {key}" for key in COMBINATORS if key in schema]
    if schema.get("type") != "object":
        problems.append(f"top-level type is {schema.get('type')!r}, not object")
    if is_input:  # an optional argument is plain, not "X or null"
        problems += [
            f"{path}: null option"
            for path, key, value in walk(schema)
            if key == "type" and (value == "null" or (isinstance(value, list) and "null" in value))
        ]
    return problems


def test_every_registered_tool_publishes_readable_schemas():
    assert len(REGISTRY["core"]) >= len(TOOLS) > 20
    problems = {}
    for name, spec in [*REGISTRY["core"].items(), *REGISTRY["open"].items()]:
        for kind, schema in (("input", spec.input_schema()), ("output", spec.output_schema())):
            found = readability_problems(schema, is_input=kind == "input")
            if found:
                problems[f"{name} {kind}"] = found
        sdk_tool = spec.sdk_tool()
        assert sdk_tool.parameters == spec.input_schema() and sdk_tool.output_schema == spec.output_schema()
    assert not problems, json.dumps(problems, indent=1)[:3000]


class Item(BaseModel):
    id: int
    note: str | None = None
    tags: list[str] | None = None
    state: Literal["open", "paid"] | None = None


class Nested(SiteInput):
    items: list[Item] = Field(description="Nested models, referenced through $defs by pydantic.")
    maybe: Item | None = None
    count: int | None = Field(None, ge=1)


class Tree(BaseModel):
    name: str
    children: list["Tree"] = []


def test_the_transformation_on_shapes_tools_may_declare_later():
    raw = Nested.model_json_schema()
    assert "$defs" in raw  # what pydantic gives, and what must not reach clients
    emitted = tool_input_schema(raw)
    assert not readability_problems(emitted, is_input=True)
    assert emitted["properties"]["items"]["items"]["properties"]["id"] == {"type": "integer"}
    assert emitted["properties"]["count"] == {"minimum": 1, "type": "integer"}
    assert set(emitted["required"]) == {"site_id", "items"}
    # A recursive model cannot be inlined: its recursion becomes a plain object.
    output = tool_output_schema(
        [Tree.model_json_schema(mode="serialization"), ToolFailure.model_json_schema(mode="serialization")]
    )
    assert not readability_problems(output, is_input=False)
    jsonschema.Draft202012Validator(output).validate({"name": "a", "children": [{"name": "b", "children": []}]})
    jsonschema.Draft202012Validator(output).validate({"error": "not_found", "message": "m", "fields": None})
    page = tool_output_schema([Page[Item].model_json_schema(mode="serialization")])
    jsonschema.Draft202012Validator(page).validate(
        {
            "items": [{"id": 1, "note": None, "tags": None, "state": None}, {"id": 2, "state": "paid"}],
            "page": 1,
            "per_page": 1,
            "total": 1,
            "last_page": 1,
            "has_more": False,
        }
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(page).validate({"items": [{"id": "one"}]})
    with pytest.raises(jsonschema.ValidationError):  # a nullable Literal still refuses other values
        jsonschema.Draft202012Validator(page).validate(
            {
                "items": [{"id": 1, "state": "void"}],
                "page": 1,
                "per_page": 1,
                "total": 1,
                "last_page": 1,
                "has_more": False,
            }
        )


# --- Live: tools/list and real calls ------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_is_compact_and_readable_in_each_era(mcp_env, mode):
    async with mcp_session(mcp_env.url, mcp_env.token(), mode) as client:
        tools = (await client.list_tools()).tools
    listed = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    assert {tool["name"] for tool in listed} == set(TOOLS)
    for tool in listed:
        assert not readability_problems(tool["inputSchema"], is_input=True), tool["name"]
        assert not readability_problems(tool["outputSchema"], is_input=False), tool["name"]
    size = len(json.dumps({"tools": listed}, separators=(",", ":")))
    # 118 KB for 25 tools (4.7 KB a tool) with pydantic's raw schemas, 74 KB (2.9 KB) now;
    # the bound leaves room for richer tools, not for the raw schemas coming back. Session 5:
    # 3.9 KB a tool before the safe-write options and dry-run preview every write tool
    # publishes (runtime.writes), 4.6 KB with them.
    assert size / len(listed) < 5000, size


def arguments_for(schema: dict, ids: dict[str, int]) -> dict:
    """Arguments for a tool from its published schema: site 14, known ids, required rest."""
    arguments = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if name == "site_id":
            arguments[name] = 14
        elif prop.get("type") == "integer":
            arguments[name] = ids.get(name, 1)
        elif "enum" in prop:
            arguments[name] = prop["enum"][0]
        elif prop.get("type") == "string":
            arguments[name] = "usd" if name == "currency" else "schema-check@example.com"
    return arguments


@pytest.mark.parametrize("mode", ERAS)
async def test_structured_content_of_real_calls_validates_against_the_emitted_schema(mcp_env, mode):
    """Every read tool on site 14 (ids taken from the list tools' answers), every write
    tool on a site of another account (a failure), and each tool with an unknown argument
    (invalid_arguments): each answer's structuredContent validates."""
    checked = {"ok": 0, "error": 0}
    async with mcp_session(mcp_env.url, mcp_env.token(), mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        ids: dict[str, int] = {}
        ordered = sorted(tools, key=lambda name: not name.startswith("list_"))  # lists first: they give ids
        for name in ordered:
            tool, spec = tools[name], TOOLS[name]
            validator = jsonschema.Draft202012Validator(tool.output_schema)
            attempts = [{**arguments_for(tool.input_schema, ids), "not_an_argument": 1}]
            if spec.read_only:
                attempts.append(arguments_for(tool.input_schema, ids))
            else:
                attempts.append({**arguments_for(tool.input_schema, ids), "site_id": 999_999})
            for arguments in attempts:
                result = await client.call_tool(name, arguments)
                assert result.structured_content is not None, (name, result)
                validator.validate(result.structured_content)
                checked["error" if result.is_error else "ok"] += 1
                items = (result.structured_content or {}).get("items") if not result.is_error else None
                if items and name.startswith("list_"):
                    noun = name.removeprefix("list_").rstrip("s")
                    ids.setdefault(f"{noun}_id", items[0]["id"])
    assert checked["ok"] >= 10 and checked["error"] >= len(TOOLS), checked
