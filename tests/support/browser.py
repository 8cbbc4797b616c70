"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for page tests."""

import os

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Background networking off: this machine's closed network refuses Chromium's own calls.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
