"""Tool schemas every MCP client can read: self-contained, an object at the top, compact.

Pydantic's JSON Schema is correct but not what many clients read: it references shared
definitions (`$defs`/`$ref`), spells an optional field as `anyOf: [X, {type: null}]`, and
titles every property. Some clients (and the model APIs they forward schemas to) cannot
resolve references or combinators, and a large `tools/list` costs every conversation
context. `tool_input_schema` and `tool_output_schema` turn pydantic's schema into:

- no `$ref`/`$defs`: every reference inlined (a recursive model, which cannot be inlined,
  becomes a plain `{"type": "object"}` there);
- `type: object` at the top, never a top-level `anyOf`: an output that is "the result or
  a ToolFailure" is one object whose properties are both models' (none required, since
  either may be present);
- inputs: an optional argument is just its own schema (`{"type": "integer"}`), left out of
  `required`; null is still accepted by the tool's model;
- outputs: a field that may be null is `{"type": ["integer", "null"]}` where the field has
  one simple type (a `type` list, not a combinator), so `structuredContent` still
  validates against the emitted schema;
- no generated `title`s, no `default: null`.

Used by `runtime.registry` for every tool, so tools declared anywhere get it.
"""

from __future__ import annotations

import copy
from typing import Any

# Keywords whose value is one subschema, a list of subschemas, or a map of subschemas.
_ONE = ("items", "additionalProperties", "propertyNames", "not", "contains", "if", "then", "else")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP = ("properties", "patternProperties", "dependentSchemas")


def tool_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's `inputSchema` from its input model's pydantic schema."""
    return _top_object(_compact(_inline(schema), nullable="drop"))


def tool_output_schema(schemas: list[dict[str, Any]], description: str | None = None) -> dict[str, Any]:
    """A tool's `outputSchema` admitting an object matching any of `schemas` (each a
    pydantic object schema): one object with the properties of all of them. The
    properties of the second and later schemas lose their descriptions: `description`
    (said once) describes them, and they repeat in every tool's schema."""
    objects = [_compact(_inline(schema), nullable="type_list") for schema in schemas]
    objects[1:] = [without_descriptions(obj) for obj in objects[1:]]
    if len(objects) == 1:
        return _top_object(objects[0])
    properties: dict[str, Any] = {}
    for obj in objects:
        for name, prop in obj.get("properties", {}).items():
            if name in properties and properties[name] != prop:
                # The same name with different shapes in two arms: either may come.
                properties[name] = {"anyOf": [properties[name], prop]}
            else:
                properties[name] = prop
    merged: dict[str, Any] = {"type": "object", "properties": properties}
    if description:
        merged["description"] = description
    return merged


def _top_object(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every local `#/$defs/...` reference replaced by its definition."""
    defs = schema.get("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen or name not in defs:
                target: dict[str, Any] = {"type": "object"}  # recursion cannot be inlined
            else:
                target = resolve(copy.deepcopy(defs[name]), (*seen, name))
            siblings = {k: resolve(v, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: resolve(v, seen) for k, v in node.items() if k != "$defs"}

    return resolve(schema, ())


def _compact(node: Any, *, nullable: str) -> Any:
    """Titles and `default: null` dropped; `anyOf [X, null]` simplified (`nullable`:
    "drop" keeps X alone, "type_list" makes X's single type a list with "null")."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _MAP and isinstance(value, dict):
            out[key] = {name: _compact(sub, nullable=nullable) for name, sub in value.items()}
        elif key in _MANY and isinstance(value, list):
            out[key] = [_compact(sub, nullable=nullable) for sub in value]
        elif key in _ONE and isinstance(value, dict):
            out[key] = _compact(value, nullable=nullable)
        else:
            out[key] = value
    if out.get("default", ...) is None:
        del out["default"]
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del out["anyOf"]
        if nullable == "drop":
            simplified = rest[0] if len(rest) == 1 else {"anyOf": rest}
        elif len(rest) == 1 and isinstance(rest[0].get("type"), str):
            simplified = {**rest[0], "type": [rest[0]["type"], "null"]}
            if "enum" in simplified:  # a nullable Literal: null must be one of the values too
                simplified["enum"] = [*simplified["enum"], None]
        elif all(isinstance(option.get("type"), str) and len(option) == 1 for option in rest):
            simplified = {"type": [option["type"] for option in rest] + ["null"]}
        else:
            simplified = {"anyOf": [*rest, {"type": "null"}]}
        out = {**simplified, **out}
    return out


def without_descriptions(node: Any) -> Any:
    """`node` with the `description` of every (sub)schema removed."""
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description" and isinstance(value, str):
            continue
        if key in _MAP and isinstance(value, dict):
            out[key] = {name: without_descriptions(sub) for name, sub in value.items()}
        else:
            out[key] = without_descriptions(value) if isinstance(value, (dict, list)) else value
    return out
