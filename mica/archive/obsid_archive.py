"""The original's ``ObsArchive``: a per-obsid archive (aspect L1 or obspar) driven by a config.

``ObsArchive(asp_l1.CONFIG)`` or ``ObsArchive(obspar.CONFIG)`` (or a copy with changed
options) reads its archive as `mica.archive.asp_l1` / `mica.archive.obspar` do, and
``update()`` runs ``mica update asp-l1`` / ``mica update obspar`` (the engine's runner, as a
command: a reader module never imports the sources). The product is named by
``config['label']``; the keys describing its layout (``sql_def``, ``small_glob``,
``content_types``, ...) must keep this archive's values. The update options map as follows:

* ``obsid``: that obsid only (``--obsid``); otherwise everything new since the newest
  archived data, plus the obsids whose last revision is provisional;
* ``version``: ``'last'`` (the original's default) or ``'default'``; both revisions are
  fetched whenever they exist, so a revision number is refused;
* ``filecheck``: fetch again the revisions already complete and verify them (``--refresh``);
* ``firstrun``, ``rebuild``, ``temp_root``: accepted and without effect (a first update
  fetches each obsid's current revisions; staging is inside the product folder);
* ``source`` (not in the original): where the files come from (``sim``, ``dir:PATH``,
  ``arc5gl``, ``cda``); default: the source recorded in the archive.

Any other key, or an option value that cannot be honoured, raises `ObsArchiveConfigError`
(a `mica.errors.MicaError`) naming it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mica.engine.obsid_read import Revision
from mica.errors import MicaError
from mica.products.obspar import get_obspar
from mica.time import CxoTimeLike

__all__ = [
    "ObsArchive",
    "ObsArchiveConfigError",
    "ProductVersionError",
    "get_obspar",
    "parse_obspar",
]

#: ``config['label']`` -> (product command, reader module)
_PRODUCTS = {
    "asp_l1": ("asp-l1", "mica.archive.asp_l1"),
    "obspar": ("obspar", "mica.archive.obspar"),
}
#: options of the update (the original's, then this archive's additions)
_OPTIONS = ("obsid", "version", "filecheck", "firstrun", "rebuild", "temp_root", "source")
#: keys whose value is a folder of this archive (checked against ``data_root``)
_FOLDERS = ("data_root", "bad_obsids")


class ObsArchiveConfigError(MicaError, ValueError):
    """A config key or option value this archive cannot honour (the message names it)."""


class ProductVersionError(MicaError, LookupError):
    """No product of the asked obsid and version (the original's name)."""


def parse_obspar(file: str | Path) -> Iterator[dict[str, Any]]:
    """The parameters of an obspar file as rows ``{'name': ..., 'value': ...}``, typed as
    `get_obspar` types them (the original's rows also carried the IRAF type, mode and
    prompt columns)."""
    for name, value in get_obspar(file).items():
        yield {"name": name, "value": value}


class ObsArchive:
    """A per-obsid archive named by a config (see the module docstring).

    Parameters
    ----------
    config : mapping
        ``asp_l1.CONFIG`` or ``obspar.CONFIG``, possibly with another ``data_root`` and the
        update options.

    Raises
    ------
    ObsArchiveConfigError
        An unknown product label, a changed layout key, an unknown key or an option value
        that cannot be honoured.

    Examples
    --------
    >>> from mica.archive import asp_l1, obsid_archive
    >>> archive = obsid_archive.ObsArchive(asp_l1.CONFIG)
    >>> archive.get_dir(10369) == asp_l1.get_dir(10369)
    True
    """

    def __init__(self, config: Mapping[str, Any]):
        self._config = dict(config)
        self._logger = logging.getLogger("ObsArchive")
        label = self._config.get("label")
        if label not in _PRODUCTS:
            raise ObsArchiveConfigError(
                f"config label {label!r}: this archive has {sorted(_PRODUCTS)} (start from "
                "asp_l1.CONFIG or obspar.CONFIG)"
            )
        self.product, module = _PRODUCTS[label]
        self._reader = importlib.import_module(module)
        self.summary = ""
        self._check()

    @property
    def config(self) -> dict[str, Any]:
        """The configuration given."""
        return self._config

    @property
    def logger(self) -> logging.Logger:
        """The ``ObsArchive`` logger (the update's summary goes there)."""
        return self._logger

    @property
    def data_root(self) -> str:
        """The product folder (``config['data_root']``, default the archive's)."""
        return str(self._config.get("data_root") or self._reader.CONFIG["data_root"])

    def _check(self) -> None:
        fixed = self._reader.CONFIG
        for key, value in self._config.items():
            if key in _OPTIONS or key == "data_root":
                continue
            if key not in fixed:
                raise ObsArchiveConfigError(
                    f"config key {key!r} is not an option here; the options are "
                    f"{', '.join(('data_root', *_OPTIONS))}"
                )
            expected = fixed[key]
            allowed = [expected]
            if key in _FOLDERS:  # where this archive keeps it, also under the data_root given
                allowed.append(str(Path(self.data_root) / Path(expected).name))
            if isinstance(value, (list, tuple)):
                value, allowed = list(value), [list(a) for a in allowed]
            if value not in allowed:
                raise ObsArchiveConfigError(
                    f"config {key!r} = {value!r}: the {self.product} layout here has "
                    f"{expected!r} (it cannot be changed; only data_root and the options "
                    f"{', '.join(_OPTIONS)} can)"
                )
        version = self._config.get("version", "last")
        if version not in ("last", "default"):
            raise ObsArchiveConfigError(
                f"version {version!r}: `mica update {self.product}` fetches the default and "
                "last revisions of each obsid; a given revision cannot be asked for"
            )

    # --- reading ---------------------------------------------------------------------------
    def get_dir(self, obsid: int) -> str | None:
        """The default revision's folder of an obsid (None when it has none)."""
        return self._reader.get_dir(obsid, data_root=self.data_root)

    def get_obs_dirs(self, obsid: int) -> dict[Any, Any] | None:
        """The revision folders of an obsid (None when nothing of it is archived)."""
        return self._reader.get_obs_dirs(obsid, data_root=self.data_root)

    def get_files(
        self,
        obsid: int | None = None,
        start: CxoTimeLike = None,
        stop: CxoTimeLike = None,
        revision: Revision = None,
        content: str | Sequence[str] | None = None,
    ) -> list[str]:
        """Paths of the product's files by obsid or time range (see the reader module)."""
        kwargs: dict[str, Any] = dict(obsid=obsid, start=start, stop=stop, revision=revision)
        if self.product == "asp-l1":
            kwargs["content"] = content
        elif content not in (None, "OBSPAR", ["OBSPAR"]):
            raise ValueError(f"obspar content is 'OBSPAR', not {content!r}")
        return self._reader.get_files(**kwargs, data_root=self.data_root)

    # --- updating --------------------------------------------------------------------------
    def update(self) -> list[int]:
        """Run the product's update with this config (see the module docstring).

        The same update as ``mica update asp-l1`` / ``mica update obspar``, run by the engine
        in this process; the source is the one the archive records (or the config's
        ``source``).

        Returns
        -------
        list of int
            ``[obsid]`` for an obsid's update, else the obsids updated (the update's summary
            is logged and kept as ``summary``).

        Raises
        ------
        mica.errors.MicaError
            When an obsid failed or a file was refused (the message is the update's summary);
            what was archived before is kept.
        """
        from mica.engine import registry

        options: dict[str, Any] = {"data_root": self.data_root}
        obsid = self._config.get("obsid")
        if obsid:
            options["obsids"] = [int(obsid)]
        if self._config.get("filecheck"):
            options["refresh"] = True
        if self._config.get("source"):
            options["source"] = str(self._config["source"])
        report = registry.get(self.product).update(**options)
        self.summary = report.summary()
        self.logger.info(self.summary)
        if not report.ok:
            raise MicaError(f"update {self.product} {options} failed:\n{self.summary}")
        if obsid:
            return [int(obsid)]
        return sorted(int(k) for k in report.done)

    def get_arch(self, obsid: int, version: str = "last") -> str | None:
        """Archive an obsid's revisions (``update`` with ``obsid``) and give the folder of
        ``version`` ('last' or 'default'); `ProductVersionError` when it has none."""
        ObsArchive({**self._config, "obsid": obsid, "version": version}).update()
        dirs = self.get_obs_dirs(obsid) or {}
        if version not in dirs:
            raise ProductVersionError(f"no {self.product} data of obsid {obsid} for {version}")
        return dirs[version]
