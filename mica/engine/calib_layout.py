"""The third layout kind: calibration folders ``<root>/<id>/``, installed whole.

Besides time-ordered files (`mica.engine.index`) and per-obsid revision folders
(`mica.engine.obsid_layout`), a derived product may archive one folder per calibration
(e.g. ACA dark calibrations): readers list only names matching the layout's ``id_re``, a
folder is installed by one rename (`mica.engine.atomic.write_folder_atomic`), so a crash
leaves only dot-named leftovers, which the next update or `check` removes. A product gives
the id pattern, how to tell a folder is whole (``problem``), and how to rebuild one. Each
folder is installed with the digests of its files (`mica.engine.digests.FOLDER_DIGESTS`),
which `check` compares.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mica.engine.atomic import is_leftover, real_folder, write_folder_atomic, write_new
from mica.engine.digests import folder_problem, with_folder_digests
from mica.engine.lock import check_lock


@dataclass(frozen=True)
class CalibLayout:
    """Where a calibration product's folders live and how they are checked.

    Parameters
    ----------
    name : str
        Product name (messages).
    id_re : re.Pattern
        Names of calibration folders.
    problem : callable
        ``problem(folder, verify_data) -> str | None``: why a folder is not whole.
    rebuild_hint : callable
        ``rebuild_hint(cal_id) -> str``: the command that rebuilds a calibration.
    staging : str
        Name of the update's staging folder in the root.
    rejected : str
        Folder (in the root) receiving broken calibrations on repair.
    """

    name: str
    id_re: re.Pattern
    problem: Callable[[Path, bool], str | None]
    rebuild_hint: Callable[[str], str]
    staging: str = ".staging"
    rejected: str = "rejected"

    def ids(self, root: Path) -> list[str]:
        """Calibration ids archived (whole or not), sorted."""
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if self.id_re.fullmatch(p.name))

    def is_whole(self, root: Path, cal_id: str) -> bool:
        folder = root / cal_id
        return folder.is_dir() and self.problem(folder, False) is None

    def install(self, root: Path, cal_id: str, files: dict[str, bytes]) -> Path:
        """Put calibration ``cal_id`` in place atomically (replacing a broken one), with the
        digests of its files."""
        return write_folder_atomic(root / cal_id, with_folder_digests(files))

    def leftovers(self, root: Path) -> list[Path]:
        """What an interrupted update left: temporary folders and staging."""
        if not root.is_dir():
            return []
        return [
            p
            for p in sorted(root.iterdir())
            if p.name == self.staging
            or ((target := is_leftover(p.name)) and self.id_re.fullmatch(target))
        ]

    def clean_leftovers(self, root: Path) -> list[str]:
        """Remove the leftovers; returns what was done (an update's recovery)."""
        done = []
        for entry in self.leftovers(root):
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry.name} left by an interrupted update")
        return done

    def check(self, root: Path, repair: bool = False) -> tuple[list[str], list[str]]:
        """(problems, repairs made): leftovers, and folders not whole (their files against
        their digests, and the data verified).

        ``repair`` removes leftovers and moves broken calibrations to ``rejected/`` with the
        reason, so an update rebuilds them, under the update lock; without ``repair``
        nothing is written (`check_lock`).
        """
        problems: list[str] = []
        repairs: list[str] = []
        if not root.is_dir():
            return problems, repairs
        with check_lock(root, repair):
            for entry in self.leftovers(root):
                problems.append(f"interrupted update left {entry.name}")
                if repair:
                    shutil.rmtree(entry, ignore_errors=True)
                    repairs.append(f"removed {entry.name}")
            for cal_id in self.ids(root):
                problem = self.problem(root / cal_id, True) or folder_problem(root / cal_id)
                if problem is None:
                    continue
                problems.append(f"calibration {cal_id}: {problem}")
                if repair:
                    repairs.append(self._reject(root, cal_id, problem))
        return problems, repairs

    def _reject(self, root: Path, cal_id: str, problem: str) -> str:
        qdir = real_folder(root / self.rejected)
        k = 1
        while os.path.lexists(qdir / f"{cal_id}-{k}"):
            k += 1
        os.rename(root / cal_id, qdir / f"{cal_id}-{k}")
        write_new(qdir / f"{cal_id}-{k}.reason", (problem + "\n").encode())
        return (
            f"moved broken calibration {cal_id} to {self.rejected}/{cal_id}-{k} "
            f"({self.rebuild_hint(cal_id)})"
        )
