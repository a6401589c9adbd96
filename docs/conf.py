"""Sphinx configuration of the mica documentation.

Built by ``sphinx-build -W -b html docs docs/_build/html`` (``.ci/run``). The
``click-commands`` directive (`ClickCommands`) writes the command-line reference from the
click commands themselves, so every command and option is documented as ``--help`` shows it.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

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
# Code blocks wrap their long lines instead of hiding them behind a scroll bar.
html_static_path = ["_static"]
html_css_files = ["wrap.css"]
version = release


def _rst_text(text: str) -> str:
    """Plain help text as reST: the characters reST would read as markup escaped, and the
    double hyphen of an option kept (not made a dash)."""
    return re.sub(r"([\\`*|])", r"\\\1", text).replace("--", "-\\-")


def _command_rst(command, ctx) -> list[str]:  # noqa: ANN001  (click objects)
    """One command's section: its help, usage line and parameters, as ``--help`` shows them."""
    import click

    title = f"``{ctx.command_path}``"
    lines = [title, "~" * len(title), ""]
    if command.help:
        lines += [_rst_text(line) for line in command.help.splitlines()] + [""]
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


def setup(app):  # noqa: ANN001, ANN201
    app.add_directive("click-commands", _click_commands_directive())
    return {"parallel_read_safe": True}
