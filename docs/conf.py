"""Sphinx configuration of the mica documentation.

Built by ``sphinx-build -W -b html docs docs/_build/html`` (``.ci/run``).
"""

from __future__ import annotations

import os
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
html_static_path: list = []
version = release
