"""The MCP tools, one module per Core API resource; `catalog` collects them."""
