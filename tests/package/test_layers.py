"""The package's import structure is a checked contract: layers, no circles, readers apart.

The layers, top to bottom, are declared once in ``pyproject.toml`` (``[tool.importlinter]``)
and drawn in ``docs/layout.rst``; ``.ci/run`` runs ``lint-imports`` on them and these tests run
the same contracts, and list every import circle between modules (type-only imports excepted),
so a new module that bends the flow back fails here with the offending import named.
"""

from __future__ import annotations

import subprocess
import sys

import grimp
import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("mica", exclude_type_checking_imports=True)


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected sets of two or more modules (Tarjan's algorithm, iterative)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in order:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        order[root] = low[root] = len(order)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in order:
                    order[child] = low[child] = len(order)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], order[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == order[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1:
                        found.append(sorted(members))
    return found


def test_no_import_circles(graph: grimp.ImportGraph) -> None:
    circles = _circles(graph)
    detail = [
        " <-> ".join(c)
        + ": "
        + "; ".join(
            f"{a} -> {b}"
            for a in c
            for b in sorted(graph.find_modules_directly_imported_by(a))
            if b in c
        )
        for c in circles
    ]
    assert not circles, "import circles:\n" + "\n".join(detail)


def test_circle_finder_finds_a_circle() -> None:
    """The finder itself: a graph with a circle of three and a tail reports the three."""
    g = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d"):
        g.add_module(name)
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")):
        g.add_import(importer=importer, imported=imported)
    assert _circles(g) == [["p.a", "p.b", "p.c"]]


def test_layer_contracts_hold() -> None:
    """``lint-imports`` on the contracts of pyproject.toml: the layers, and readers apart.

    In a child process: import-linter configures logging (``dictConfig``), which would
    disable the loggers of the tests after this one.
    """
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "2 kept, 0 broken" in run.stdout
