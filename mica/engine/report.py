"""The one report of every update (`UpdateReport`: units done / unchanged / skipped / failed,
refused files) and of every archive check (`CheckReport`: problems found and repaired)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mica.engine.ingest import IngestReport
from mica.engine.product import RejectedFile


@dataclass
class UpdateReport:
    """What an update did, unit by unit (time chunk, obsid, calibration), and file by file.

    Attributes
    ----------
    product : str
        Product name (``aca-l0``, ``asp-l1``, ``aca-dark``, ...).
    unit : str
        What one unit is, for the summary (``obsid``, ``dark calibration``, ``time chunk``).
    verb : str
        What happened to a done unit, for the summary (``updated``, ``archived``).
    done : dict
        Unit key -> what was done, in unit order.
    unchanged : list
        Unit keys already archived whole (nothing written).
    skipped : dict
        Unit key -> why it was not attempted (bad-obsid list, no data upstream).
    failed : dict
        Unit key -> why it failed (the archive keeps what it had for it).
    ingest : IngestReport
        Files ingested, recognised, replaced, outdated and refused (``rejected``).
    dropped : int
        Files the source delivered that the product does not keep.
    recovered : list of str
        What the update finished or removed of a killed run.
    notes : list of str
        Remarks of the source (e.g. files an upstream does not hold).
    files_based : bool
        Whether units move files (the summary then counts them); False for derived tables,
        whose update computes only units not in the table (no "already archived" count).
    interrupted : str
        Where an interrupted update (Ctrl-C) stopped, e.g. ``"in obsid 9745 (obsid 3 of
        9)"``; "" when it ran to its end.
    left : list of str
        What an interrupted update left undone.
    wait_seconds, commit_seconds : float
        Time the runner waited for units' results, and spent committing them.
    commit_cpu_seconds : float
        CPU time of the runner's thread in the commits (the committer's own cost, which a
        busy machine does not inflate as it does the wall time).
    """

    product: str = ""
    unit: str = "unit"
    verb: str = "updated"
    done: dict[Any, str] = field(default_factory=dict)
    unchanged: list[Any] = field(default_factory=list)
    skipped: dict[Any, str] = field(default_factory=dict)
    failed: dict[Any, str] = field(default_factory=dict)
    ingest: IngestReport = field(default_factory=IngestReport)
    dropped: int = 0
    recovered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: whether units move files (not a derived table): the summary then counts them
    files_based: bool = True
    interrupted: str = ""
    left: list[str] = field(default_factory=list)
    #: seconds the runner waited for units' results, and spent committing them
    wait_seconds: float = 0.0
    commit_seconds: float = 0.0
    commit_cpu_seconds: float = 0.0

    # File-level views (the L0 update's callers read them directly).
    @property
    def ingested(self) -> list[str]:
        return self.ingest.ingested

    @property
    def replaced(self) -> list[str]:
        return self.ingest.replaced

    @property
    def outdated(self) -> list[str]:
        return self.ingest.outdated

    @property
    def rejected(self) -> list[RejectedFile]:
        """Refused files (kept under ``rejected/`` with the reason)."""
        return self.ingest.rejected

    @property
    def ok(self) -> bool:
        """No unit failed, no file was refused and the update ran to its end."""
        return not self.failed and not self.ingest.rejected and not self.interrupted

    def merge(self, other: UpdateReport) -> None:
        """Add another report's content (e.g. the inputs' update before a derived one)."""
        self.done.update(other.done)
        self.unchanged += other.unchanged
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.ingest.merge(other.ingest)
        self.dropped += other.dropped
        self.recovered += other.recovered
        self.notes += other.notes
        self.wait_seconds += other.wait_seconds
        self.commit_seconds += other.commit_seconds

    def summary(self) -> str:
        """First line: the counts (of an interrupted update: where it stopped, then the
        counts of what it finished and what it left); then one line per unit done, note,
        failure, refused file, and the units already archived."""
        counts = [f"{_count(len(self.done), self.unit)} {self.verb}"]
        if self.files_based:  # a derived update plans only the units not in its table
            counts.append(f"{len(self.unchanged)} already archived")
        counts.append(f"{len(self.failed)} failed")
        reasons: dict[str, list[str]] = {}
        for key, why in self.skipped.items():
            reasons.setdefault(why, []).append(str(key))
        counts += [f"{len(keys)} skipped ({why})" for why, keys in reasons.items()]
        head = ", ".join(counts)
        if self.files_based:
            files = self.ingest.summary().splitlines()[0]
            head += f"; files: {files}, {self.dropped} dropped by product rules"
        if self.interrupted:
            lines = [
                f"{self.product}: interrupted {self.interrupted}",
                f"  finished before it: {head}",
                f"  left: {'; '.join(self.left)}",
                f"  {RESUME}",
            ]
        else:
            lines = [f"{self.product}: {head}"]
        lines += [f"  recovered: {r}" for r in self.recovered]
        lines += [f"  {self.unit} {k}: {msg}" for k, msg in self.done.items()]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  FAILED {self.unit} {k}: {msg}" for k, msg in self.failed.items()]
        lines += [f"  rejected {err}" for err in self.ingest.rejected]
        lines += [f"  skipped ({why}): {', '.join(keys)}" for why, keys in reasons.items()]
        if self.unchanged:
            keys = ", ".join(str(k) for k in self.unchanged)
            lines.append(f"  already archived ({_plural(self.unit)}): {keys}")
        return "\n".join(lines)


#: What an interrupted update's summary advises.
RESUME = (
    "run the same update again to complete it: it first finishes what this one left "
    "half-done (`mica check` lists that meanwhile; `mica check --repair` mends it without "
    "fetching the rest)"
)


def _plural(unit: str) -> str:
    """``'obsid'`` -> ``'obsids'`` (every unit name is a regular noun)."""
    return unit + "s"


def _count(n: int, unit: str) -> str:
    """``'1 obsid'``, ``'9 obsids'``."""
    return f"{n} {unit if n == 1 else _plural(unit)}"


@dataclass
class CheckReport:
    """What the check of one product's archive found and repaired, whatever its layout.

    Attributes
    ----------
    product : str
        Product name.
    files : int or None
        Files in the archive's index; None for a layout without one (calibration folders,
        derived tables).
    problems : list of str
        What is wrong (after ``repair``: what was found before the repairs).
    repairs : list of str
        What the check repaired.
    provenance : str
        Where the archive's data come from (`mica.engine.provenance.provenance_line`), or "".
    data_kind : str
        What the data are (``simulated``, ``real``, ``unknown``), shown beside the counts of
        an archive without a provenance line (derived tables), or "".
    notes : list of str
        Remarks beside the problems (e.g. units a derived update recorded as failed).
    empty : str
        Why there is nothing to check yet (``no table at ...``): the summary is that alone
        unless there were problems or repairs (then it is a note).
    remedy : str
        How the problems are mended when ``mica check --repair`` does not; "" when it does
        (the summary then names that command).
    """

    product: str
    files: int | None = 0
    problems: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    provenance: str = ""
    data_kind: str = ""
    notes: list[str] = field(default_factory=list)
    empty: str = ""
    remedy: str = ""

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def summary(self, repair: str | None = "mica check --repair") -> str:
        """First line: the counts; then the provenance, notes, problems, what mends them
        (`remedy`, else the command ``repair``; None: no such line, e.g. after a repair)
        and the repairs."""
        if self.empty and not (self.problems or self.repairs):
            return f"{self.product}: {self.empty}"
        head = f"{self.product}: "
        if self.files is not None:
            head += f"{self.files} indexed files, "
        head += f"{len(self.problems)} problems"
        if self.data_kind:
            head += f" ({self.data_kind} data)"
        lines = [head]
        if self.provenance:
            lines.append(f"  {self.provenance}")
        lines += [f"  note: {n}" for n in ([self.empty] if self.empty else []) + self.notes]
        lines += [f"  problem: {p}" for p in self.problems]
        if self.problems and (self.remedy or repair):
            lines.append(f"  to mend: {self.remedy or f'run `{repair}`'}")
        lines += [f"  repaired: {r}" for r in self.repairs]
        return "\n".join(lines)
