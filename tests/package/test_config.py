"""Every environment variable is read in `mica.config` and described in the documentation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mica import config
from mica.errors import ConfigError

PACKAGE = Path(config.__file__).parent
DOCS = PACKAGE.parent / "docs" / "configuration.rst"

# Functions that set a variable for their own calls or child processes and read it first only
# to restore it afterwards (or to keep the user's value): the only reads outside mica.config.
SAVE_AND_RESTORE = {
    "_OneBloscThread.__enter__",  # engine/h5chunks.py: BLOSC_NTHREADS=1 while decompressing
    "_simulated_now",  # demo/obsid.py: CXOTIME_NOW for the simulated upstream
}
# Methods of os.environ that change it (anything else reads it).
_WRITES = {"pop", "popitem", "clear", "update", "__setitem__", "__delitem__"}


class _EnvironUses(ast.NodeVisitor):
    """(qualname of the enclosing function, line, 'read'/'write', key node) of each use."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.uses: list[tuple[str, int, str, ast.expr | None]] = []
        self.parents: dict[ast.AST, ast.AST] = {}

    def visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.parents[child] = node
        super().visit(node)

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _use(self, node: ast.AST, kind: str, key: ast.expr | None) -> None:
        self.uses.append((".".join(self.scope), node.lineno, kind, key))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "os" and {a.name for a in node.names} & {"environ", "getenv"}:
            self._use(node, "read", None)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if node.attr == "getenv":
            self._use(node, "read", None)
        is_os = isinstance(node.value, ast.Name) and node.value.id == "os"
        if node.attr != "environ" or not is_os:
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            kind = "read" if isinstance(parent.ctx, ast.Load) else "write"
            self._use(node, kind, parent.slice)
        elif isinstance(parent, ast.Attribute):
            call = self.parents.get(parent)
            key = call.args[0] if isinstance(call, ast.Call) and call.args else None
            self._use(node, "write" if parent.attr in _WRITES else "read", key)
        else:
            self._use(node, "read", None)


def _environ_uses() -> list[tuple[str, str, int, str, ast.expr | None]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py":
            continue
        visitor = _EnvironUses()
        visitor.visit(ast.parse(path.read_text(), str(path)))
        rel = str(path.relative_to(PACKAGE.parent))
        out += [(rel, scope, line, kind, key) for scope, line, kind, key in visitor.uses]
    return out


def test_no_environment_reads_outside_config():
    reads = [
        f"{rel}:{line} (in {scope or 'the module'})"
        for rel, scope, line, kind, _ in _environ_uses()
        if kind == "read" and scope not in SAVE_AND_RESTORE
    ]
    assert not reads, "environment reads outside mica.config (add a setting there):\n" + "\n".join(
        reads
    )


def test_variables_set_elsewhere_are_named_by_config():
    literal = [
        f"{rel}:{line} ({key.value!r})"
        for rel, _, line, _, key in _environ_uses()
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    ]
    assert not literal, "variable names written out instead of mica.config's:\n" + "\n".join(
        literal
    )


def test_every_variable_is_listed_and_documented():
    constants = {v for k, v in vars(config).items() if k.isupper() and isinstance(v, str)}
    assert constants == set(config.VARIABLES)
    text = DOCS.read_text()
    missing = [var for var in config.VARIABLES if f"``{var}``" not in text]
    assert not missing, f"{DOCS.name} does not describe {missing}"


@pytest.mark.parametrize(
    ("setting", "var", "value", "expected"),
    [
        (config.workers, config.WORKERS, None, None),
        (config.workers, config.WORKERS, "3", 3),
        (config.workers, config.WORKERS, "0", 1),
        (config.cda_url, config.CDA_URL, None, None),
        (config.cda_url, config.CDA_URL, "http://mirror:8000/", "http://mirror:8000"),
        (config.cda_file_deadline, config.CDA_FILE_DEADLINE, "12.5", 12.5),
        (config.cda_run_deadline, config.CDA_RUN_DEADLINE, None, None),
        (config.cda_max_file_bytes, config.CDA_MAX_FILE_BYTES, "1000", 1000),
        (config.sim_l1_decimate, config.SIM_L1_DECIMATE, None, 1),
        (config.sim_l1_decimate, config.SIM_L1_DECIMATE, "40", 40),
        (config.sim_fault_scale, config.SIM_FAULT_SCALE, "", 1.0),
        (config.sim_fault_scale, config.SIM_FAULT_SCALE, "30", 30.0),
        (config.umask, config.UMASK, None, None),
        (config.umask, config.UMASK, "002", 0o002),
        (config.umask, config.UMASK, "0o027", 0o027),
        (config.now_override, config.NOW, None, None),
        (config.now_override, config.NOW, "2020:100", "2020:100"),
    ],
)
def test_setting_values(monkeypatch, setting, var, value, expected):
    if value is None:
        monkeypatch.delenv(var, raising=False)
    else:
        monkeypatch.setenv(var, value)
    assert setting() == expected


@pytest.mark.parametrize(
    ("setting", "var", "value"),
    [
        (config.workers, config.WORKERS, "four"),
        (config.cda_file_deadline, config.CDA_FILE_DEADLINE, "soon"),
        (config.cda_run_deadline, config.CDA_RUN_DEADLINE, "-1"),
        (config.cda_max_file_bytes, config.CDA_MAX_FILE_BYTES, "1.5"),
        (config.sim_l1_decimate, config.SIM_L1_DECIMATE, "x"),
        (config.sim_fault_scale, config.SIM_FAULT_SCALE, "lots"),
        (config.umask, config.UMASK, "9"),
        (config.umask, config.UMASK, "1000"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch, setting, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var) as err:
        setting()
    assert "\n" not in str(err.value)


def test_bad_now_names_the_variable(monkeypatch):
    from mica.time import to_secs

    monkeypatch.setenv(config.NOW, "not a date")
    with pytest.raises(ConfigError, match=config.NOW):
        to_secs(None)
