"""Update progress for people: per unit and per file, with count, rate and ETA.

`UpdateProgress` is the engine's ``progress(done, total, label)`` callback (one call per unit
of work, e.g. an L0 time chunk) and also hears of each file a unit settles (``files(done,
total, name)``). On a terminal it drives a rich bar; elsewhere (a log file, CI, a notebook's
captured stderr) it writes one plain line per unit to stderr.
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


class UpdateProgress:
    """Progress of one update: units done, files settled, rate (files/s) and ETA.

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
    >>> print(out.getvalue().split(":")[0])
    update aca-l0
    """

    def __init__(self, title: str, stream: TextIO | None = None, terminal: bool | None = None):
        self.title = title
        self._stream = stream
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.t0 = time.perf_counter()
        self.unit = self.units = 0
        self.label = ""
        self.files_done = 0  # files settled in all units so far
        self._unit_files = (0, 0)  # (done, total) in the current unit
        self._bar: Progress | None = None
        self._task = None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    # -- the engine's callbacks -----------------------------------------------------------

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
        """``'1/3 units done, 12/30 files, 2.4 files/s, elapsed 0:00:05, ETA 0:00:10'``."""
        elapsed = time.perf_counter() - self.t0
        rate = self.files_done / elapsed if elapsed > 0 else 0.0
        frac = self.fraction()
        eta = f"ETA {_duration(elapsed * (1 - frac) / frac)}" if 0 < frac < 1 else ""
        done, total = self._unit_files
        count = f"{done}/{total} files" if total and frac < 1 else f"{self.files_done} files"
        parts = [
            f"{self.unit}/{self.units} units done",
            count,
            f"{rate:.1f} files/s",
            f"elapsed {_duration(elapsed)}",
            eta,
        ]
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
