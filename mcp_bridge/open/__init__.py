"""The Open API server (at `/open`), to come: the Open API client, the subscriber session
and the Open tools (docs/OPEN_API.md, docs/DESIGN.md "Layout").

Empty for now: it holds the place beside `core/` so the import contracts (`.importlinter`)
already keep `edge`, `runtime`, `upstream` and `audit` from depending on it.
"""
