"""Per-obsid requests of the ``dir:PATH`` and ``arc5gl`` sources.

``dir:PATH`` holds files of a per-obsid product in any folder structure. Each delivered
file is assigned to an obsid by, in order: a ``<OOOOO>_v<RR>`` folder in its path (a copy
of a mica archive), the obsid in its name (obspar, per-OBI files), its content (FITS
``OBS_ID`` / obspar ``obs_id``); unindexed companions (logs, dropped files) take the obsid
of the data files beside them. The default and last revisions are those of ``<OOOOO>`` /
``<OOOOO>_last`` links when the folder has them, else the newest revision present.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from mica.engine.obsid_layout import REV_DIR_RE, ObsidProduct
from mica.engine.product import FileProduct, RejectedFile
from mica.engine.sources import SourceError
from mica.time import to_date


def _obsid_product(product: FileProduct) -> ObsidProduct:
    if not isinstance(product, ObsidProduct):
        raise SourceError(f"{product.name} is not archived by obsid")
    return product


@dataclass
class _Entry:
    path: Path
    kind: str
    revision: int | None
    obsid: int | None = None
    tstart: float | None = None


@dataclass
class DirCatalog:
    """Which files of ``root`` belong to which obsid and revision (built once, on demand)."""

    product: FileProduct
    root: Path
    files: dict[int, dict[int, list[Path]]] = field(default_factory=dict)
    starts: dict[int, list[float]] = field(default_factory=dict)
    links: dict[int, dict[str, int]] = field(default_factory=dict)
    built: bool = False

    def _build(self) -> None:
        product = _obsid_product(self.product)
        by_folder: dict[Path, list[_Entry]] = defaultdict(list)
        for folder, dirs, names in os.walk(self.root):  # does not follow links: no duplicates
            here = Path(folder)
            for name in dirs + names:
                path = here / name
                link = re.fullmatch(r"(\d{5})(_last)?", name)
                if link and path.is_symlink():
                    target = REV_DIR_RE.fullmatch(os.path.basename(os.readlink(path)))
                    if target:
                        key = "last" if link.group(2) else "default"
                        self.links.setdefault(int(link.group(1)), {})[key] = int(target.group(2))
            for name in sorted(names):
                path = here / name
                kind = product.classify(name)
                if kind is None or path.is_symlink():
                    continue
                entry = _Entry(path, kind, product.name_revision(name))
                folder_match = [REV_DIR_RE.fullmatch(p) for p in path.relative_to(self.root).parts]
                folder_match = [m for m in folder_match if m]
                if folder_match:
                    entry.obsid = int(folder_match[-1].group(1))
                else:
                    entry.obsid = product.name_obsid(name)
                if kind == "data" or (kind == "drop" and entry.obsid is None):
                    try:
                        obsid, tstart = product.inspect(path)
                    except (RejectedFile, OSError, NotImplementedError):
                        obsid, tstart = None, None  # delivered as is; ingest judges it
                    entry.obsid = entry.obsid if entry.obsid is not None else obsid
                    entry.tstart = tstart
                by_folder[here].append(entry)
        for entries in by_folder.values():
            known = {e.obsid for e in entries if e.kind == "data" and e.obsid is not None}
            for entry in entries:
                if entry.obsid is None and len(known) == 1:
                    entry.obsid = next(iter(known))
                if entry.obsid is None or entry.revision is None:
                    continue
                self.files.setdefault(entry.obsid, {}).setdefault(entry.revision, []).append(
                    entry.path
                )
                if entry.kind == "data" and entry.tstart is not None:
                    self.starts.setdefault(entry.obsid, []).append(entry.tstart)
        self.built = True

    def obsids(self, start: float, stop: float) -> list[int]:
        if not self.built:
            self._build()
        lookback = getattr(self.product, "source_lookback", 86400.0)
        hits = {
            o: min(ts)
            for o, ts in self.starts.items()
            if any(start - lookback <= t < stop for t in ts)
        }
        return sorted(hits, key=lambda o: hits[o])

    def revisions(self, obsid: int) -> tuple[int | None, int | None]:
        if not self.built:
            self._build()
        revs = sorted(self.files.get(obsid, {}))
        if not revs:
            return None, None
        links = self.links.get(obsid, {})
        default = links.get("default", revs[-1])
        last = links.get("last", default if "default" in links else revs[-1])
        return default, last

    def fetch(self, obsid: int, revision: int, dest: Path) -> list[Path]:
        if not self.built:
            self._build()
        out = []
        for path in self.files.get(obsid, {}).get(revision, []):
            target = dest / path.name
            shutil.copyfile(path, target)
            out.append(target)
        return out


# --- arc5gl (CXC only; the command scripts follow the original mica's sessions) ---------------
def _run_arc5gl(exe: str, script: str, cwd: Path) -> list[Path]:
    proc = subprocess.run(
        [exe, "-stdin"], input=script, text=True, cwd=cwd, capture_output=True, timeout=3600
    )
    if proc.returncode != 0:
        raise SourceError(f"arc5gl failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return sorted(p for p in cwd.iterdir() if p.is_file())


def _probe(exe: str, product: ObsidProduct, obsid: int, version: str) -> int | None:
    """Revision arc5gl delivers for ``version`` ('default' or 'last'), from a small product."""
    script = "reset\n" + f"obsid={obsid}\n"
    if version != "default":
        script += f"version={version}\n"
    script += f"get {product.arc5gl_probe}\n"
    with tempfile.TemporaryDirectory(prefix="mica-arc5gl-") as tmp:
        revs = {product.name_revision(p.name) for p in _run_arc5gl(exe, script, Path(tmp))}
    revs.discard(None)
    if len(revs) > 1:
        raise SourceError(
            f"arc5gl delivered several revisions {sorted(revs)} of obsid {obsid} "
            f"for version={version}"
        )
    return revs.pop() if revs else None


def arc5gl_revisions(exe: str, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
    product = _obsid_product(product)
    return _probe(exe, product, obsid, "default"), _probe(exe, product, obsid, "last")


def arc5gl_fetch_obsid(
    exe: str, product: FileProduct, obsid: int, revision: int, dest: Path
) -> list[Path]:
    product = _obsid_product(product)
    # No obi=: every OBI of the obsid is requested (the original fetched only the lowest).
    script = f"reset\nobsid={obsid}\nversion={revision}\nget {product.arc5gl_full}\n"
    if product.extra_re is not None:
        script += "dataset=pipelog\ngo\n"  # pipeline logs, as the original fetched them
    return _run_arc5gl(exe, script, dest)


def arc5gl_obsids(exe: str, product: FileProduct, start: float, stop: float) -> list[int]:
    """Obsids of the obspar files arc5gl lists in the range (obspars are small)."""
    lookback = getattr(product, "source_lookback", 86400.0)
    script = f"reset\ntstart={to_date(start - lookback)}\ntstop={to_date(stop)}\nget obspar\n"
    with tempfile.TemporaryDirectory(prefix="mica-arc5gl-") as tmp:
        names = [p.name for p in _run_arc5gl(exe, script, Path(tmp))]
    obsids = [int(m.group(1)) for n in names if (m := re.match(r"axaff(\d{5})_", n))]
    return list(dict.fromkeys(obsids))
