"""Look at the built documentation as a reader does: headless Chromium renders every page.

Usage (after ``sphinx-build -W -b html docs docs/_build/html``)::

    python docs/screenshots.py docs/_build/html [--out docs/_build/screenshots]

For every HTML page under the built site (the demo's ``report.html`` included) it

* takes screenshots of the whole page, 1280 px wide (``<out>/<page>.png``, and
  ``<page>.2.png`` ... for a page taller than 16000 px), and cuts them in screen-high tiles
  (``<out>/<page>-1.png``, ...) that an image viewer shows at full size;
* loads a copy of the page with a small script injected (``chromium --dump-dom``) that
  reports what a reader would meet: an element clipping its content behind a scroll bar
  (``scrollWidth`` over ``clientWidth``: a code block too wide for the page), a page wider
  than the window, an image that did not load, and reST markup left raw in the text;
* follows every link and image of the page inside the site: the file must exist, and the
  ``#anchor`` must be an ``id`` of it.

It prints one line per problem and exits 1 when there is any (0 otherwise), so ``.ci/run``
checks the built site with it. Nothing is downloaded: the pages are read from disk, and
Chromium is told not to go on the network.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH = 1280
#: The height of one tile of a screenshot (one screen of a laptop, about).
TILE_HEIGHT = 1600
#: The tallest screenshot taken at once (Chromium draws no more); a longer page is taken
#: in several, its content shifted up by this height each time.
MAX_HEIGHT = 16000
PROBE_ID = "mica-docs-probe"
#: Runs at the page's load event and appends its findings as JSON in a <pre id=PROBE_ID>.
PROBE_SCRIPT = (
    """<script>
