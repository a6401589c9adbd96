"""``cda``: the public Chandra Data Archive over HTTPS, as a source of per-obsid products.

Two public services (their text is parsed by `mica.sources.cda_lists`):

* the archive file list, ``<srservices>/archiveFileList.do?obsid=N&detector=pcad&
  subdetector=aca&level=1&dataset=flight``: tab-separated ``Filename``, ``Filesize`` (of the
  uncompressed file, thousands commas), ``Timestamp``;
* the bulk-download tree ``<pub>/byobsid/<last digit>/<obsid>/{primary,secondary}/``, every
  file gzipped (``<Filename>.gz``), aspect files under ``secondary/aspect``; and for time
  ranges the Ocat summary list ``ocatList.do?startDate=...&format=text``.

Downloads run in a bounded thread pool over one `httpx.Client`; each file goes to
``<name>.partial`` in a download cache (``<archive>/.cda-downloads/<product>/``) and is
resumed there with a Range request by a later attempt or run; 5xx answers, dropped
connections and timeouts are retried with exponential backoff; a file is accepted only
when its byte count matches the response, its gzip stream is whole and it decompresses to
the listed size. A revision is delivered only when every file of it arrived, so nothing
partial reaches the archive; otherwise `SourceError` names each file and why it failed.

Hostile servers: redirects are followed by hand, at most `MAX_REDIRECTS`, and only to the
host:port of the services or the tree (anything else, or a loop, is a `SourceError` naming
both URLs); each file (and each service request) has an overall deadline
(``file_deadline``, all attempts included) and the source one per run (``run_deadline``, from
its first request). httpx bounds only each read, so a server dripping a byte a second never
times out there: the client's sockets come from `mica.sources.http_deadline.DeadlineBackend`,
whose every connect, read and write is cut at the calling thread's deadline -- a server
dripping the response headers or the body holds an update no longer than the deadline. A
passed file deadline fails that file (the others go on); a passed run deadline fails what is
left of the run with one message.
No download reads past ``max_file_bytes`` (or, for a listed size, a little over that size), so
an endless or oversized body never fills the disk. Each limit may be set by
``MICA_CDA_FILE_DEADLINE``, ``MICA_CDA_RUN_DEADLINE``, ``MICA_CDA_MAX_FILE_BYTES``.

The public archive holds one (the released) revision per obsid, no obspar files and no
ACA level-0 images: asking for those gives a clear `NotPublic` error; aspect L1 contents
missing from its list (e.g. ACACENT) are reported in ``notes``.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import shutil
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from mica import config
from mica.engine.atomic import replace_durable
from mica.engine.product import STAGING_DIR, FileProduct
from mica.engine.source import Source, SourceError, sources_for
from mica.errors import NotPublic
from mica.sources.cda_lists import Listed, ocat_interval, parse_file_list, parse_rdb
from mica.sources.http_deadline import DeadlineBackend, deadline_transport, env_proxies
from mica.time import to_date

DEFAULT_SERVICES = "https://cda.harvard.edu/srservices"
DEFAULT_TREE = "https://cdaftp.cfa.harvard.edu/pub"
#: per product: the file-list query, or None when the public archive does not hold it
PUBLIC_QUERY = {"asp-l1": {"detector": "pcad", "subdetector": "aca", "level": "1"}}
NOT_PUBLIC = {
    "obspar": "the public Chandra Data Archive does not distribute obspar files "
    "(axaff*_obs0a.par); use --source sim, dir:PATH or arc5gl",
    "aca-l0": "the public Chandra Data Archive does not hold ACA level-0 image files; "
    "use --source sim, dir:PATH or arc5gl",
}
#: redirects followed per request (within the configured hosts)
MAX_REDIRECTS = 5
#: defaults: seconds for one file (all attempts), seconds for a run, bytes of one download
FILE_DEADLINE = 1800.0
RUN_DEADLINE = 6 * 3600.0
MAX_FILE_BYTES = 1 << 30
#: a gzip file is at most this much bigger than its listed (uncompressed) size
_GZIP_SLACK = 65536
#: where a file type sits in the bulk tree, most likely first
_LOCATIONS = {
    "asol1": ("primary", "secondary/aspect"),
    "default": ("secondary/aspect", "secondary", "primary"),
}


@dataclass
class DownloadResult:
    name: str
    path: Path | None = None
    error: str | None = None
    bytes: int = 0


class _Retry(Exception):
    """A transient failure worth another attempt."""


class CDASource(Source):
    """The public Chandra Data Archive (see the module docstring)."""

    scheme = "cda"
    products = frozenset(PUBLIC_QUERY)

    def __init__(
        self,
        base: str | None = None,
        workers: int = 8,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 30.0,
        progress: bool | None = None,
        cache_dir: str | Path | None = None,
        client: httpx.Client | None = None,
        file_deadline: float | None = None,
        run_deadline: float | None = None,
        max_file_bytes: int | None = None,
    ):
        base = (base or config.cda_url() or "").rstrip("/")
        self.file_deadline = _limit(
            file_deadline, config.cda_file_deadline, config.CDA_FILE_DEADLINE, FILE_DEADLINE, float
        )
        self.run_deadline = _limit(
            run_deadline, config.cda_run_deadline, config.CDA_RUN_DEADLINE, RUN_DEADLINE, float
        )
        self.max_file_bytes = _limit(
            max_file_bytes,
            config.cda_max_file_bytes,
            config.CDA_MAX_FILE_BYTES,
            MAX_FILE_BYTES,
            int,
        )
        self._run_end: float | None = None  # set by the first request
        self.services = f"{base}/srservices" if base else DEFAULT_SERVICES
        self.tree = f"{base}/pub" if base else DEFAULT_TREE
        self.spec = f"cda:{base}" if base else "cda"
        # Another base URL is a mirror (or a test server): its files tell what they are.
        self.provenance = None if base else "real"
        self.workers = max(1, int(workers))
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.hosts = {urlsplit(self.services).netloc, urlsplit(self.tree).netloc}
        #: bounds every socket operation of a request by its deadline (see `DeadlineBackend`)
        self.clock = DeadlineBackend()
        if client is None:
            client = self._client(timeout)
            # a source dropped without close() (the update runner does not close the sources
            # it makes) still closes its pooled sockets, not leaving them to the collector
            self._closer = weakref.finalize(self, client.close)
        else:
            self._closer = client.close
        self.client = client
        self.notes: list[str] = []
        self._lists: dict[tuple[str, int], list[Listed]] = {}

    @classmethod
    def from_arg(cls, arg: str) -> CDASource:
        return cls(arg or None)

    def cannot_deliver(self, product: FileProduct) -> SourceError:
        text = NOT_PUBLIC.get(product.name, f"the public archive does not serve {product.name}")
        return NotPublic(f"{text} (sources that can: {', '.join(sources_for(product.name))})")

    def _client(self, timeout: float) -> httpx.Client:
        """The client of the source: sockets bounded by `clock`, redirects by hand."""
        limits = httpx.Limits(
            max_connections=self.workers + 2, max_keepalive_connections=self.workers
        )
        # Through an environment proxy (httpx mounts it only when given no transport) the
        # deadlines are checked between reads of the body only.
        transport = None if env_proxies() else deadline_transport(limits, self.clock)
        return httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,  # by hand: bounded, within the configured hosts
            limits=limits,
            transport=transport,
            # identity: byte ranges then refer to the .gz file itself
            headers={"User-Agent": "mica (Chandra ACA archive)", "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self._closer()

    # --- services -----------------------------------------------------------------------
    def service(self, name: str, params: dict[str, str]) -> str:
        """The text of the web service ``<services>/<name>.do`` asked with ``params``
        (``ocatList``, ``ocatDetails``, ``archiveFileList``, ``propAbstract``)."""
        return self._get_text(f"{self.services}/{name}.do", params)

    def _get_text(self, url: str, params: dict[str, str]) -> str:
        """GET with retries on 5xx and transport errors; 4xx raise SourceError at once."""
        last = ""
        deadline = time.monotonic() + self.file_deadline  # all attempts, as for a file
        for attempt in range(self.retries + 1):
            self._check_run(url)
            try:
                with self.clock.until(self._bound(deadline)):
                    with closing(self._follow("GET", url, params=params)) as resp:
                        resp.read()
            except httpx.TransportError as err:
                passed = self._passed(url, deadline)
                if passed is not None:
                    raise passed from err
                last = f"{type(err).__name__}: {err}"
            except httpx.HTTPError as err:  # anything else httpx refuses: say it plainly
                raise SourceError(f"{url}: {type(err).__name__}: {err}") from err
            else:
                if resp.status_code < 400:
                    return resp.text
                last = f"HTTP {resp.status_code} from {resp.url}: {resp.text[:200]}"
                if resp.status_code < 500:
                    raise SourceError(last)
            self._sleep(attempt, deadline)
        raise SourceError(f"{url} failed after {self.retries + 1} attempts: {last}")

    def _check_run(self, url: str) -> None:
        """Start the run's clock at the first request; refuse requests once it is over."""
        now = time.monotonic()
        if self._run_end is None:
            self._run_end = now + self.run_deadline
        elif now > self._run_end:
            raise SourceError(
                f"run deadline of {self.run_deadline:g} s passed before {url} "
                "(MICA_CDA_RUN_DEADLINE; a re-run resumes)"
            )

    def _bound(self, deadline: float) -> float:
        """The earlier of ``deadline`` and the end of the run."""
        return deadline if self._run_end is None else min(deadline, self._run_end)

    def _passed(self, url: str, deadline: float, detail: str = "") -> SourceError | None:
        """The error naming the deadline that has passed at ``url`` (the run's, else the
        file's), or None while both hold."""
        now = time.monotonic()
        if self._run_end is not None and now >= self._run_end:
            which = f"run deadline of {self.run_deadline:g} s (MICA_CDA_RUN_DEADLINE)"
        elif now >= deadline:
            which = f"file deadline of {self.file_deadline:g} s (MICA_CDA_FILE_DEADLINE)"
        else:
            return None
        return SourceError(f"{url}: {which} passed{detail}")

    def _run_passed(self) -> bool:
        return self._run_end is not None and time.monotonic() >= self._run_end

    def _follow(
        self, method: str, url: str, params: dict[str, str] | None = None, **kwargs
    ) -> httpx.Response:
        """An open (streamed) response to ``url``, redirects followed within the configured
        hosts, at most `MAX_REDIRECTS`; the caller closes it."""
        seen: list[str] = []
        for _ in range(MAX_REDIRECTS + 1):
            request = self.client.build_request(method, url, params=params, **kwargs)
            resp = self.client.send(request, stream=True, follow_redirects=False)
            if not resp.is_redirect:
                return resp
            resp.close()
            here = str(request.url)
            target = urljoin(here, resp.headers.get("location", ""))
            netloc = urlsplit(target).netloc
            if urlsplit(target).scheme not in ("http", "https") or netloc not in self.hosts:
                raise SourceError(
                    f"{here} redirects to {target}: not followed (outside "
                    f"{', '.join(sorted(self.hosts))})"
                )
            seen.append(here)
            if target in seen:
                raise SourceError(f"redirect loop at {here} (back to {target})")
            url, params = target, None  # the query is part of the target
        raise SourceError(f"more than {MAX_REDIRECTS} redirects from {seen[0]} (last {url})")

    def _sleep(self, attempt: int, deadline: float = float("inf")) -> None:
        """Back off before another attempt; never past ``deadline`` or the run's end."""
        if attempt < self.retries:
            pause = self.backoff * (2**attempt) * (1 + 0.2 * random.random())
            time.sleep(max(0.0, min(pause, self._bound(deadline) - time.monotonic())))

    def file_list(self, product: FileProduct, obsid: int) -> list[Listed]:
        """The archive file list of an obsid for a product (cached per run)."""
        query = PUBLIC_QUERY.get(product.name)
        if query is None:
            raise NotPublic(
                NOT_PUBLIC.get(product.name, f"the public archive does not serve {product.name}")
            )
        key = (product.name, obsid)
        if key not in self._lists:
            params = {"obsid": str(obsid), **query, "dataset": "flight"}
            text = self.service("archiveFileList", params)
            self._lists[key] = parse_file_list(text)
        return self._lists[key]

    # --- Source contract -------------------------------------------------------------------
    def fetch(
        self,
        product: FileProduct,
        start: float,
        stop: float,
        dest: Path,
        lookback: float | None = None,
    ) -> list[Path]:
        if product.name in NOT_PUBLIC:
            raise NotPublic(NOT_PUBLIC[product.name])
        raise SourceError(
            f"the public archive is organised by obsid: update {product.name} "
            "with --obsid or a time range (listed through the Ocat)"
        )

    def obsids(self, product: FileProduct, start: float, stop: float) -> list[int]:
        if product.name not in PUBLIC_QUERY:
            raise NotPublic(NOT_PUBLIC.get(product.name, f"{product.name} is not public"))
        dates = f"{to_date(start)[:8]}/{to_date(stop)[:8]}"
        text = self.service("ocatList", {"startDate": _iso_range(start, stop), "format": "text"})
        rows = parse_rdb(text)
        if rows and "obsid" not in rows[0]:
            raise SourceError(f"Ocat list for {dates} has no obsid column")
        return [int(r["obsid"]) for r in rows if str(r.get("obsid", "")).strip().isdigit()]

    def obsid_interval(self, obsid: int) -> tuple[float, float] | None:
        """(start, start + exposure) of an obsid from the Ocat details service (columns
        ``start_date`` and ``exp_time``, `ocat_interval`); None when the Ocat does not list it
        or gives no start date (not yet observed)."""
        text = self.service("ocatDetails", {"obsid": str(obsid), "format": "text"})
        return ocat_interval(parse_rdb(text), obsid)

    def revisions(self, product: FileProduct, obsid: int) -> tuple[int | None, int | None]:
        revs = {product.name_revision(f.name) for f in self._product_files(product, obsid)}
        revs.discard(None)
        if not revs:
            return None, None
        # The public tree holds the released revision only: default and last are the same.
        rev = max(revs)
        return rev, rev

    def _product_files(self, product: FileProduct, obsid: int) -> list[Listed]:
        return [
            f
            for f in self.file_list(product, obsid)
            if getattr(product, "classify", lambda n: None)(f.name) is not None
        ]

    def fetch_obsid(
        self, product: FileProduct, obsid: int, revision: int, dest: Path
    ) -> list[Path]:
        files = [
            f
            for f in self._product_files(product, obsid)
            if product.name_revision(f.name) == revision
        ]
        if not files:
            return []
        missing = self._missing_contents(product, files)
        if missing:
            self.notes.append(
                f"obsid {obsid}: the public archive does not hold "
                f"{', '.join(missing)} (archived what it has)"
            )
        cache = self._cache(dest, product)
        results = self.download_all(obsid, files, cache)
        failed = [r for r in results if r.error]
        if failed and self._run_passed():  # one message for the run, not one per file
            others = [
                f"{r.name}: {r.error}" for r in failed if "MICA_CDA_RUN_DEADLINE" not in r.error
            ]
            raise SourceError(
                f"run deadline of {self.run_deadline:g} s (MICA_CDA_RUN_DEADLINE) passed while "
                f"fetching obsid {obsid}: {len(failed)} of {len(results)} files not fetched "
                f"({', '.join(r.name for r in failed)}; nothing of revision {revision} "
                "archived; a re-run resumes)" + "".join(f"; {o}" for o in others)
            )
        if failed:
            raise SourceError(
                f"{len(failed)} of {len(results)} downloads failed for obsid "
                f"{obsid} (nothing of revision {revision} archived; a re-run "
                "resumes): " + "; ".join(f"{r.name}: {r.error}" for r in failed)
            )
        out = []
        for r in results:
            target = Path(dest) / r.path.name
            shutil.move(str(r.path), target)
            out.append(target)
        return out

    def _missing_contents(self, product: FileProduct, files: list[Listed]) -> list[str]:
        have = set()
        by_suffix = getattr(product, "suffix_contents", {})
        for f in files:
            match = re.search(r"_([a-z]+)1\.fits", f.name)
            if match and match.group(1) + "1" in by_suffix:
                have.add(by_suffix[match.group(1) + "1"])
        wanted = getattr(product, "contents", ())
        return [c for c in wanted if c not in have]

    def _cache(self, dest: Path, product: FileProduct) -> Path:
        if self.cache_dir is not None:
            cache = self.cache_dir / product.name
        else:
            # Beside the product folder, so `mica check` never mistakes it for archive files
            # and a later run resumes what this one left (every run wipes the staging folder
            # ``<product>/staging/<unit>/<revision>`` that ``dest`` is in).
            here = Path(dest).resolve()
            root = next((p.parent for p in here.parents if p.name == STAGING_DIR), here.parent)
            cache = root.parent / ".cda-downloads" / product.name
        cache.mkdir(parents=True, exist_ok=True)
        return cache

    # --- downloads ---------------------------------------------------------------------------
    def download_all(
        self, obsid: int, files: list[Listed], cache: Path, workers: int | None = None
    ) -> list[DownloadResult]:
        """Download files of one obsid in parallel (at most ``workers`` at a time)."""
        cache.mkdir(parents=True, exist_ok=True)
        # the bar counts transferred (compressed) bytes; the list gives uncompressed sizes
        with (
            _Progress(self.progress, f"cda obsid {obsid}", 0) as bar,
            ThreadPoolExecutor(max_workers=workers or self.workers) as pool,
        ):
            futures = [pool.submit(self._download, obsid, f, cache, bar.advance) for f in files]
            return [fut.result() for fut in futures]

    def urls(self, obsid: int, name: str) -> list[str]:
        """Candidate URLs of a listed file in the bulk tree, most likely first."""
        match = re.search(r"_([a-z]+\d?)\.fits", name)
        file_type = match.group(1) if match else ""
        where = _LOCATIONS.get(file_type, _LOCATIONS["default"])
        base = f"{self.tree}/byobsid/{obsid % 10}/{obsid}"
        return [f"{base}/{folder}/{name}.gz" for folder in where]

    def _download(
        self, obsid: int, item: Listed, cache: Path, advance: Callable[[int], None]
    ) -> DownloadResult:
        final = cache / (item.name + ".gz")
        partial = cache / (item.name + ".gz.partial")
        result = DownloadResult(item.name)
        if final.exists():
            try:
                self._verify(final, item)
                result.path, result.bytes = final, final.stat().st_size
                return result
            except _Retry:
                final.unlink(missing_ok=True)
        urls = self.urls(obsid, item.name)
        last = "no attempt"
        attempt = 0
        deadline = time.monotonic() + self.file_deadline
        limit = self.max_file_bytes
        if item.size is not None:  # gzip adds a little to data that does not compress
            limit = min(limit, item.size + item.size // 100 + _GZIP_SLACK)
        while attempt <= self.retries:
            if not urls:
                break
            try:
                self._check_run(urls[0])
                got = self._get_file(urls[0], partial, advance, deadline, limit)
                if got is None:  # 404: try the next location, no retry counted
                    last = f"not found (HTTP 404) at {urls[0]}"
                    urls = urls[1:]
                    continue
                self._verify(partial, item, self.max_file_bytes)
                replace_durable(partial, final)
                result.path, result.bytes = final, final.stat().st_size
                return result
            except _Retry as err:
                last = str(err)
            except SourceError as err:
                result.error = str(err)
                return result
            if time.monotonic() > deadline:
                result.error = f"{last}; file deadline of {self.file_deadline:g} s passed"
                return result
            self._sleep(attempt, deadline)
            attempt += 1
        result.error = (f"{last}" if urls else f"{last}; not in the public bulk tree") + (
            f" (after {attempt} attempts)" if attempt else ""
        )
        return result

    def _get_file(
        self,
        url: str,
        partial: Path,
        advance: Callable[[int], None],
        deadline: float = float("inf"),
        limit: int | None = None,
    ) -> int | None:
        """Fetch ``url`` into ``partial`` (resuming it); bytes written, None on 404.

        Past ``deadline`` (monotonic) or past ``limit`` bytes in all it stops and raises
        `SourceError` (the partial file is removed when too big).
        """
        limit = self.max_file_bytes if limit is None else limit
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            # every socket operation ends by the deadline: dripped headers cannot hold it
            with (
                self.clock.until(self._bound(deadline)),
                closing(self._follow("GET", url, headers=headers)) as resp,
            ):
                if resp.status_code == 404:
                    return None
                if resp.status_code == 416:  # our partial is bigger than the file: restart
                    partial.unlink(missing_ok=True)
                    raise _Retry(f"range {have}- not satisfiable at {url}")
                if resp.status_code >= 500:
                    raise _Retry(f"HTTP {resp.status_code} at {url}")
                if resp.status_code >= 400:
                    raise SourceError(f"HTTP {resp.status_code} at {url}")
                resumed = resp.status_code == 206
                expected = _expected_length(resp, have if resumed else 0)
                if expected is not None and expected > limit:
                    partial.unlink(missing_ok=True)
                    raise SourceError(
                        f"{url} announces {expected} bytes, more than the limit of {limit} "
                        "(MICA_CDA_MAX_FILE_BYTES): refused"
                    )
                mode = "ab" if resumed else "wb"
                written = 0
                total = have if resumed else 0
                with open(partial, mode) as fh:
                    # raw bytes as they arrive, so a dropped connection keeps what came
                    for chunk in resp.iter_raw():
                        total += len(chunk)
                        if total > limit:
                            fh.close()
                            partial.unlink(missing_ok=True)
                            raise SourceError(
                                f"{url} sent more than the limit of {limit} bytes "
                                "(MICA_CDA_MAX_FILE_BYTES): refused"
                            )
                        fh.write(chunk)
                        written += len(chunk)
                        advance(len(chunk))
                        # (a client of the caller's has no `clock`: checked here as well)
                        passed = self._passed(url, deadline, f" after {total} bytes")
                        if passed is not None:
                            fh.flush()  # what came is kept: a later run resumes it
                            raise passed
                    fh.flush()
                    os.fsync(fh.fileno())
                size = partial.stat().st_size
                if expected is not None and size != expected:
                    raise _Retry(f"got {size} of {expected} bytes from {url}")
                return written
        except httpx.TransportError as err:  # dropped connection, timeout, refused
            size = partial.stat().st_size if partial.exists() else 0
            kept = f" ({size} bytes of it kept for a re-run)" if size else " (nothing received)"
            passed = self._passed(url, deadline, kept)
            if passed is not None:  # the clock cut the request: no retry
                raise passed from err
            raise _Retry(f"{type(err).__name__} at {url}: {err}") from err
        except httpx.HTTPError as err:  # anything else httpx refuses: say it plainly
            raise SourceError(f"{url}: {type(err).__name__}: {err}") from err

    def _verify(self, path: Path, item: Listed, cap: int | None = None) -> None:
        """The gzip stream is whole and decompresses to the listed size (at most ``cap``)."""
        cap = self.max_file_bytes if cap is None else cap
        try:
            with gzip.open(path, "rb") as gz:
                size = 0
                while chunk := gz.read(1 << 20):
                    size += len(chunk)
                    if size > cap:  # an unlisted size: a bomb must not run on
                        path.unlink(missing_ok=True)
                        raise SourceError(
                            f"{item.name} decompresses to more than the limit of {cap} bytes "
                            "(MICA_CDA_MAX_FILE_BYTES): refused"
                        )
        except (EOFError, OSError, zlib.error) as err:
            path.unlink(missing_ok=True)
            raise _Retry(f"corrupt or truncated gzip data ({err})") from err
        if item.size is not None and size != item.size:
            path.unlink(missing_ok=True)
            raise _Retry(f"decompressed to {size} bytes, the archive lists {item.size}")


def _limit(
    value: float | None,
    setting: Callable[[], float | None],
    env: str,
    default: float,
    kind: type,
) -> float:
    """``value`` (positive), else the ``setting`` of `mica.config` (the variable ``env``),
    else ``default``."""
    if value is None:
        value = setting()
        if value is None:
            return kind(default)
    if value <= 0:
        raise SourceError(f"{env}: the limit must be positive (got {value})")
    return kind(value)


def _expected_length(resp: httpx.Response, offset: int) -> int | None:
    """Total file length the response promises (Content-Range total, or offset + length)."""
    crange = resp.headers.get("content-range", "")
    match = re.match(r"bytes \d+-\d+/(\d+)", crange)
    if match:
        return int(match.group(1))
    length = resp.headers.get("content-length")
    return offset + int(length) if length is not None else None


def _iso_range(start: float, stop: float) -> str:
    from mica.time import conversion_scope, to_time

    with conversion_scope():
        return f"{to_time(start).utc.iso[:10]}/{to_time(stop).utc.iso[:10]}"


class _Progress:
    """A rich transfer bar shared by the download threads (or nothing)."""

    def __init__(self, enabled: bool, title: str, total: int):
        self.enabled, self.title, self.total = enabled, title, total
        self.lock = threading.Lock()
        self.bar = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task(self.title, total=self.total or None)
        return self

    def advance(self, n: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(self.task, advance=n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
