"""A detector solenoid computed with the Biot-Savart law, tabulated on a 3-D mesh, looked up by trilinear interpolation.

The magnet is a realistic coil set (metres, tesla, amperes):

* four main coils on one axis, 0.95-1.05 m in radius, with 10 cm gaps
  between them and stronger end coils to flatten the field (as large
  detector solenoids are built), about 2 T in the bore;
* an outer return (shielding) coil at 1.6 m carrying current the other way,
  which takes the place of an iron return yoke: it closes the flux and cuts
  the stray field outside the magnet;
* the third coil sits 3 mm off axis and is tilted by 4 mrad, as an as-built
  misalignment, so the field has no symmetry axis and a map must be 3-D.

Each coil is a thick winding of uniform current density.  Its field is the
Biot-Savart integral over the winding cross-section of the exact field of a
circular current loop (closed form with the complete elliptic integrals K and
E, computed here by the arithmetic-geometric mean), integrated with
Gauss-Legendre points across the winding's thickness and length.

:class:`FieldMap` is what detector software uses at run time: the field on a
regular (x, y, z) mesh (float32, C order ``(nx, ny, nz, 3)``) and trilinear
interpolation between the 8 nodes around a point.  :func:`field_at` is the
exact Biot-Savart field, for checking the map.

Example
-------
>>> import numpy as np
>>> b = field_at(np.array([[0.0, 0.0, 0.25]]))[0]          # centre of the bore
>>> bool(1.8 < b[2] < 2.2 and abs(b[0]) < 0.02)
True
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

MU0 = 4e-7 * math.pi


@dataclass(frozen=True)
class Coil:
    """A thick solenoid winding: radii ``r1..r2``, length ``z1..z2`` in its own frame, current density ``j`` (A/m^2).

    ``centre`` moves the coil frame's origin; ``tilt`` (radians) rotates its axis about the x axis.
    """

    r1: float
    r2: float
    z1: float
    z2: float
    j: float
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tilt: float = 0.0


J_MAIN = 2.6e7  # A/m^2 over a 10 cm thick winding: about 1.9 T in the bore with the return coil

COILS: tuple[Coil, ...] = (
    Coil(0.95, 1.05, -1.50, -0.70, 1.20 * J_MAIN),                        # upstream end coil
    Coil(0.95, 1.05, -0.60, 0.50, J_MAIN),
    Coil(0.95, 1.05, 0.60, 1.40, J_MAIN, centre=(0.0, 0.003, 0.0), tilt=0.004),  # misaligned as built
    Coil(0.95, 1.05, 1.50, 2.00, 1.25 * J_MAIN),                          # downstream end coil
    Coil(1.60, 1.66, -1.50, 2.00, -0.55 * J_MAIN),                        # return (shielding) coil
)

# Where tracks go: a cylinder around the beam axis, from the target to the last detector plane.
TRACKING_RADIUS = 0.80
TRACKING_Z = (-0.20, 1.90)
# The tabulated volume: the tracking volume plus a margin (x, y, z limits in metres).
MAP_BOUNDS = ((-0.90, 0.90), (-0.90, 0.90), (-0.30, 2.00))


def ellipke(m: np.ndarray, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Complete elliptic integrals ``K(m)`` and ``E(m)`` (parameter ``m = k**2 < 1``) by the AGM.

    >>> K, E = ellipke(np.array([0.0, 0.5]))
    >>> np.round(K, 6).tolist(), np.round(E, 6).tolist()
    ([1.570796, 1.854075], [1.570796, 1.350644])
    """
    m = np.asarray(m, np.float64)
    a = np.ones_like(m)
    b = np.sqrt(1.0 - m)
    total = 0.5 * m  # sum of 2**(n-1) c_n**2, c_0**2 = m
    power = 0.5
    for _ in range(iterations):
        c = 0.5 * (a - b)
        a, b = 0.5 * (a + b), np.sqrt(a * b)
        power *= 2.0
        total = total + power * c * c
    K = np.pi / (2.0 * a)
    return K, K * (1.0 - total)


