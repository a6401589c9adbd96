"""``arc5gl``: the CXC archive client (only inside the CXC network), driven by small scripts.

The product names arc5gl knows live here (`ARC5GL_NAMES`), keyed by mica product name:
``name`` for time-range requests, ``full`` (every file of an obsid) and ``probe`` (a small
product that reveals which revision arc5gl delivers) for per-obsid ones. The command scripts
follow the original mica's sessions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from mica.engine.obsid_layout import ObsidProduct
from mica.engine.product import FileProduct
from mica.engine.source import Source, SourceError
from mica.sources.directory import obsid_product
from mica.time import to_date

#: arc5gl product names by mica product
ARC5GL_NAMES: dict[str, dict[str, str]] = {
    "aca-l0": {"name": "aca0"},
    "asp-l1": {"full": "asp1", "probe": "asp1{fidprops}"},
    "obspar": {"full": "obspar", "probe": "obspar"},
}


def _run_arc5gl(exe: str, script: str, cwd: Path) -> list[Path]:
    proc = subprocess.run(
        [exe, "-stdin"], input=script, text=True, cwd=cwd, capture_output=True, timeout=3600
    )
    if proc.returncode != 0:
        raise SourceError(f"arc5gl failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return sorted(p for p in cwd.iterdir() if p.is_file())


def _names(product: FileProduct, key: str) -> str:
    name = ARC5GL_NAMES.get(product.name, {}).get(key)
    if not name:
        raise SourceError(f"arc5gl has no {key} product name for {product.name}")
    return name


class Arc5glSource(Source):
    """The CXC ``arc5gl`` client, driven with a small script per request."""

    scheme = "arc5gl"
    spec = "arc5gl"
    products = frozenset(ARC5GL_NAMES)

    def __init__(self) -> None:
        self.exe = shutil.which("arc5gl")
        if self.exe is None:
            raise SourceError(
                "arc5gl is not on PATH: it exists only inside the CXC network; "
                "use --source sim, dir:PATH or cda"
            )

    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path]:
        self.require(product)
        # arc5gl selects by file start: reach back so files straddling `start` come too.
        start -= product.source_lookback if lookback is None else lookback
        script = f"tstart={to_date(start)}\ntstop={to_date(stop)}\nget {_names(product, 'name')}\n"
        return _run_arc5gl(self.exe, script, dest)

    def _probe(self, product: ObsidProduct, obsid: int, version: str) -> int | None:
        """Revision arc5gl delivers for ``version`` ('default' or 'last'), from a small product."""
        script = "reset\n" + f"obsid={obsid}\n"
        if version != "default":
            script += f"version={version}\n"
        script += f"get {_names(product, 'probe')}\n"
        with tempfile.TemporaryDirectory(prefix="mica-arc5gl-") as tmp:
            revs = {product.name_revision(p.name) for p in _run_arc5gl(self.exe, script, Path(tmp))}
        revs.discard(None)
        if len(revs) > 1:
            raise SourceError(
                f"arc5gl delivered several revisions {sorted(revs)} of obsid {obsid} "
                f"for version={version}"
            )
        return revs.pop() if revs else None

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        self.require(product)
        product = obsid_product(product)
        return self._probe(product, obsid, "default"), self._probe(product, obsid, "last")

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        self.require(product)
        product = obsid_product(product)
        # No obi=: every OBI of the obsid is requested (the original fetched only the lowest).
        script = f"reset\nobsid={obsid}\nversion={revision}\nget {_names(product, 'full')}\n"
        if product.extra_re is not None:
            script += "dataset=pipelog\ngo\n"  # pipeline logs, as the original fetched them
        return _run_arc5gl(self.exe, script, dest)

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        """Obsids of the obspar files arc5gl lists in the range (obspars are small)."""
        self.require(product)
        lookback = getattr(product, "source_lookback", 86400.0)
        script = f"reset\ntstart={to_date(start - lookback)}\ntstop={to_date(stop)}\nget obspar\n"
        with tempfile.TemporaryDirectory(prefix="mica-arc5gl-") as tmp:
            names = [p.name for p in _run_arc5gl(self.exe, script, Path(tmp))]
        obsids = [int(m.group(1)) for n in names if (m := re.match(r"axaff(\d{5})_", n))]
        return list(dict.fromkeys(obsids))
