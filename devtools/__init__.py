"""Development tools shared by the tests and the benchmarks: real server processes on free
loopback ports (`servers`) and the OAuth client flow (`oauth_client`). Neither `tests/`
nor `bench/` owns them, so `bench/` never imports `tests/` (an import-linter contract)."""
