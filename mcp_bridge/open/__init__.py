"""The Open API server (at `/open`), acting for one signed-in subscriber of one site
(docs/OPEN_API.md, docs/DESIGN.md "The Open server").

- `client`: the Open API client (site_id on every call, the customer's JWT, typed errors,
  login / refresh / logout).
- `credentials`: the connection's Pelcro JWT: read, refreshed before it expires, and the
  connection ended when Pelcro refuses it.

The server at `/open`, the subscriber sign-in and the tools are still to come (issue 14).
"""
