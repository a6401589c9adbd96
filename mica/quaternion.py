"""Vectorised Chandra quaternion math.

Quaternions are ``(..., 4)`` float arrays ``(x, y, z, w)``, scalar last, stored with the sign
rule ``w >= 0``; a quaternion's transform ``T`` takes body-frame vectors to ECI (its columns
are the body axes). Angles are in degrees, ACA angles (yag, zag) in arcsec. Every function
broadcasts over leading axes and depends on numpy alone (the base layer of mica).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "dir_to_yagzag",
    "eci_to_radec",
    "from_equatorial",
    "from_transform",
    "multiply",
    "normalize",
    "rotation",
    "to_equatorial",
    "to_transform",
    "yagzag_to_dir",
]


def normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with the sign rule.

    Parameters
    ----------
    q : array-like
        ``(..., 4)`` quaternions of any norm.

    Returns
    -------
    numpy.ndarray
        ``(..., 4)`` unit quaternions, negated where ``w < 0``.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def to_transform(q: np.ndarray) -> np.ndarray:
    """Transform matrices of quaternions.

    Parameters
    ----------
    q : array-like
        ``(..., 4)`` unit quaternions.

    Returns
    -------
    numpy.ndarray
        ``(..., 3, 3)`` body -> ECI matrices (columns = body axes).
    """
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    t = np.empty(q.shape[:-1] + (3, 3))
    t[..., 0, 0] = 1 - 2 * (y * y + z * z)
    t[..., 0, 1] = 2 * (x * y - z * w)
    t[..., 0, 2] = 2 * (x * z + y * w)
    t[..., 1, 0] = 2 * (x * y + z * w)
    t[..., 1, 1] = 1 - 2 * (x * x + z * z)
    t[..., 1, 2] = 2 * (y * z - x * w)
    t[..., 2, 0] = 2 * (x * z - y * w)
    t[..., 2, 1] = 2 * (y * z + x * w)
    t[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return t


def from_transform(t: np.ndarray) -> np.ndarray:
    """Quaternions of transform matrices (largest-pivot method).

    Parameters
    ----------
    t : array-like
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    numpy.ndarray
        ``(..., 4)`` quaternions with the sign rule. The quaternion of a transposed matrix is
        the inverse rotation.
    """
    t = np.asarray(t, dtype=np.float64)
    t00, t11, t22 = t[..., 0, 0], t[..., 1, 1], t[..., 2, 2]
    s = np.stack(
        [1 + t00 - t11 - t22, 1 - t00 + t11 - t22, 1 - t00 - t11 + t22, 1 + t00 + t11 + t22],
        axis=-1,
    )
    i = np.argmax(s, axis=-1)
    half = 0.5 * np.sqrt(np.take_along_axis(s, i[..., None], axis=-1)[..., 0])
    d = 4 * half
    t10, t01, t20, t02 = t[..., 1, 0], t[..., 0, 1], t[..., 2, 0], t[..., 0, 2]
    t21, t12 = t[..., 2, 1], t[..., 1, 2]
    cands = np.stack(
        [
            np.stack([half, (t10 + t01) / d, (t20 + t02) / d, (t21 - t12) / d], axis=-1),
            np.stack([(t10 + t01) / d, half, (t21 + t12) / d, (t02 - t20) / d], axis=-1),
            np.stack([(t20 + t02) / d, (t21 + t12) / d, half, (t10 - t01) / d], axis=-1),
            np.stack([(t21 - t12) / d, (t02 - t20) / d, (t10 - t01) / d, half], axis=-1),
        ],
        axis=-2,
    )
    q = np.take_along_axis(cands, i[..., None, None], axis=-2)[..., 0, :]
    return np.where(q[..., 3:4] < 0, -q, q)


def from_equatorial(ra: np.ndarray, dec: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Quaternions of attitudes given as (RA, Dec, Roll): ``T = Rz(ra) Ry(-dec) Rx(roll)``.

    Parameters
    ----------
    ra, dec, roll : array-like
        Degrees; broadcast together.

    Returns
    -------
    numpy.ndarray
        ``(..., 4)`` quaternions with the sign rule.
    """
    ra, dec, roll = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra, dec, roll))
    ca, sa, cd, sd, cr, sr = (
        np.cos(ra),
        np.sin(ra),
        np.cos(dec),
        np.sin(dec),
        np.cos(roll),
        np.sin(roll),
    )
    t = np.empty(np.broadcast(ra, dec, roll).shape + (3, 3))
    t[..., 0, 0] = ca * cd
    t[..., 0, 1] = -sa * cr - ca * sd * sr
    t[..., 0, 2] = sa * sr - ca * sd * cr
    t[..., 1, 0] = sa * cd
    t[..., 1, 1] = ca * cr - sa * sd * sr
    t[..., 1, 2] = -ca * sr - sa * sd * cr
    t[..., 2, 0] = sd
    t[..., 2, 1] = cd * sr
    t[..., 2, 2] = cd * cr
    return from_transform(t)


