"""What stands in front of the SDK, for both MCP servers (outermost first): Host/Origin
(`gates.OriginGate`), bearer auth with the per-process token check cache
(`gates.BearerGate`, `auth.PrincipalTokenVerifier`, `credential_cache`), POST only
(`gates.PostOnlyGate`) and the write-scope gate (`gates.WriteScopeGate`)."""