def loop_field(rho: np.ndarray, z: np.ndarray, radius: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact field ``(B_rho, B_z)`` of circular loops (axis z, centred at 0) at ``(rho, z)``; arrays broadcast."""
    alpha2 = (radius - rho) ** 2 + z**2
    beta2 = (radius + rho) ** 2 + z**2
    m = 1.0 - alpha2 / beta2
    K, E = ellipke(np.minimum(m, 1.0 - 1e-15))
    beta = np.sqrt(beta2)
    c = MU0 * current / (2.0 * np.pi * beta)
    bz = c * (K + (radius**2 - rho**2 - z**2) / alpha2 * E)
    with np.errstate(invalid="ignore", divide="ignore"):
        brho = np.where(rho > 1e-12, c * z / np.where(rho > 1e-12, rho, 1.0) * (-K + (radius**2 + rho**2 + z**2) / alpha2 * E), 0.0)
    return brho, bz


def _quadrature(coil: Coil, n_r: int, n_z: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loops (radius, axial position, current) standing for the thick winding (Gauss-Legendre)."""
    xr, wr = np.polynomial.legendre.leggauss(n_r)
    xz, wz = np.polynomial.legendre.leggauss(n_z)
    hr, hz = 0.5 * (coil.r2 - coil.r1), 0.5 * (coil.z2 - coil.z1)
    radii = 0.5 * (coil.r1 + coil.r2) + hr * xr
    zs = 0.5 * (coil.z1 + coil.z2) + hz * xz
    R, Z = np.meshgrid(radii, zs, indexing="ij")
    I = coil.j * np.outer(wr * hr, wz * hz)
    return R.ravel(), Z.ravel(), I.ravel()


def _rotation(tilt: float) -> np.ndarray:
    c, s = math.cos(tilt), math.sin(tilt)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def coil_field(coil: Coil, points: np.ndarray, n_r: int = 3, n_z: int = 16, chunk: int = 2048) -> np.ndarray:
    """Biot-Savart field ``(n, 3)`` of one thick coil at ``points (n, 3)``.

    Points with the same (rho, z) in the coil's frame are computed once (a
    regular mesh around a coaxial coil has few distinct radii).
    """
    R = _rotation(coil.tilt)
    local = (np.asarray(points, np.float64) - np.asarray(coil.centre)) @ R  # R^T p, row-wise
    rho = np.hypot(local[:, 0], local[:, 1])
    exact = np.stack([rho, local[:, 2]], 1)
    _, first, inverse = np.unique(np.round(exact, 9), axis=0, return_index=True, return_inverse=True)
    uniq = exact[first]  # one exact (rho, z) per group of points within 1 nm of each other
    inverse = inverse.reshape(-1)
    lr, lz, li = _quadrature(coil, n_r, n_z)
    br = np.empty(len(uniq))
    bz = np.empty(len(uniq))
    for s in range(0, len(uniq), chunk):
        u = uniq[s : s + chunk]
        a, b = loop_field(u[:, :1], u[:, 1:] - lz[None, :], lr[None, :], li[None, :])
        br[s : s + chunk] = a.sum(1)
        bz[s : s + chunk] = b.sum(1)
    br, bz = br[inverse], bz[inverse]
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(rho > 1e-12, local[:, 0] / np.where(rho > 1e-12, rho, 1.0), 0.0)
        sin = np.where(rho > 1e-12, local[:, 1] / np.where(rho > 1e-12, rho, 1.0), 0.0)
    b_local = np.stack([br * cos, br * sin, bz], 1)
    return b_local @ R.T


def field_at(points: np.ndarray, coils: Sequence[Coil] = COILS) -> np.ndarray:
    """The exact Biot-Savart field ``(n, 3)`` in tesla of the coil set at ``points (n, 3)`` in metres."""
    points = np.atleast_2d(np.asarray(points, np.float64))
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"field_at: points must be (n, 3), got {points.shape}")
    out = np.zeros_like(points)
    for coil in coils:
        out += coil_field(coil, points)
    return out


