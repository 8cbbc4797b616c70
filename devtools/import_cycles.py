"""Fail if any module-level import cycle exists in the project (`make lint` runs it).

import-linter's `acyclic_siblings` contract (.importlinter) rules out cycles between
sibling packages; this checks single modules too (a ↔ b inside one package), with the
graph import-linter builds (grimp). Imports inside functions count: a cycle hidden in a
function is still a cycle. Usage: `python -m devtools.import_cycles [package ...]`.
Exit status 1 and each cycle printed when there is one.
"""

from __future__ import annotations

import sys

import grimp

PACKAGES = ("pelcro_gateway", "ops", "mcp_bridge", "accounts", "sandbox", "bench", "devtools", "tests")


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main(packages: list[str]) -> int:
    graph = grimp.build_graph(*packages, include_external_packages=False)
    found = cycles(graph)
    for component in found:
        print("import cycle between: " + ", ".join(component))
    if not found:
        print(f"no import cycle in {', '.join(packages)} ({len(graph.modules)} modules)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(PACKAGES)))
