"""``mica vv --obsid N``: the V&V disposition of an obsid revision, with its reasons."""

from __future__ import annotations

import sys

import click

from mica.cli._group import main, user_error


@main.command()
@click.option("--obsid", type=int, required=True, help="The obsid.")
@click.option(
    "--version",
    default="default",
    show_default=True,
    help="'default', 'last' or a revision number.",
)
@click.option(
    "--compute",
    is_flag=True,
    help="Compute it from the aspect L1 and obspar archives (writes nothing) even when the "
    "V&V archive has it.",
)
def vv(obsid: int, version: str, compute: bool) -> None:
    """Print the V&V disposition (OK, WARN, BAD) of an obsid revision and its reasons.

    Reads the V&V archive (filled by 'mica update vv'); an obsid revision not in it, or
    --compute, is computed from the aspect L1 archive. Exit status 0 for OK, 1 for WARN or
    BAD (or no archive there), 2 when there is nothing to report.
    """  # plain text: click shows it as written (mica vv --help)
    from mica.errors import MicaError, MissingArchiveError
    from mica.vv import get_arch_vv, get_vv

    ver: str | int = int(version) if version.isdigit() else version
    if ver not in ("default", "last") and not isinstance(ver, int):
        raise click.BadParameter("'default', 'last' or a revision number", param_hint="--version")
    info = None
    where = "V&V archive"
    unread: MicaError | None = None
    try:
        if not compute:
            try:
                info = get_vv(obsid, ver)
            except MicaError as err:
                unread = err
        if info is None:
            obi = get_arch_vv(obsid, ver)
            if obi is None:
                raise click.ClickException(f"obsid {obsid} has no aspect processing row")
            info = obi.info()
            where = "computed from the aspect L1 archive"
    except MissingArchiveError as err:  # no archive there: a wrong --archive, status 1
        if isinstance(unread, MissingArchiveError):  # neither archive: both named
            err = MissingArchiveError(f"no V&V archive in {unread.folder}, and {err}")
        raise user_error(err) from err
    except MicaError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    disp = info["disposition"]
    click.echo(f"obsid {info['obsid']} revision {info['revision']}: {disp['status']} ({where})")
    for reason in disp["reasons"]:
        click.echo(f"  {reason}")
    for key in sorted(info["slots"], key=int):
        rep = info["slots"][key]
        if "n_pts" in rep:
            click.echo(
                f"  slot {key} {rep['type']:<7} n={rep['n_pts']:<6} "
                f"dy_rms={_f(rep.get('dy_rms'))} dz_rms={_f(rep.get('dz_rms'))} "
                f"rad_off={_f(rep.get('rad_off'))}"
            )
    sys.exit(0 if disp["status"] == "OK" else 1)


def _f(value: object) -> str:
    return "-" if value is None else f"{float(value):.3f}"
