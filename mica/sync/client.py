"""The HTTP side of `mica sync`: heads, parts and files from a published archive.

One `SyncClient` per sync (httpx, one connection pool): `SyncClient.get_bytes` reads a small
file whole (the head, a part), `SyncClient.fetch_all` downloads files with at most
``transfers`` at a time. A file is fetched into ``<digest>.partial`` in the staging folder and
resumed there with an HTTP ``Range`` request by a later attempt or sync; it is renamed to its
digest name only once its size and SHA-256 digest are those of the manifest, so what lies
under a final name is always whole and verified. A store chunk of which this archive holds an
older generation is made from it and the pieces that differ (`mica.sync.patch`), verified
the same way; when that fails it is fetched whole.

Server errors (HTTP 5xx), timeouts, dropped connections and short bodies are retried with
exponential backoff (`mica.config.sync_retries`, `mica.config.sync_backoff`); a file that
is not found (404) or whose bytes keep differing from the manifest is `ServerChanged`: the
caller reads the head again (the server may have published since) and replans. Messages
name the file and the server.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from mica import config
from mica.engine.atomic import make_folders
from mica.engine.chunk_extend import copy_chunk_file
from mica.engine.fsync import fsync_dir
from mica.errors import ArchiveWriteError, SyncError
from mica.progress import UpdateProgress
from mica.sync.patch import Pieces, changed_ranges

#: the longest pause between two attempts (seconds)
MAX_PAUSE = 30.0
#: the largest head or part read whole (bytes): a manifest is small
MAX_MANIFEST_BYTES = 256 << 20
_BLOCK = 1 << 20


class ServerChanged(Exception):
    """A file the manifest names is not on the server as named (gone, other bytes): the
    server may have published a new head since it was read."""

    def __init__(self, name: str, url: str, problem: str):
        super().__init__(f"{name}: {problem} at {url}")
        self.name, self.url, self.problem = name, url, problem


class _Retry(Exception):
    """A failure worth another attempt (server error, timeout, short body)."""


class Interrupted(Exception):
    """The transfers were told to stop (Ctrl-C in the main thread)."""


@dataclass(frozen=True)
class Transfer:
    """One file to download.

    Parameters
    ----------
    name : str
        What messages name: ``<product>/<path>``.
    rel : str
        Its path on the server, relative to the published archive's URL.
    size, sha256 : int, str
        What the manifest says it is.
    base, pieces : Path, str, optional
        An older generation of the file held here and the file's piece checksums
        (`mica.sync.patch.Pieces.to_text`): only the pieces that differ are fetched.
    """

    name: str
    rel: str
    size: int
    sha256: str
    base: Path | None = None
    pieces: str | None = None


class TransferProgress(UpdateProgress):
    """`mica.progress.UpdateProgress` counting bytes: files and bytes done, rate, ETA.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = TransferProgress("sync", files=2, nbytes=4_000_000, stream=out, terminal=False)
    >>> progress.add(nbytes=2_000_000, files=1)
    >>> print(out.getvalue())
    sync: 1/2 files, 2.0/4.0 MB, ... MB/s, elapsed 0:00:00, ETA 0:00:00
    <BLANKLINE>
    """

    def __init__(self, title: str, files: int, nbytes: int, **kwargs):
        super().__init__(title, **kwargs)
        self.total_files, self.total_bytes = files, nbytes
        self.files_done = self.bytes_done = 0
        self._lock = threading.Lock()
        self._last_line = 0.0
        self.units = 1

    def add(self, nbytes: int = 0, files: int = 0) -> None:
        """``nbytes`` more received, ``files`` more verified."""
        with self._lock:
            self.bytes_done += nbytes
            self.files_done += files
            self._draw()
            now = time.perf_counter()
            if files and not self.terminal and (now - self._last_line > 2.0 or self.done()):
                self._last_line = now
                print(f"{self.title}: {self.status()}", file=self.stream, flush=True)

    def done(self) -> bool:
        return self.files_done >= self.total_files

    def fraction(self) -> float:
        if not self.total_bytes:
            return 1.0 if self.done() else 0.0
        return min(1.0, self.bytes_done / self.total_bytes)

    def status(self) -> str:
        """``'3/10 files, 1.2/4.0 MB, 2.5 MB/s, elapsed 0:00:01, ETA 0:00:02'``."""
        elapsed = time.perf_counter() - self.t0
        frac = self.fraction()
        rate = self.bytes_done / elapsed if elapsed > 0 else 0.0
        parts = [
            f"{self.files_done}/{self.total_files} files",
            f"{self.bytes_done / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB",
            f"{rate / 1e6:.1f} MB/s",
            f"elapsed {_duration(elapsed)}",
        ]
        if 0 < frac < 1 and rate > 0:
            parts.append(f"ETA {_duration((self.total_bytes - self.bytes_done) / rate)}")
        return ", ".join(parts)


def _duration(secs: float) -> str:
    secs = max(0, int(round(secs)))
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"


class SyncClient:
    """Reads one published archive (``url``: the archive's root as served).

    Parameters
    ----------
    url : str
        ``http(s)://server/path``: where the archive root is served.
    transfers : int
        Files downloaded at a time.
    retries, backoff, timeout : optional
        Attempts after the first, first pause (doubled each time) and socket timeout in
        seconds (defaults: `mica.config`).
    """

    def __init__(
        self,
        url: str,
        transfers: int = 4,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float | None = None,
    ):
        self.url = url.rstrip("/")
        self.transfers = max(1, int(transfers))
        self.retries = config.sync_retries() if retries is None else retries
        self.backoff = config.sync_backoff() if backoff is None else backoff
        timeout = config.sync_timeout() if timeout is None else timeout
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self.transfers + 1),
            follow_redirects=True,
            headers={"Accept-Encoding": "identity"},  # the bytes as stored: digests hold
        )
        #: bytes received in all (files, parts, heads; retried bytes too)
        self.received = 0
        #: (bytes fetched, size) of each file made from an older generation held here
        self.patched: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self.stop = threading.Event()

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def where(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def _count(self, n: int) -> None:
        with self._lock:
            self.received += n

    def _pause(self, attempt: int) -> None:
        pause = min(MAX_PAUSE, self.backoff * (2**attempt)) * (1 + 0.2 * random.random())
        if self.stop.wait(pause):
            raise Interrupted()

    def get_bytes(self, rel: str, name: str) -> bytes:
        """A small file (head, part) whole; 404 is `ServerChanged`, repeated failures a
        `SyncError` naming it and the server."""
        url = self.where(rel)
        last = ""
        for attempt in range(self.retries + 1):
            try:
                with self.client.stream("GET", url) as resp:
                    if resp.status_code == 404:
                        raise ServerChanged(name, url, "not found (HTTP 404)")
                    if resp.status_code >= 500:
                        raise _Retry(f"HTTP {resp.status_code}")
                    if resp.status_code >= 400:
                        raise SyncError(f"{name}: HTTP {resp.status_code} at {url}")
                    data = bytearray()
                    for block in resp.iter_raw():
                        self._count(len(block))
                        data += block
                        if len(data) > MAX_MANIFEST_BYTES:
                            raise SyncError(f"{name} at {url} is larger than a manifest can be")
                    expected = resp.headers.get("content-length")
                    if expected is not None and int(expected) != len(data):
                        raise _Retry(f"got {len(data)} of {expected} bytes")
                    return bytes(data)
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            except _Retry as err:
                last = str(err)
            except httpx.HTTPError as err:
                raise SyncError(f"{name}: {type(err).__name__}: {err} at {url}") from err
            if attempt < self.retries:
                self._pause(attempt)
        raise SyncError(
            f"{name} could not be read from {url} after {self.retries + 1} attempts: {last}"
        )

    def fetch(
        self, item: Transfer, staging: Path, advance: Callable[[int], None] | None = None
    ) -> Path:
        """Download ``item`` into ``staging/<digest>`` (resuming ``<digest>.partial``) and
        verify it; returns the verified file. `ServerChanged` when it is not found or its
        bytes keep differing from the manifest; `SyncError` after the retries."""
        final = staging / item.sha256
        if final.exists() and final.stat().st_size == item.size:
            return final  # verified by an earlier sync or plan
        partial = staging / f"{item.sha256}.partial"
        url = self.where(item.rel)
        if item.base is not None and item.pieces and self._patch(item, url, final):
            partial.unlink(missing_ok=True)  # (a whole download an earlier sync began)
            if advance is not None:
                advance(item.size)
            return final
        last = ""
        for attempt in range(self.retries + 1):
            try:
                self._get(url, item, partial, advance)
                problem = _verify(partial, item)
                if problem is None:
                    os.replace(partial, final)
                    return final
                partial.unlink(missing_ok=True)
                if attempt == self.retries:
                    raise ServerChanged(item.name, url, problem)
                last = problem
            except _Retry as err:
                last = str(err)
            except httpx.TransportError as err:
                have = partial.stat().st_size if partial.exists() else 0
                last = f"{type(err).__name__} after {have} of {item.size} bytes"
            except httpx.HTTPError as err:
                raise SyncError(f"{item.name}: {type(err).__name__}: {err} at {url}") from err
            except OSError as err:
                write = ArchiveWriteError.from_error(err, staging)
                if write is not None:
                    raise SyncError(
                        f"{item.name} from {url} could not be written to {staging}: {write}"
                    ) from err
                raise
            if attempt < self.retries:
                self._pause(attempt)
        raise SyncError(
            f"{item.name} could not be downloaded from {url} after {self.retries + 1} "
            f"attempts: {last}"
        )

    def _patch(self, item: Transfer, url: str, final: Path) -> bool:
        """Make ``final`` from ``item.base`` and the pieces of ``item`` that differ from it,
        fetched, and verify it (`mica.sync.patch`). False when that is no gain or does not
        give the manifest's bytes (a piece that matched by its checksum alone, a damaged
        base, a server without ranges): the caller fetches the file whole."""
        assert item.base is not None and item.pieces is not None
        try:
            ranges = changed_ranges(item.base, item.size, Pieces.from_text(item.pieces, item.size))
        except (ValueError, OSError):
            return False
        if ranges is None:
            return False
        patched = final.with_name(f"{item.sha256}.patched")
        fetched = 0
        try:
            with open(patched, "w+b") as fh:
                # by the kernel (on a file system with shared extents, none copied); the room
                # of the pieces past the base's end taken now (a full disk fails here)
                copy_chunk_file(item.base, fh, max(0, item.size - item.base.stat().st_size))
                fh.truncate(item.size)
                for start, stop in ranges:
                    fh.seek(start)
                    fetched += self._get_range(url, item.name, start, stop, fh)
                fh.flush()
                os.fsync(fh.fileno())
            if _verify(patched, item) is not None:
                return False
            os.replace(patched, final)
        except (httpx.HTTPError, _Retry, ServerChanged, OSError):
            return False
        finally:
            patched.unlink(missing_ok=True)
        with self._lock:
            self.patched.append((fetched, item.size))
        return True

    def _get_range(self, url: str, name: str, start: int, stop: int, fh: BinaryIO) -> int:
        """Bytes [start, stop) of the file at ``url`` written to ``fh`` (at its position);
        `_Retry` when the server does not answer with exactly them."""
        headers = {"Range": f"bytes={start}-{stop - 1}"}
        with self.client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 404:
                raise ServerChanged(name, url, "not found (HTTP 404)")
            content_range = resp.headers.get("content-range", "")
            if resp.status_code != 206 or not content_range.startswith(
                f"bytes {start}-{stop - 1}/"
            ):
                raise _Retry(f"HTTP {resp.status_code} for bytes {start}-{stop - 1}")
            size = self._receive(resp, fh, stop - start, f"more than bytes {start}-{stop - 1}")
        if size != stop - start:
            raise _Retry(f"got {size} of bytes {start}-{stop - 1}")
        return size

    def _get(
        self, url: str, item: Transfer, partial: Path, advance: Callable[[int], None] | None
    ) -> None:
        have = partial.stat().st_size if partial.exists() else 0
        if have > item.size:
            partial.unlink()
            have = 0
        if have == item.size and item.size:
            return  # all came before the last attempt stopped: verify it
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 404:
                raise ServerChanged(item.name, url, "not found (HTTP 404)")
            if resp.status_code == 416:  # the partial file is not a prefix of this one
                partial.unlink(missing_ok=True)
                raise _Retry(f"range {have}- not satisfiable")
            if resp.status_code >= 500:
                raise _Retry(f"HTTP {resp.status_code}")
            if resp.status_code >= 400:
                raise SyncError(f"{item.name}: HTTP {resp.status_code} at {url}")
            resumed = resp.status_code == 206
            with open(partial, "ab" if resumed else "wb") as fh:
                size = have if resumed else 0
                too_much = f"the server sent more than the manifest's {item.size} bytes"
                size += self._receive(resp, fh, item.size - size, too_much, advance)
                fh.flush()
                os.fsync(fh.fileno())
            if size != item.size:
                raise _Retry(f"got {size} of {item.size} bytes")

    def _receive(
        self,
        resp: httpx.Response,
        fh: BinaryIO,
        room: int,
        too_much: str,
        advance: Callable[[int], None] | None = None,
    ) -> int:
        """``resp``'s body written to ``fh`` as it arrives (a dropped connection keeps what
        came); its size. `_Retry` (``too_much``) past ``room`` bytes, `Interrupted` once the
        transfers are told to stop."""
        size = 0
        for block in resp.iter_raw():
            if self.stop.is_set():
                raise Interrupted()
            size += len(block)
            if size > room:
                raise _Retry(too_much)
            fh.write(block)
            self._count(len(block))
            if advance is not None:
                advance(len(block))
        return size

    def fetch_all(
        self,
        items: Iterable[Transfer],
        staging: Path,
        progress: TransferProgress | None = None,
    ) -> dict[str, Path]:
        """Download ``items`` with at most ``transfers`` at a time; digest -> verified file.

        The first failure stops the others (their partial files stay, resumed by the next
        attempt); Ctrl-C too, re-raised here once the transfers have stopped.
        """
        make_folders(staging)
        items = list(items)
        out: dict[str, Path] = {}

        def one(item: Transfer) -> Path:
            path = self.fetch(item, staging, progress.add if progress is not None else None)
            if progress is not None:
                progress.add(files=1)
            return path

        self.stop.clear()
        pool = ThreadPoolExecutor(self.transfers)
        try:
            futures = {pool.submit(one, item): item for item in items}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()
            for future, item in futures.items():
                out[item.sha256] = future.result()
        except BaseException:
            self.stop.set()  # the other transfers end at their next block
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        fsync_dir(staging)
        return out


def _verify(path: Path, item: Transfer) -> str | None:
    """Why a downloaded file is not the manifest's (None: it is)."""
    size = path.stat().st_size
    if size != item.size:
        return f"{size} bytes where the manifest says {item.size}"
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    if h.hexdigest() != item.sha256:
        got, want = h.hexdigest()[:16], item.sha256[:16]
        return f"its bytes differ from the manifest's (sha256 {got}..., expected {want}...)"
    return None
