"""The Open API server (at `/open`), acting for one signed-in subscriber of one site
(docs/OPEN_API.md, docs/DESIGN.md "The Open server").

- `client`: the Open API client (site_id on every call, the customer's JWT, typed errors,
  login / refresh / logout).
- `credentials`: the connection's Pelcro JWT: read, refreshed before it expires, and the
  connection ended when Pelcro refuses it.
- `sign_in`: a subscriber's e-mail + password checked through the Open API login.
- `sign_out` (with `tasks`): a connection's Pelcro JWT signed out at Pelcro and deleted
  whenever the connection ends, at once and by beat's sweep; `connections`: the
  subscriber's connected apps and how a person ends one.
- `calls`: `open_api`, the one path of every Open tool call (the token's site and customer,
  the JWT, the limiter's budgets, the audit record, failures as tool errors).
- the tools, a module per topic: `site`, `profile`, `subscriptions`, `invoices`,
  `payment_methods`, `addresses`, `newsletters`; `shapes` and `previews` are theirs.

The server at `/open` is assembled in `mcp_bridge.servers` / `mcp_bridge.asgi`.
"""