def to_equatorial(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RA, Dec, Roll) of quaternions.

    Parameters
    ----------
    q : array-like
        ``(..., 4)`` unit quaternions.

    Returns
    -------
    ra, dec, roll : numpy.ndarray
        Degrees; RA and Roll in [0, 360), Dec in [-90, 90].
    """
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xa = x * x - y * y - z * z + w * w
    xb = 2 * (x * y + z * w)
    xn = 2 * (x * z - y * w)
    yn = 2 * (y * z + x * w)
    zn = w * w + z * z - x * x - y * y
    ra = np.degrees(np.arctan2(xb, xa)) % 360.0
    dec = np.degrees(np.arctan2(xn, np.sqrt(np.clip(1 - xn * xn, 0.0, None))))
    roll = np.degrees(np.arctan2(yn, zn)) % 360.0
    return ra, dec, roll


def multiply(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """The product ``q1 q2``, with ``T(q1 q2) = T(q1) T(q2)``.

    Parameters
    ----------
    q1, q2 : array-like
        ``(..., 4)`` quaternions (broadcast together); ``q2`` is applied in ``q1``'s body frame.

    Returns
    -------
    numpy.ndarray
        ``(..., 4)`` quaternions with the sign rule.
    """
    q1, q2 = np.asarray(q1, dtype=np.float64), np.asarray(q2, dtype=np.float64)
    x1, y1, z1, w1 = (q1[..., k] for k in range(4))
    x2, y2, z2, w2 = (q2[..., k] for k in range(4))
    q = np.stack(
        [
            w1 * x2 - z1 * y2 + y1 * z2 + x1 * w2,
            z1 * x2 + w1 * y2 - x1 * z2 + y1 * w2,
            -y1 * x2 + x1 * y2 + w1 * z2 + z1 * w2,
            -x1 * x2 - y1 * y2 - z1 * z2 + w1 * w2,
        ],
        axis=-1,
    )
    return np.where(q[..., 3:4] < 0, -q, q)


def eci_to_radec(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(RA, Dec) of ECI directions.

    Parameters
    ----------
    e : array-like
        ``(..., 3)`` ECI vectors (any length).

    Returns
    -------
    ra, dec : numpy.ndarray
        Degrees; RA in [0, 360).
    """
    e = np.asarray(e, dtype=np.float64)
    ra = np.degrees(np.arctan2(e[..., 1], e[..., 0])) % 360.0
    dec = np.degrees(np.arctan2(e[..., 2], np.hypot(e[..., 0], e[..., 1])))
    return ra, dec


def yagzag_to_dir(yag: np.ndarray, zag: np.ndarray) -> np.ndarray:
    """Body-frame directions of ACA angles.

    Parameters
    ----------
    yag, zag : array-like
        ACA Y and Z angles, arcsec; broadcast together.

    Returns
    -------
    numpy.ndarray
        ``(..., 3)`` unit vectors in the body frame.
    """
    ty = np.tan(np.radians(np.asarray(yag, dtype=np.float64) / 3600.0))
    tz = np.tan(np.radians(np.asarray(zag, dtype=np.float64) / 3600.0))
    d = np.stack([np.ones_like(ty), ty, tz], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def dir_to_yagzag(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ACA angles of body-frame directions.

    Parameters
    ----------
    d : array-like
        ``(..., 3)`` body-frame vectors (any length, x > 0 toward the boresight).

    Returns
    -------
    yag, zag : numpy.ndarray
        Arcsec.
    """
    d = np.asarray(d, dtype=np.float64)
    return (
        np.degrees(np.arctan2(d[..., 1], d[..., 0])) * 3600.0,
        np.degrees(np.arctan2(d[..., 2], d[..., 0])) * 3600.0,
    )


def rotation(axis: int, angle_deg: float) -> np.ndarray:
    """The active rotation matrix about one axis.

    Parameters
    ----------
    axis : int
        0 (x), 1 (y) or 2 (z).
    angle_deg : float
        Rotation angle, degrees (counter-clockwise seen from the axis' positive end).

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` matrix.
    """
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m
