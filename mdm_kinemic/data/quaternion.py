"""Unit quaternions (w, x, y, z) in numpy float64, the small set the 263-dim features need.

Conventions follow HumanML3D's common/quaternion.py (real part first, Hamilton product,
``qbetween(u, v)`` the shortest-arc rotation taking u onto v); written here in numpy so that the
conversion runs without torch and in double precision.
"""

from __future__ import annotations

import numpy as np


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r of quaternions (..., 4); broadcasts."""
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack(
        (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ),
        axis=-1,
    )


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate of quaternions (..., 4): the inverse of a unit quaternion."""
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4); broadcasts."""
    qvec = q[..., 1:]
    uv = np.cross(qvec, v)
    uuv = np.cross(qvec, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion rotating direction u onto direction v, both (..., 3).

    Opposite directions have no unique shortest arc; there (where HumanML3D's formula yields
    NaN) we take the half turn about an axis perpendicular to u.
    """
    u, v = np.broadcast_arrays(u, v)
    axis = np.cross(u, v)
    w = np.sqrt((u**2).sum(-1) * (v**2).sum(-1)) + (u * v).sum(-1)
    q = np.concatenate([w[..., None], axis], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    degenerate = norm[..., 0] < 1e-9
    if np.any(degenerate):
        ud = u[degenerate]
        helper = np.where(np.abs(ud[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
        perp = np.cross(ud, helper)
        q[degenerate] = np.concatenate([np.zeros((len(ud), 1)), perp], axis=-1)
        norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / norm


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) (normalised on the way)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    two_s = 2.0 / (q * q).sum(-1)
    m = np.stack(
        (
            1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
            two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
            two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
        ),
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6D rotation (Zhou et al. 2019) of quaternions (..., 4): first two matrix columns.

    Returns:
        (..., 6): column 0 then column 1 of the rotation matrix, as HumanML3D stores them.
    """
    m = quat_to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)
