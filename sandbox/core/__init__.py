"""The Core API (/api/v1/core) over the shared sandbox world (CORE_API.md)."""