window.addEventListener('load', () => {
  const found = {clipped: [], wide: [], images: [], raw: [], height: 0, width: 0, window: 0};
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1) {
      found.clipped.push(el.tagName.toLowerCase() + ' (' + el.scrollWidth + ' px in '
        + el.clientWidth + ' px): ' + el.textContent.trim().slice(0, 70));
    }
  }
  // the innermost elements reaching past the window's right edge (what widens the page)
  const past = (el) => el.getBoundingClientRect().right > window.innerWidth + 1;
  for (const el of document.body.querySelectorAll('*')) {
    if (past(el) && !Array.from(el.children).some(past)) {
      found.wide.push(el.tagName.toLowerCase() + ': ' + el.textContent.trim().slice(0, 70));
    }
  }
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) found.images.push(img.getAttribute('src'));
  }
  // reST markup left in the text a reader sees; Python listings are left out (their
  // docstrings are reST, as they should be)
  const listings = Array.from(document.querySelectorAll('div.highlight-python'));
  listings.forEach((el) => { el.style.display = 'none'; });
  const raw = /``[^`]+``|:(?:func|class|meth|mod|doc|ref|obj|attr|option):`|^\\.\\. [a-z-]+::/gm;
  found.raw = (document.body.innerText.match(raw) || []).slice(0, 5);
  listings.forEach((el) => { el.style.display = ''; });
  found.height = document.documentElement.scrollHeight;
  found.width = document.documentElement.scrollWidth;
  found.window = window.innerWidth;
  const out = document.createElement('pre');
  out.id = '"""
    + PROBE_ID
    + """';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""
)


@dataclass
class PageReport:
    """What one page showed: its problems (one line each) and its screenshots."""

    page: Path
    problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


def _chromium(profile: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium on local files only (no network, no first-run work)."""
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--mute-audio",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def probe(page: Path, profile: Path, width: int = WIDTH) -> dict:
    """Load ``page`` with `PROBE_SCRIPT` injected, in a window ``width`` px wide; return the
    script's findings (``clipped``, ``wide``, ``images``, ``raw``, ``height``, ``width``,
    ``window``).

    The probed copy sits beside the page (so its relative links resolve) and is removed.
    """
    html = page.read_text(encoding="utf-8")
    copy = page.with_name(f".probe-{page.name}")
    at = html.rfind("</body>")
    copy.write_text(html[:at] + PROBE_SCRIPT + html[at:] if at >= 0 else html + PROBE_SCRIPT)
    try:
        dom = _chromium(profile, f"--window-size={width},1000", "--dump-dom", copy.as_uri()).stdout
    finally:
        copy.unlink()
    found = re.search(rf'<pre id="{PROBE_ID}">(.*?)</pre>', dom, re.S)
    if found is None:
        raise RuntimeError(f"{page}: Chromium did not run the probe (got {len(dom)} bytes)")
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


class _Links(HTMLParser):
    """The ``href``/``src`` targets and the ``id``s of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and tag != "script":
                self.targets.append(value)
            elif name in ("id", "name") and value:
                self.ids.add(value)


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def broken_links(page: Path, site: Path) -> list[str]:
    """Links and images of ``page`` into the site whose file or ``#anchor`` is missing (and
    any link that would leave the computer: the docs and the report work offline, but
    ``http(s)`` links to other sites are allowed in the text)."""
    problems = []
    for target in _parse(page).targets:
        parts = urlsplit(target)
        if parts.scheme in ("http", "https", "mailto", "data", "javascript"):
            continue
        if parts.scheme or parts.netloc:
            problems.append(f"link to {target!r}: not a file of the site")
            continue
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not path.exists():
            problems.append(f"broken link {target!r}: no {path}")
        elif parts.fragment and path.suffix == ".html" and site in path.parents:
            if unquote(parts.fragment) not in _parse(path).ids:
                problems.append(f"broken link {target!r}: no id {parts.fragment!r} there")
    return problems


def _shifted(page: Path, offset: int) -> Path:
    """A copy of ``page`` beside it whose content starts ``offset`` px higher, so that a
    window from its top shows the page from ``offset`` down."""
    html = page.read_text(encoding="utf-8")
    style = f"<style>body {{ position: relative; top: -{offset}px; }}</style>"
    at = html.find("</head>")
    copy = page.with_name(f".shot-{page.name}")
    copy.write_text(html[:at] + style + html[at:] if at >= 0 else style + html)
    return copy


def screenshot(page: Path, shot: Path, height: int, profile: Path) -> list[Path]:
    """The whole ``page`` (``height`` px high), in screenshots of at most `MAX_HEIGHT` px
    (what Chromium draws at once) into ``shot`` (``<stem>.png``, ``<stem>.2.png``, ...),
    each cut in tiles ``TILE_HEIGHT`` px high beside it (``<stem>-1.png``, ...)."""
    from PIL import Image

    shots, tiles = [], []
    for part, offset in enumerate(range(0, height, MAX_HEIGHT), start=1):
        target = shot if part == 1 else shot.with_name(f"{shot.stem}.{part}.png")
        source = _shifted(page, offset) if offset else page
        window = min(MAX_HEIGHT, height - offset)
        try:
            _chromium(profile, f"--screenshot={target}", f"--window-size={WIDTH},{window}",
                      source.as_uri())  # fmt: skip
        finally:
            if source != page:
                source.unlink()
        if not target.exists():
            raise RuntimeError(f"{page}: Chromium wrote no screenshot")
        shots.append(target)
        with Image.open(target) as image:
            for top in range(0, image.height, TILE_HEIGHT):
                tile = shot.with_name(f"{shot.stem}-{len(tiles) + 1}.png")
                image.crop((0, top, image.width, min(top + TILE_HEIGHT, image.height))).save(tile)
                tiles.append(tile)
    return [*shots, *tiles]


def look_at(page: Path, site: Path, out: Path | None, profile: Path) -> PageReport:
    """Probe one page, check its links and (when ``out`` is given) take its screenshots."""
    report = PageReport(page)
    found = probe(page, profile)
    report.problems += [f"clipped behind a scroll bar: {c}" for c in found["clipped"]]
    if found["width"] > found["window"]:
        report.problems.append(f"page {found['width']} px wide in a {found['window']} px window")
        report.problems += [f"past the window's edge: {w}" for w in found["wide"][:5]]
    report.problems += [f"image not shown: {src}" for src in found["images"]]
    report.problems += [f"raw reST in the text: {text!r}" for text in found["raw"]]
    report.problems += broken_links(page, site)
    if out is not None:
        height = max(found["height"], 600)
        out.mkdir(parents=True, exist_ok=True)
        name = page.relative_to(site).with_suffix("").as_posix().replace("/", "__")
        report.screenshots = screenshot(page, out / f"{name}.png", height, profile)
    return report


def pages(site: Path) -> list[Path]:
    """The HTML pages of a built site (Sphinx's own sources and search page left out)."""
    skip = {"search.html"}
    return sorted(
        p
        for p in site.rglob("*.html")
        if p.name not in skip and not p.name.startswith(".") and "_sources" not in p.parts
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML folder")
    parser.add_argument("--out", type=Path, help="where the screenshots go (default: none)")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"no Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    site = args.site.resolve()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mica-docs-chromium-") as profile:
        for page in pages(site):
            report = look_at(page, site, args.out, Path(profile))
            failed += bool(report.problems)
            status = "ok" if not report.problems else f"{len(report.problems)} problems"
            print(f"{page.relative_to(site)}: {status}")
            for problem in report.problems:
                print(f"    {problem}")
    print(f"{failed} of {len(pages(site))} pages with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
