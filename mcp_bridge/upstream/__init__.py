"""Talking to the upstreams: the HTTP client base (`http`), every upstream error, the
limiter's included (`errors`), the gate each request passes (`gate`), the shared Redis
limiter and its Lua scripts (`limiter`, `lua/`), its usage read model for ops (`usage`),
and the process's Redis clients (`redis_clients`, one owner)."""
