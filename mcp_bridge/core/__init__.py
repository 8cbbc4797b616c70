"""The Core API server's parts: the Core API client (`client`), the one call path of its
tools (`calls`), rendering (`results`), and the tools, one module per resource
(`customers`, `invoices`, `subscriptions`, `charges`, `plans`, `coupons`).
The server itself is assembled in `mcp_bridge.servers`."""
