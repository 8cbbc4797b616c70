"""The tool framework both MCP servers use: the `@tool` registry (`registry`), the
`CallContext` handed to every handler (`context`), results and failures (`results`,
`failures`), the read-only rule (`read_only`), the shared input/output shapes (`schemas`)
and the audited, principal-scoped server class (`server`)."""