class FieldMap:
    """The field tabulated on a regular mesh, looked up by trilinear interpolation.

    ``values``: float32 ``(nx, ny, nz, 3)``; ``origin``: the (x, y, z) of node
    (0, 0, 0); ``spacing``: the mesh step (the same on the three axes).
    Points outside the mesh get the field of the nearest cell's face (clamped),
    as most detector software does; check :meth:`inside` if that matters.

    Example
    -------
    >>> fm = FieldMap.build(spacing=0.10)
    >>> b = fm.lookup(np.array([[0.1, 0.0, 0.3]]))
    >>> b.shape, bool(abs(b[0, 2] - field_at(np.array([[0.1, 0.0, 0.3]]))[0, 2]) < 0.01)
    ((1, 3), True)
    """

    def __init__(self, values: np.ndarray, origin: Sequence[float], spacing: float) -> None:
        values = np.ascontiguousarray(values, np.float32)
        if values.ndim != 4 or values.shape[3] != 3 or min(values.shape[:3]) < 2:
            raise ValueError(f"FieldMap: values must be (nx, ny, nz, 3) with every n >= 2, got {values.shape}")
        if not spacing > 0:
            raise ValueError(f"FieldMap: spacing must be > 0, got {spacing}")
        self.values = values
        self.origin = np.asarray(origin, np.float64)
        self.spacing = float(spacing)
        self.shape = values.shape[:3]
        self._flat = values.reshape(-1, 3)
        self._strides = np.array([self.shape[1] * self.shape[2], self.shape[2], 1], np.int64)
        self._hi = np.array(self.shape, np.int64) - 2
        self._inv = 1.0 / self.spacing
        # The 8 corner offsets into the flat node array, in the order of _weights.
        self._corner = np.array([dx * self._strides[0] + dy * self._strides[1] + dz
                                 for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)], np.int64)
        # Plain-Python copies for the one-point path: a memoryview reads one float without numpy's overhead.
        self._mem = memoryview(self.values.reshape(-1))
        self._origin = tuple(float(o) for o in self.origin)
        self._sx, self._sy = int(self._strides[0]), int(self._strides[1])
        self._hi_list = tuple(int(h) for h in self._hi)

    @property
    def nbytes(self) -> int:
        """Bytes of the tabulated field (what the map costs in memory)."""
        return int(self.values.nbytes)

    @staticmethod
    def mesh_shape(spacing: float, bounds: Sequence[Sequence[float]] = MAP_BOUNDS) -> tuple[int, int, int]:
        """Nodes per axis of a mesh of ``spacing`` covering ``bounds``."""
        return tuple(int(math.ceil(round((hi - lo) / spacing, 9))) + 1 for lo, hi in bounds)  # type: ignore[return-value]

    @classmethod
    def build(cls, spacing: float, bounds: Sequence[Sequence[float]] = MAP_BOUNDS,
              coils: Sequence[Coil] = COILS) -> "FieldMap":
        """Tabulate the Biot-Savart field of ``coils`` on a mesh of ``spacing`` metres covering ``bounds``."""
        shape = cls.mesh_shape(spacing, bounds)
        axes = [lo + spacing * np.arange(n) for (lo, _), n in zip(bounds, shape)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        values = field_at(grid, coils).reshape(*shape, 3)
        return cls(values, [a[0] for a in axes], spacing)

    @classmethod
    def cached(cls, spacing: float, cache_dir: str | Path, bounds: Sequence[Sequence[float]] = MAP_BOUNDS,
               coils: Sequence[Coil] = COILS) -> "FieldMap":
        """:meth:`build`, kept as ``.npy`` in ``cache_dir`` under a name that hashes the geometry and mesh."""
        key = json.dumps({"spacing": spacing, "bounds": [list(b) for b in bounds],
                          "coils": [asdict(c) for c in coils]}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"fieldmap-{digest}.npy"
        shape = cls.mesh_shape(spacing, bounds)
        if path.is_file():
            try:
                values = np.load(path, allow_pickle=False)
            except (ValueError, OSError):  # truncated or not a .npy: build it again
                values = None
            if values is not None and values.shape == (*shape, 3) and values.dtype == np.float32:
                return cls(values, [lo for lo, _ in bounds], spacing)
        fm = cls.build(spacing, bounds, coils)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, fm.values, allow_pickle=False)
        tmp.replace(path)
        return fm

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Boolean ``(n,)``: the point lies within the tabulated volume."""
        u = (np.asarray(points, np.float64) - self.origin) * self._inv
        return np.all((u >= 0) & (u <= np.array(self.shape) - 1), axis=1)

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Trilinear interpolation at ``points (n, 3)``: the field ``(n, 3)`` in tesla (float64)."""
        u = (np.asarray(points, np.float64) - self.origin) * self._inv
        i = np.clip(np.floor(u).astype(np.int64), 0, self._hi)
        f = np.clip(u - i, 0.0, 1.0)
        base = i @ self._strides
        g = 1.0 - f
        # weights of the 8 corners (x-major, then y, then z), as in self._corner
        wx = np.stack([g[:, 0], f[:, 0]], 1)
        wy = np.stack([g[:, 1], f[:, 1]], 1)
        wz = np.stack([g[:, 2], f[:, 2]], 1)
        w = (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)
        corners = self._flat[base[:, None] + self._corner[None, :]]  # (n, 8, 3)
        return np.einsum("nc,nck->nk", w, corners)

    def lookup_one(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """Trilinear interpolation at one point in plain float arithmetic (no array set-up): ``(Bx, By, Bz)``."""
        inv, o = self._inv, self._origin
        ux, uy, uz = (x - o[0]) * inv, (y - o[1]) * inv, (z - o[2]) * inv
        ix, iy, iz = int(ux // 1.0), int(uy // 1.0), int(uz // 1.0)
        hx, hy, hz = self._hi_list
        ix = 0 if ix < 0 else (hx if ix > hx else ix)
        iy = 0 if iy < 0 else (hy if iy > hy else iy)
        iz = 0 if iz < 0 else (hz if iz > hz else iz)
        fx, fy, fz = min(max(ux - ix, 0.0), 1.0), min(max(uy - iy, 0.0), 1.0), min(max(uz - iz, 0.0), 1.0)
        sx, sy = self._sx, self._sy
        v = self._mem
        out = []
        for k in (0, 1, 2):
            p = 3 * (ix * sx + iy * sy + iz) + k
            c00 = v[p] + (v[p + 3] - v[p]) * fz
            c01 = v[p + 3 * sy] + (v[p + 3 * sy + 3] - v[p + 3 * sy]) * fz
            q = p + 3 * sx
            c10 = v[q] + (v[q + 3] - v[q]) * fz
            c11 = v[q + 3 * sy] + (v[q + 3 * sy + 3] - v[q + 3 * sy]) * fz
            c0 = c00 + (c01 - c00) * fy
            c1 = c10 + (c11 - c10) * fy
            out.append(c0 + (c1 - c0) * fx)
        return out[0], out[1], out[2]


def interpolation_error(spacing: float, points: np.ndarray, exact: np.ndarray | None = None,
                        coils: Sequence[Coil] = COILS, bounds: Sequence[Sequence[float]] = MAP_BOUNDS) -> np.ndarray:
    """Relative error ``|B_map - B| / |B|`` at ``points`` of a trilinear map of ``spacing``, without building the map.

    Only the 8 nodes around each point are computed (the error of a map of
    any resolution costs 9 field evaluations per point).
    """
    points = np.asarray(points, np.float64)
    if exact is None:
        exact = field_at(points, coils)
    origin = np.array([lo for lo, _ in bounds])
    u = (points - origin) / spacing
    i = np.floor(u)
    f = u - i
    corners = np.array([(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)], np.float64)
    nodes = origin + (i[:, None, :] + corners[None]) * spacing  # (n, 8, 3)
    b_nodes = field_at(nodes.reshape(-1, 3), coils).reshape(len(points), 8, 3)
    w = np.prod(np.where(corners[None] > 0, f[:, None, :], 1.0 - f[:, None, :]), axis=2)  # (n, 8)
    b_map = np.einsum("nc,nck->nk", w, b_nodes)
    return np.linalg.norm(b_map - exact, axis=1) / np.linalg.norm(exact, axis=1)


def tracking_volume_points(n: int, seed: int) -> np.ndarray:
    """``n`` points drawn uniformly in the tracking cylinder (r <= TRACKING_RADIUS, z in TRACKING_Z)."""
    rng = np.random.default_rng(seed)
    r = TRACKING_RADIUS * np.sqrt(rng.random(n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    z = rng.uniform(*TRACKING_Z, n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)
