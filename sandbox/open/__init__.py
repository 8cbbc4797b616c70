"""The Open API (`/api/v1/sdk`, OPEN_API.md) over the sandbox's shared data world."""
