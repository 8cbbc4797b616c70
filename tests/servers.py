"""Moved to `devtools.servers` (shared with the benchmarks); kept importable here for tests
written against the old place. New code imports devtools.servers."""

from devtools.servers import OUTPUT_DIR, ROOT, ServerProcess, database_url_of, free_port, uvicorn_argv

__all__ = ["OUTPUT_DIR", "ROOT", "ServerProcess", "database_url_of", "free_port", "uvicorn_argv"]
