"""Sphinx configuration of the mica documentation.

Built by ``sphinx-build -W -b html docs docs/_build/html`` (``.ci/run``). The
``click-commands`` directive (`ClickCommands`) writes the command-line reference from the
click commands themselves, so every command and option is documented as ``--help`` shows it.

The figures are the demo's: the build runs ``mica demo --out docs/_build/demo`` first when
that folder lacks the demo's last output (about three minutes; delete the folder to draw
them again after a change), or takes them from a demo already run with ``-D
mica_demo=DIR`` (``DIR`` as given to ``mica demo --out``). The pages show them from
``docs/_build/demo``, and the V&V report the demo writes (``vv_<obsid>/report.html`` with
its plots) is copied into the built site as ``demo/vv_<obsid>/``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "mica"
author = "mica developers"
copyright = "mica developers, BSD-3-Clause"  # noqa: A001 (Sphinx's name)
try:
    release = _dist_version("chandra-mica")
except PackageNotFoundError:
    release = "0+unknown"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
# Single back-quotes in docstrings name Python objects (mica's docstrings use them so).
default_role = "py:obj"
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
intersphinx_mapping: dict = {}
exclude_patterns = ["_build"]
html_theme = "alabaster"
# The text column takes the window's width up to a laptop's, so code blocks and figures
# are read at their size (alabaster's default is a fixed 940 px page, 800 px of text).
html_theme_options = {"page_width": "min(1240px, 100%)", "body_max_width": "none"}
# Code blocks wrap their long lines instead of hiding them behind a scroll bar.
html_static_path = ["_static"]
html_css_files = ["wrap.css"]
version = release

DOCS = Path(__file__).resolve().parent
#: The demo's outputs the pages show (``/_build/demo/<name>.png`` in an ``image`` path).
DEMO_OUT = DOCS / "_build" / "demo"


def _rst_text(text: str) -> str:
    """Plain help text as reST: the characters reST would read as markup escaped, the
    double hyphen of an option kept (not made a dash), and an example address such as
    ``tcp://host:8786`` left as text (reST would make it a link to nowhere)."""
    text = re.sub(r"([\\`*|])", r"\\\1", text).replace("--", "-\\-")
    return re.sub(r"\b([a-z][a-z0-9+.-]*):(?=//)", r"\1\\:", text)


def _command_rst(command, ctx) -> list[str]:  # noqa: ANN001  (click objects)
    """One command's section: its help, usage line and parameters, as ``--help`` shows them."""
    import click

    title = f"``{ctx.command_path}``"
    lines = [title, "~" * len(title), ""]
    if command.help:
        # a docstring's body keeps its indentation in click: dedented, as --help prints it
        # (an indented paragraph would be a block quote); click's \b no-rewrap marks dropped
        help_lines = inspect.cleandoc(command.help).splitlines()
        lines += [_rst_text(line) for line in help_lines if line.strip() != "\b"] + [""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["::", "", f"    {ctx.command_path} {usage}", ""]
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            kind = "Required argument" if param.required else "Optional argument"
            lines += [f"``{param.make_metavar(ctx)}``", f"    {kind}.", ""]
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            names, help_text = record
            lines += [f"``{names}``", f"    {_rst_text(help_text)}", ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            lines += _command_rst(sub, _context(sub, name, ctx))
    return lines


def _context(command, name: str, parent=None):  # noqa: ANN001, ANN202  (click objects)
    """The context ``--help`` would have (the group's settings, e.g. ``-h``, inherited)."""
    return command.make_context(name, [], parent=parent, resilient_parsing=True)


def _click_commands_directive():  # noqa: ANN202  (Sphinx is imported only by a docs build)
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class ClickCommands(SphinxDirective):
        """``.. click-commands:: module:group`` with the program name as content: a
        section per command of the click group (the group's own first), in order."""

        required_arguments = 1
        has_content = True

        def run(self):  # noqa: ANN202
            from docutils import nodes

            module, name = self.arguments[0].split(":")
            group = getattr(importlib.import_module(module), name)
            prog = " ".join(self.content).strip() or name
            lines = _command_rst(group, _context(group, prog))
            holder = nodes.section()
            holder.document = self.state.document
            nested_parse_with_titles(self.state, StringList(lines, "<click-commands>"), holder)
            return holder.children

    return ClickCommands


def _demo_done(folder: Path) -> bool:
    """Whether ``folder`` holds a finished demo's outputs: the V&V report and the plot of
    its faulty slot are what the demo writes last."""
    return any(folder.glob("vv_*/report.html")) and any(folder.glob("vv_*_slot_*.png"))


def _demo_outputs(folder: Path) -> list[Path]:
    """The files of a demo's outputs the documentation uses: its PNGs and its V&V report
    folders (``report.html`` and the slot plots), not the archive."""
    reports = [p for p in folder.glob("vv_*/*") if p.suffix in (".html", ".png")]
    return sorted([*folder.glob("*.png"), *reports])


def _build_demo(app) -> None:  # noqa: ANN001  (Sphinx's application)
    """``builder-inited``: put the demo's outputs into `DEMO_OUT`, from ``-D mica_demo=DIR``
    or by running the demo (in a fresh process, on this checkout's code)."""
    given = app.config.mica_demo
    if given:
        source = Path(given).resolve()
        if not _demo_done(source):
            raise RuntimeError(f"mica_demo={given}: no finished `mica demo --out` there")
        if source != DEMO_OUT:
            for path in _demo_outputs(source):
                target = DEMO_OUT / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
        return
    if _demo_done(DEMO_OUT):
        return
    command = [sys.executable, "-m", "mica.cli", "demo", "--out", str(DEMO_OUT), "--quiet"]
    print("running the demo for the documentation's figures:", " ".join(command[1:]))
    run = subprocess.run(command, cwd=DOCS.parent, capture_output=True, text=True)
    if run.returncode != 0 or not _demo_done(DEMO_OUT):
        raise RuntimeError(f"the demo failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")


def _copy_reports(app, exception) -> None:  # noqa: ANN001  (Sphinx's application)
    """``build-finished``: the demo's V&V report folders into the site, as
    ``demo/vv_<obsid>/`` (the pages link to their ``report.html``)."""
    if exception is not None or app.builder.format != "html":
        return
    for path in _demo_outputs(DEMO_OUT):
        if path.parent != DEMO_OUT:
            target = Path(app.outdir) / "demo" / path.relative_to(DEMO_OUT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def setup(app):  # noqa: ANN001, ANN201
    app.add_directive("click-commands", _click_commands_directive())
    app.add_config_value("mica_demo", "", "env")
    app.connect("builder-inited", _build_demo)
    app.connect("build-finished", _copy_reports)
    return {"parallel_read_safe": True}
