"""An upstream answer that does not have the shape a tool expects is an `upstream_error`
failure, never a crash, the same way on both servers (`runtime.failures.parse_answer`, used
by `core.results.parse` and `open.shapes.parse`): after a write, the message says it was most
likely applied and how to check before trying again."""

import pytest
from pydantic import BaseModel

from mcp_bridge.core.client import CoreAPIResponse
from mcp_bridge.core.results import parse as core_parse
from mcp_bridge.open.client import OpenAPIResponse
from mcp_bridge.open.shapes import parse as open_parse
from mcp_bridge.runtime.results import ToolFailed


class Invoice(BaseModel):
    id: int


SERVERS = [(core_parse, CoreAPIResponse, "Core API"), (open_parse, OpenAPIResponse, "Open API")]


@pytest.mark.parametrize(("parse", "response", "api"), SERVERS)
def test_a_read_of_the_wrong_shape_may_have_succeeded(parse, response, api):
    assert parse(Invoice, {"id": 3}).id == 3
    for answer in (None, response(status=200, data={"id": "x"})):  # no `check`: not a tool's write
        with pytest.raises(ToolFailed) as failed:
            parse(Invoice, {"id": "x"}, answer)
        assert failed.value.failure.model_dump(exclude_none=True) == {
            "error": "upstream_error",
            "message": f"The {api} answered with an unexpected invoice shape (1 problem(s)); the request itself "
            "may have succeeded.",
        }


@pytest.mark.parametrize(("parse", "response", "api"), SERVERS)
def test_a_write_answered_in_the_wrong_shape_was_most_likely_applied(parse, response, api):
    answer = response(status=201, data={"id": "x"}, check="read invoice 7 with get_invoice")
    with pytest.raises(ToolFailed) as failed:
        parse(Invoice, {"id": "x"}, answer)
    failure = failed.value.failure
    assert failure.error == "upstream_error" and failure.may_have_been_applied is True
    assert failure.message.startswith(
        f"The {api} answered with an unexpected invoice shape (1 problem(s)); it answered 201, so the change was "
        "most likely applied. Before trying again, read invoice 7 with get_invoice; list_recent_writes shows"
    )
