"""README's settings tables list every environment variable the code reads, and nothing else.

The variables read are found two ways, so the test holds whichever accessor the settings
use (`os.environ.get`, `os.getenv`, helpers like `env_int`, django-environ's `env(...)` /
`env.int(...)`):
- at run time: a fresh interpreter imports the settings, sets Django up, imports every
  module of the gateway's packages and loads the sandbox's config, while `os.environ`
  records each name asked for by the project's own code (a read made by a library on its
  own behalf, say Celery looking for its config, does not count; one made by django-environ
  for our settings does);
- by a static scan for reads inside functions not run at import (`environ.get("X")`,
  `getenv("X")`, `environ["X"]`, `env*("X")`), and for `${X:-default}` in the launchers
  (scripts/run.sh, scripts/dev_env.sh, Procfile, Dockerfile, docker-compose.yml).
"""

import json
import re
import subprocess
import sys

from devtools.servers import ROOT

PACKAGES = ["pelcro_gateway", "accounts", "mcp_bridge", "ops", "sandbox"]
LAUNCHERS = ["scripts/run.sh", "scripts/dev_env.sh", "Procfile", "Dockerfile", "docker-compose.yml"]
# Read by Django's own entry points, not a setting of the gateway.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}

RECORDER = r"""
import json, os, sys, pkgutil, importlib
root = sys.argv[1]
sys.path.insert(0, root)
read = set()
library_dirs = ("site-packages", "dist-packages", "/lib/python")

def caller_is_ours():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(root) and "/.venv/" not in name and "/tests/" not in name:
            return True
        # os / collections.abc / django-environ: keep walking up to whoever asked.
        if (name.startswith("<frozen") or name.endswith(("/os.py", "/_collections_abc.py"))
                or "/environ/" in name):
            frame = frame.f_back
            continue
        return False
    return False

Environ = type(os.environ)
original_getitem, original_contains = Environ.__getitem__, Environ.__contains__
def getitem(self, key):
    if isinstance(key, str) and caller_is_ours():
        read.add(key)
    return original_getitem(self, key)
def contains(self, key):
    if isinstance(key, str) and caller_is_ours():
        read.add(key)
    return original_contains(self, key)
Environ.__getitem__, Environ.__contains__ = getitem, contains

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")
import django
django.setup()
for package in sys.argv[2:]:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if ".tests" in info.name or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
from sandbox.config import load_config
load_config()
print(json.dumps(sorted(read)))
"""

STATIC = re.compile(
    r"""(?:\benviron\s*\.\s*get|\bgetenv|\benv(?:_[a-z]+)?(?:\s*\.\s*[a-z]+)?|\benv\s*\.\s*get)\s*\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\benviron\s*\[\s*["']([A-Z][A-Z0-9_]+)["']"""
)
SHELL_DEFAULT = re.compile(r"\$\{([A-Z][A-Z0-9_]+):?[-=]")


def read_at_import() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", RECORDER, str(ROOT), *PACKAGES[:-1]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "GATEWAY_ENV": "dev"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def read_in_source() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for match in STATIC.finditer(path.read_text()):
                names.add(match.group(1) or match.group(2))
    for launcher in LAUNCHERS:
        names |= set(SHELL_DEFAULT.findall((ROOT / launcher).read_text()))
    return names


def documented() -> set[str]:
    """Names in the first column of README's settings tables: those whose header starts
    with "variable" (`A` / `B` rows count both)."""
    names, in_settings_table, previous = set(), False, ""
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = line.split("|")
        if not line.startswith("|"):
            in_settings_table = False
        elif not previous.startswith("|"):  # a table's header row
            in_settings_table = cells[1].strip() == "variable"
        elif in_settings_table:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1]))
        previous = line
    return names


def test_readme_documents_every_setting_the_code_reads_and_no_other():
    at_import = read_at_import()
    assert {"SECRET_KEY", "PUBLIC_URL", "REDIS_URL", "SANDBOX_SEED"} <= at_import  # the recorder works
    code = (at_import | read_in_source()) - NOT_SETTINGS
    readme = documented()
    assert not code - readme, f"read by the code but missing from README's settings tables: {sorted(code - readme)}"
    assert not readme - code, f"in README's settings tables but read nowhere: {sorted(readme - code)}"
