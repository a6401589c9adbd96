"""Update progress for people: per unit and per file, with count, rate and ETA.

`UpdateProgress` is the engine's ``progress(done, total, label)`` callback (one call per unit
of work, e.g. an L0 time chunk) and also hears of each file a unit settles (``files(done,
total, name)``); the runner names the units (``units_named``). The rate is in the unit of the
work: files per second when the units report their files (L0 time chunks), else units
(observations, obsids, dark calibrations). On a terminal it drives a rich bar; elsewhere (a
log file, CI, a notebook's captured stderr) it writes one plain line per unit to stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _duration(secs: float) -> str:
    secs = max(0, int(round(secs)))
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"


def _rate(count: int, seconds: float, what: str) -> str:
    """``'2.4 obsids/s'``, or for units slower than one a second the seconds each takes:
    ``'3.5 s/obsid'``."""
    if count and seconds > count:
        return f"{seconds / count:.1f} s/{what}"
    return f"{count / seconds if seconds > 0 else 0.0:.1f} {what}s/s"


class UpdateProgress:
    """Progress of one update: units done, files settled, rate and ETA.

    Parameters
    ----------
    title : str
        Shown first on the bar or on each line, e.g. ``"update aca-l0"``.
    stream : file-like, optional
        Where plain lines go (default ``sys.stderr``, looked up at each line).
    terminal : bool, optional
        Draw a rich bar (default: when ``stream`` is a terminal); else one line per unit.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = UpdateProgress("update aca-l0", stream=out, terminal=False)
    >>> progress(0, 1, "2012:125:00:00 .. 2012:127:00:00")
    >>> progress.files(30, 30, "aca...fits.gz")
    >>> progress(1, 1, "done")
    >>> print(out.getvalue().split(";")[1])
     1/1 units done, 30 files, ...
    >>> progress = UpdateProgress("update obspar", stream=out, terminal=False)
    >>> progress.units_named("obsid")
    >>> progress(0, 2, "obsid 9745")
    >>> progress.status()
    '0/2 obsids done, elapsed 0:00:00'
    """

    def __init__(self, title: str, stream: TextIO | None = None, terminal: bool | None = None):
        self.title = title
        self._stream = stream
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.t0 = time.perf_counter()
        self.unit = self.units = 0
        self.label = ""
        self.unit_name = "unit"  # what one unit is (`units_named`)
        self.files_done = 0  # files settled in all units so far
        self.per_file = False  # whether units report their files (then the rate is files/s)
        self._unit_files = (0, 0)  # (done, total) in the current unit
        self._bar: Progress | None = None
        self._task = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    # -- the engine's callbacks -----------------------------------------------------------

    def units_named(self, name: str) -> None:
        """What one unit of the update is (``time chunk``, ``obsid``, ``observation``)."""
        self.unit_name = name
        self._draw()

    def __call__(self, done: int, total: int, label: str) -> None:
        """Unit ``done`` of ``total`` starts (``done == total``: the update ended)."""
        finished = done > self.unit and self.unit < self.units  # the previous unit committed
        self.unit, self.units = done, total
        self._unit_files = (0, 0)
        if finished:
            self._line(self.label)
        self.label = label
        self._draw()

    def files(self, done: int, total: int, name: str) -> None:
        """File ``done`` of the ``total`` of the current unit is settled."""
        self.per_file = True
        self.files_done += done - self._unit_files[0]
        self._unit_files = (done, total)
        self._draw()

    # -- what is shown --------------------------------------------------------------------

    def fraction(self) -> float:
        """Fraction of the update done: whole units plus the current unit's share of files."""
        if not self.units:
            return 0.0
        done, total = self._unit_files
        part = done / total if total else 0.0
        return min(1.0, (self.unit + (part if self.unit < self.units else 0.0)) / self.units)

    def status(self) -> str:
        """``'1/3 time chunks done, 12/30 files, 2.4 files/s, elapsed 0:00:05, ETA 0:00:10'``
        (units that report no files: ``'3/9 obsids done, 1.5 s/obsid, ...'``)."""
        elapsed = time.perf_counter() - self.t0
        frac = self.fraction()
        eta = f"ETA {_duration(elapsed * (1 - frac) / frac)}" if 0 < frac < 1 else ""
        parts = [f"{self.unit}/{self.units} {self.unit_name}s done"]
        if self.per_file:
            done, total = self._unit_files
            parts.append(
                f"{done}/{total} files" if total and frac < 1 else f"{self.files_done} files"
            )
            parts.append(f"{self.files_done / elapsed if elapsed > 0 else 0.0:.1f} files/s")
        elif self.unit:
            parts.append(_rate(self.unit, elapsed, self.unit_name))
        parts += [f"elapsed {_duration(elapsed)}", eta]
        return ", ".join(p for p in parts if p)

    def _draw(self) -> None:
        if self._bar is not None and self._task is not None:
            label = "" if self.label == "done" else self.label
            self._bar.update(
                self._task, completed=self.fraction(), total=1.0, status=self.status(), label=label
            )

    def _line(self, label: str) -> None:
        """One plain line per finished unit (only without a terminal bar)."""
        if not self.terminal:
            print(f"{self.title}: {label} done; {self.status()}", file=self.stream, flush=True)

    @contextmanager
    def shown(self) -> Iterator[UpdateProgress]:
        """Draw the bar (terminal) while the update runs."""
        if not self.terminal:
            yield self
            return
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[label]}"),
            TimeElapsedColumn(),
            transient=False,
        ) as bar:
            self._bar = bar
            self._task = bar.add_task(self.title, total=None, status="", label="")
            try:
                yield self
            finally:
                self._bar = self._task = None


@contextmanager
def progress_bar(title: str, enabled: bool = True) -> Iterator[UpdateProgress | None]:
    """Yield an `UpdateProgress` for one update (or None when disabled)."""
    if not enabled:
        yield None
        return
    with UpdateProgress(title).shown() as progress:
        yield progress
