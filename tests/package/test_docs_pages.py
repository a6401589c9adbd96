"""The documentation as a reader sees it: every figure the demo draws is shown on a page,
every page the issue asks for is in the guide, and ``docs/screenshots.py`` (which CI runs
on the built site in headless Chromium) finds what a reader would meet: a code block
clipped behind a scroll bar, a page wider than the window, an image not shown, reST left
raw, a broken link."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys

import pytest

from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _demo_pngs() -> set[str]:
    """The PNG names the demo writes, as patterns (``{obsid}`` stands for a number)."""
    names = set()
    for path in (REPO_ROOT / "mica" / "demo").glob("*.py"):
        names |= set(re.findall(r'out / f?"([^"]+\.png)"', path.read_text()))
    return {re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(n)) for n in names}


def test_every_demo_figure_is_shown_and_every_shown_figure_is_the_demos():
    shown = set()
    for page in DOCS.glob("*.rst"):
        shown |= set(re.findall(r"^\s*\.\. (?:image|figure):: (\S+)", page.read_text(), re.M))
    assert shown and all(s.startswith("/_build/demo/") for s in shown), shown
    names = {s.removeprefix("/_build/demo/") for s in shown}
    patterns = _demo_pngs()
    assert len(patterns) == 9, patterns
    for pattern in patterns:
        assert any(re.fullmatch(pattern, n) for n in names), pattern
    for name in names:
        assert any(re.fullmatch(p, name) for p in patterns), name
    # the report is linked where the site holds it (conf.py copies it there)
    for page in ("demo.rst", "vv.rst"):
        assert "<demo/vv_4387/report.html>`__" in (DOCS / page).read_text(), page


def test_user_guide_has_the_statistics_and_vv_pages():
    index = (DOCS / "index.rst").read_text()
    for page in ("demo", "archives", "statistics", "vv", "cli"):
        assert f"\n   {page}\n" in index, page
    conf = _module("conf")
    assert conf.DEMO_OUT == DOCS / "_build" / "demo"  # where the image paths point


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LONG = "mica update aca-l0 --start 2012:001 --stop 2013:001 " * 6
# alabaster's code blocks scroll: a long line is clipped behind a scroll bar unless wrapped
PAGE = """<!DOCTYPE html><html><head><style>pre {{ overflow: auto; }}</style>{css}</head>
<body><pre>{long}</pre><p>{text}</p>{extra}</body></html>"""


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")
def test_screenshots_checker_finds_what_a_reader_meets(tmp_path):
    screenshots = _module("screenshots")
    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    shutil.copy(DOCS / "_static" / "wrap.css", site / "_static")
    css = '<link rel="stylesheet" href="_static/wrap.css">'
    (site / "good.html").write_text(
        PAGE.format(css=css, long=LONG, text="plain", extra='<a href="bad.html#top">b</a>')
    )
    (site / "bad.html").write_text(
        PAGE.format(
            css="",
            long=LONG,
            text="see :func:`x` and ``y``",
            extra='<img src="missing.png"><a href="good.html#nowhere">g</a><p id="top"></p>',
        )
    )
    profile = tmp_path / "profile"
    good = screenshots.look_at(site / "good.html", site, None, profile)
    assert good.problems == []  # wrap.css wraps the long line
    bad = screenshots.look_at(site / "bad.html", site, tmp_path / "shots", profile)
    found = "\n".join(bad.problems)
    assert "clipped behind a scroll bar: pre" in found
    assert "image not shown: missing.png" in found
    assert "raw reST in the text: ':func:`'" in found and "``y``" in found
    assert "no id 'nowhere'" in found and "no " + str(site / "missing.png") in found
    assert bad.screenshots and all(p.exists() for p in bad.screenshots)
    assert screenshots.pages(site) == [site / "bad.html", site / "good.html"]
