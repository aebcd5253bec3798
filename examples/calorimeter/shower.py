"""A Monte Carlo electromagnetic shower in a lead/scintillator sampling calorimeter, in numpy.

Electrons, positrons and photons are tracked through ``cells`` cells of lead followed by plastic
scintillator (polystyrene), all particles of all showers of a batch at once (one numpy operation per
step for the whole batch), with:

- bremsstrahlung above ``k_cut`` (complete-screening spectrum ``(4/3 - 4/3 y + y^2) / y``, one photon
  per interaction, sampled at the distance to the next interaction); softer photons' energy is lost
  continuously along the track;
- ionisation: a continuous loss ``dE/dx`` per material (the PDG minimum with a logarithmic rise);
- multiple scattering: Gaussian deflections of the Highland width per step;
- photons: pair production (Bethe-Heitler energy sharing), Compton scattering (Klein-Nishina, sampled
  exactly) and photoabsorption, with cross-sections in both materials; photons fly to the interaction
  point in one hop through the layers (the optical depth is piecewise linear in depth);
- positrons annihilate at the cut-off into two 511 keV photons;
- cut-offs: electrons below ``e_cut`` (kinetic) and photons below ``gamma_cut`` deposit their energy
  where they are.

Material constants are the PDG / NIST values (radiation lengths, densities, minimum ionisation,
Z/A); the photoabsorption and pair cross-sections are interpolated from XCOM-like tables.  What
reaches the scintillator is read out in voxels: ``layers`` readout layers (groups of cells) x
``radial`` rings x ``angular`` sectors around the beam axis, in the spirit of the CaloChallenge
data set 2 at a smaller size.  Each voxel is read with photo-statistics (Poisson photo-electrons,
``pe_per_mev``) and a threshold (``threshold_mev``).

Example
-------
>>> import numpy as np
>>> cal = Calorimeter()
>>> showers = simulate_showers(np.array([10_000.0, 20_000.0]), np.random.default_rng(0), cal)
>>> showers.shape, cal.voxel_shape
((2, 12, 6, 8), (12, 6, 8))
>>> bool(0.05 < showers[0].sum() / 10_000.0 < 0.2)     # sampling fraction
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

ME = 0.51099895  # electron mass, MeV
N_A = 6.02214076e23
TWO_PI_RE2 = 2.0 * np.pi * (2.8179403262e-13) ** 2  # 2 pi r_e^2, cm^2


@dataclass(frozen=True)
class Material:
    """A homogeneous material: PDG constants plus a photoabsorption table (mu/rho, cm^2/g)."""

    name: str
    density: float  # g/cm^3
    X0: float  # radiation length, cm
    Z_over_A: float
    dedx_min: float  # minimum collision stopping power, MeV cm^2/g
    dedx_rise: float  # relative rise per ln(E / MeV) above 1 MeV (collision loss of electrons)
    photo_energy: tuple[float, ...] = ()  # MeV
    photo_mu_rho: tuple[float, ...] = ()  # cm^2/g

    @property
    def electrons_per_cm3(self) -> float:
        return self.density * N_A * self.Z_over_A

    def dedx(self, E: np.ndarray) -> np.ndarray:
        """Collision energy loss of an electron of kinetic energy ``E`` (MeV), MeV/cm."""
        return self.density * self.dedx_min * (1.0 + self.dedx_rise * np.log(np.maximum(E, 1.0)))

    def critical_energy(self) -> float:
        """Rossi's critical energy: where the ionisation loss per X0 equals the energy (MeV)."""
        E = 10.0
        for _ in range(50):
            E = float(self.dedx(np.array(E)) * self.X0)
        return E


# PDG: lead X0 = 6.37 g/cm^2 (0.5612 cm), 1.122 MeV cm^2/g; polystyrene X0 = 43.79 g/cm^2 (41.31 cm), 2.052.
# Photoabsorption of lead (K edge at 88 keV) from XCOM; polystyrene's is negligible above 100 keV.
LEAD = Material("lead", 11.35, 0.5612, 82 / 207.2, 1.122, 0.054,
                (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 1e6),
                (5.23, 1.86, 0.84, 0.28, 0.13, 0.080, 0.052, 0.029, 0.019, 0.0093, 0.0058, 0.0031, 0.0015,
                 0.0006, 1e-9))
SCINTILLATOR = Material("polystyrene", 1.06, 41.31, 0.53768, 2.052, 0.028)

# Pair production relative to its high-energy limit 7 / (9 X0), from XCOM (lead; used for both materials).
_PAIR_E = np.log([2 * ME, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, 1e4, 1e7])
_PAIR_F = np.array([0.0, 0.012, 0.04, 0.09, 0.157, 0.28, 0.41, 0.585, 0.69, 0.885, 0.97, 1.0])


def klein_nishina(k: np.ndarray) -> np.ndarray:
    """Compton cross-section per electron (cm^2) of a photon of energy ``k`` (MeV)."""
    a = np.asarray(k, np.float64) / ME
    l2 = np.log1p(2 * a)
    return TWO_PI_RE2 * ((1 + a) / a**2 * (2 * (1 + a) / (1 + 2 * a) - l2 / a) + l2 / (2 * a)
                         - (1 + 3 * a) / (1 + 2 * a) ** 2)


_LOG_K0, _LOG_K1, _N_GRID = np.log(1e-3), np.log(1e7), 4000  # photon cross-section table: log-energy grid


class _PhotonTable(NamedTuple):
    """Attenuation coefficients (1/cm) of one material on a log-energy grid."""

    photo: np.ndarray
    compton: np.ndarray
    pair: np.ndarray


@dataclass(frozen=True)
class Calorimeter:
    """Geometry and readout of the sampling calorimeter (lengths in cm, energies in MeV).

    ``cells`` cells of ``absorber_cm`` lead then ``active_cm`` scintillator along z (the beam
    axis), grouped ``cells // layers`` per readout layer; a cylinder of ``radius_cm``; readout
    rings at ``radial_edges_cm`` (deposits beyond the last edge are not read out) and
    ``angular`` equal sectors.
    """

    cells: int = 24
    absorber_cm: float = 0.5
    active_cm: float = 0.5
    layers: int = 12
    radial_edges_cm: tuple[float, ...] = (0.0, 0.5, 1.2, 2.2, 3.6, 6.0, 12.0)
    angular: int = 8
    radius_cm: float = 30.0
    absorber: Material = LEAD
    active: Material = SCINTILLATOR
    k_cut: float = 1.0  # bremsstrahlung photons below this are a continuous loss
    e_cut: float = 1.0  # electrons/positrons below this kinetic energy stop
    gamma_cut: float = 0.1  # photons below this are absorbed where they are
    pe_per_mev: float = 10.0  # photo-electrons per MeV in the scintillator
    threshold_mev: float = 0.1  # voxel readout threshold
    max_step_x0: float = 0.5  # electron step limit (multiple scattering), radiation lengths
    max_loss_fraction: float = 0.2  # electron step limit (continuous loss), fraction of E
    _tables: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.cells % self.layers:
            raise ValueError(f"Calorimeter: cells ({self.cells}) must be a multiple of layers ({self.layers})")
        grid = np.linspace(_LOG_K0, _LOG_K1, _N_GRID)
        k = np.exp(grid)
        rows = []
        for m in (self.absorber, self.active):
            photo = np.zeros_like(k)
            if m.photo_energy:
                photo = m.density * np.exp(np.interp(grid, np.log(m.photo_energy), np.log(m.photo_mu_rho)))
            compton = m.electrons_per_cm3 * klein_nishina(k)
            pair = 7.0 / (9.0 * m.X0) * np.interp(grid, _PAIR_E, _PAIR_F)
            rows += [photo, compton, pair]
        self._tables["mu"] = np.stack(rows)  # (6, grid): photo, Compton, pair of absorber then active

    # -- geometry -------------------------------------------------------------

    @property
    def cell_cm(self) -> float:
        return self.absorber_cm + self.active_cm

    @property
    def depth_cm(self) -> float:
        return self.cells * self.cell_cm

    @property
    def cells_per_layer(self) -> int:
        return self.cells // self.layers

    @property
    def radial(self) -> int:
        return len(self.radial_edges_cm) - 1

    @property
    def voxel_shape(self) -> tuple[int, int, int]:
        return (self.layers, self.radial, self.angular)

    @property
    def n_voxels(self) -> int:
        return self.layers * self.radial * self.angular

    @property
    def cell_x0(self) -> float:
        """Depth of one cell in radiation lengths."""
        return self.absorber_cm / self.absorber.X0 + self.active_cm / self.active.X0

    @property
    def effective_x0_cm(self) -> float:
        return self.cell_cm / self.cell_x0

    @property
    def effective_critical_energy(self) -> float:
        """Critical energy of the cell mixture (MeV): Ec_i / X0_i averaged over thickness, times X0_eff."""
        a, b = self.absorber, self.active
        per_cm = (self.absorber_cm * a.critical_energy() / a.X0 + self.active_cm * b.critical_energy() / b.X0)
        return per_cm / self.cell_x0

    @property
    def mip_sampling_fraction(self) -> float:
        """Visible share of a minimum-ionising particle's loss per cell."""
        a = self.active_cm * self.active.density * self.active.dedx_min
        return a / (a + self.absorber_cm * self.absorber.density * self.absorber.dedx_min)

    def slab(self, z: np.ndarray, uz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For positions on the way in direction ``uz``: (in absorber, cell, slab low z, slab high z)."""
        T = self.cell_cm
        probe = z + np.where(uz >= 0, 1e-9, -1e-9)
        cell = np.clip(np.floor(probe / T), 0, self.cells - 1)
        w = probe - cell * T
        in_abs = w < self.absorber_cm
        lo = cell * T + np.where(in_abs, 0.0, self.absorber_cm)
        hi = cell * T + np.where(in_abs, self.absorber_cm, T)
        return in_abs, cell.astype(np.int64), lo, hi

    def photon_mu(self, k: np.ndarray) -> tuple[_PhotonTable, _PhotonTable]:
        """Attenuation coefficients (photo, Compton, pair; 1/cm) at energies ``k`` in both materials."""
        pos = (np.log(k) - _LOG_K0) * ((_N_GRID - 1) / (_LOG_K1 - _LOG_K0))
        i = np.clip(pos.astype(np.int64), 0, _N_GRID - 2)
        f = pos - i
        mu = self._tables["mu"]
        v = mu[:, i] * (1.0 - f) + mu[:, i + 1] * f
        return _PhotonTable(v[0], v[1], v[2]), _PhotonTable(v[3], v[4], v[5])


class _Particles:
    """Structure of arrays of one species: shower id, kinetic energy, position, direction, charge."""

    __slots__ = ("sid", "E", "x", "y", "z", "ux", "uy", "uz", "q")

    def __init__(self, sid, E, x, y, z, ux, uy, uz, q) -> None:
        self.sid, self.E, self.x, self.y, self.z, self.ux, self.uy, self.uz, self.q = sid, E, x, y, z, ux, uy, uz, q

    @classmethod
    def empty(cls) -> "_Particles":
        f = np.empty(0)
        return cls(np.empty(0, np.int64), f, f, f, f, f, f, f, np.empty(0, np.int8))

    def take(self, keep: np.ndarray) -> "_Particles":
        return _Particles(*(getattr(self, k)[keep] for k in self.__slots__))

    @staticmethod
    def concat(parts: list["_Particles"]) -> "_Particles":
        parts = [p for p in parts if len(p.E)]
        if not parts:
            return _Particles.empty()
        if len(parts) == 1:
            return parts[0]
        return _Particles(*(np.concatenate([getattr(p, k) for p in parts]) for k in _Particles.__slots__))


class _Deposits:
    """Energy deposits: scintillator ones kept with their position (for the voxels), all summed per cell."""

    def __init__(self, n: int, cells: int, per_cell: bool) -> None:
        self.n, self.n_cells = n, cells
        self.active: list[tuple[np.ndarray, ...]] = []
        self.cells = np.zeros(n * cells) if per_cell else None

    def add(self, sid, cell, x, y, e, active) -> None:
        if self.cells is not None:
            self.cells += np.bincount(sid * self.n_cells + cell, weights=e, minlength=len(self.cells))
        keep = active & (e > 0)
        if keep.any():
            self.active.append((sid[keep], cell[keep], x[keep], y[keep], e[keep]))

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.active:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0)
        return tuple(np.concatenate(c) for c in zip(*self.active))


def _perpendicular_basis(ux, uy, uz):
    """Two unit vectors perpendicular to the unit vectors ``u`` (and to each other)."""
    use_y = np.abs(ux) > 0.9
    ax, ay = np.where(use_y, 0.0, 1.0), np.where(use_y, 1.0, 0.0)
    # e1 = normalise(u x a) with a = (ax, ay, 0)
    e1x, e1y, e1z = -uz * ay, uz * ax, ux * ay - uy * ax
    n = np.sqrt(e1x**2 + e1y**2 + e1z**2)
    e1x, e1y, e1z = e1x / n, e1y / n, e1z / n
    e2x, e2y, e2z = uy * e1z - uz * e1y, uz * e1x - ux * e1z, ux * e1y - uy * e1x
    return (e1x, e1y, e1z), (e2x, e2y, e2z)


def _rotate(ux, uy, uz, cos_t, phi):
    """Directions at polar angle ``acos(cos_t)`` and azimuth ``phi`` around ``u``."""
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, 1.0))
    (ax, ay, az), (bx, by, bz) = _perpendicular_basis(ux, uy, uz)
    c, s = sin_t * np.cos(phi), sin_t * np.sin(phi)
    vx, vy, vz = cos_t * ux + c * ax + s * bx, cos_t * uy + c * ay + s * by, cos_t * uz + c * az + s * bz
    n = np.sqrt(vx**2 + vy**2 + vz**2)
    return vx / n, vy / n, vz / n


def _brem_count(yc: np.ndarray) -> np.ndarray:
    """Bremsstrahlung photons with energy fraction above ``yc`` per radiation length."""
    y = np.clip(yc, 1e-300, 1.0)
    return (4.0 / 3.0) * (-np.log(y)) - (4.0 / 3.0) * (1.0 - y) + 0.5 * (1.0 - y**2)


def _soft_brem(yc: np.ndarray) -> np.ndarray:
    """Fraction of the energy radiated per radiation length in photons below ``yc``."""
    y = np.clip(yc, 0.0, 1.0)
    return (4.0 / 3.0) * y - (2.0 / 3.0) * y**2 + y**3 / 3.0


def _sample_brem_y(yc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon energy fractions in ``[yc, 1]`` from ``(4/3 - 4/3 y + y^2) / y`` (log-uniform + rejection)."""
    out = np.empty_like(yc)
    todo = np.arange(len(yc))
    while len(todo):
        y = yc[todo] ** rng.random(len(todo))
        ok = rng.random(len(todo)) < 1.0 - y + 0.75 * y * y
        out[todo[ok]] = y[ok]
        todo = todo[~ok]
    return out


def _sample_pair_x(n: int, rng: np.random.Generator) -> np.ndarray:
    """Electron share of the pair's kinetic energy, ``1 - 4/3 x (1 - x)`` (complete screening)."""
    out = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        x = rng.random(len(todo))
        ok = rng.random(len(todo)) < 1.0 - (4.0 / 3.0) * x * (1.0 - x)
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def _sample_compton(k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scattered photon energy fraction ``eps = k'/k`` from Klein-Nishina (Butcher-Messel rejection)."""
    kappa = k / ME
    eps0 = 1.0 / (1.0 + 2.0 * kappa)
    a1 = -np.log(eps0)
    a2 = 0.5 * (1.0 - eps0**2)
    out = np.empty_like(k)
    todo = np.arange(len(k))
    while len(todo):
        n = len(todo)
        u1, u2, u3 = rng.random(n), rng.random(n), rng.random(n)
        e0, b1, b2, kp = eps0[todo], a1[todo], a2[todo], kappa[todo]
        first = u1 * (b1 + b2) < b1
        eps = np.where(first, np.exp(-b1 * u2), np.sqrt(e0**2 + (1.0 - e0**2) * u2))
        t = (1.0 - eps) / (kp * eps)
        sin2 = np.clip(t * (2.0 - t), 0.0, 1.0)
        ok = u3 <= 1.0 - eps * sin2 / (1.0 + eps**2)
        out[todo[ok]] = eps[ok]
        todo = todo[~ok]
    return out


class ShowerResult(NamedTuple):
    """Voxels ``(n, layers, radial, angular)`` (MeV read out) and diagnostics per shower."""

    voxels: np.ndarray
    visible: np.ndarray  # (n,) energy deposited in the scintillator (before readout), MeV
    cell_deposit: np.ndarray  # (n, cells) energy deposited per cell, both materials, MeV
    leaked: np.ndarray  # (n,) kinetic energy leaving the calorimeter, MeV
    rest_mass: np.ndarray  # (n,) energy turned into (+) or released from (-) e+e- rest mass, MeV


class _Transport:
    """One batch of showers being simulated."""

    def __init__(self, cal: Calorimeter, n: int, rng: np.random.Generator, per_cell: bool) -> None:
        self.cal, self.rng, self.n = cal, rng, n
        self.dep = _Deposits(n, cal.cells, per_cell)
        self.leaked = np.zeros(n)
        self.rest_mass = np.zeros(n)
        self.photons: list[_Particles] = []
        self.electrons: list[_Particles] = []

    # -- bookkeeping ----------------------------------------------------------

    def deposit_here(self, p: _Particles, e: np.ndarray) -> None:
        in_abs, cell, _, _ = self.cal.slab(p.z, p.uz)
        self.dep.add(p.sid, cell, p.x, p.y, e, ~in_abs)

    def emit(self, sid, E, x, y, z, ux, uy, uz, q) -> None:
        if len(E):
            (self.electrons if q else self.photons).append(
                _Particles(sid, E, x, y, z, ux, uy, uz, np.full(len(E), q, np.int8)))

    def annihilate(self, p: _Particles) -> None:
        """Positrons at rest: two back-to-back 511 keV photons in a random direction."""
        n = len(p.E)
        if not n:
            return
        cos_t = 2.0 * self.rng.random(n) - 1.0
        phi = 2.0 * np.pi * self.rng.random(n)
        s = np.sqrt(1.0 - cos_t**2)
        ux, uy, uz = s * np.cos(phi), s * np.sin(phi), cos_t
        np.subtract.at(self.rest_mass, p.sid, 2 * ME)
        for sign in (1.0, -1.0):
            self.emit(p.sid, np.full(n, ME), p.x, p.y, p.z, sign * ux, sign * uy, sign * uz, 0)

    def escaped(self, p: _Particles) -> np.ndarray:
        cal = self.cal
        return ((p.z <= 0) & (p.uz < 0)) | ((p.z >= cal.depth_cm) & (p.uz > 0)) | (p.z < 0) | (p.z > cal.depth_cm) \
            | (p.x**2 + p.y**2 > cal.radius_cm**2)

    # -- photons: one hop to the interaction point, then the interaction ------

    def step_photons(self, p: _Particles) -> None:
        cal, rng = self.cal, self.rng
        low = p.E < cal.gamma_cut
        if low.any():
            self.deposit_here(p.take(low), p.E[low])
            p = p.take(~low)
        n = len(p.E)
        if not n:
            return
        ta, tb = cal.photon_mu(p.E)
        mu_a = ta.photo + ta.compton + ta.pair
        mu_b = tb.photo + tb.compton + tb.pair
        T, ta_cm = cal.cell_cm, cal.absorber_cm
        per_cell = mu_a * ta_cm + mu_b * cal.active_cm
        uz = np.where(np.abs(p.uz) < 1e-6, np.where(p.uz < 0, -1e-6, 1e-6), p.uz)
        # optical depth coordinate O(z): piecewise linear in z, slope mu_a in lead, mu_b in plastic
        cell = np.clip(np.floor(p.z / T), 0, cal.cells - 1)
        w = p.z - cell * T
        O0 = cell * per_cell + mu_a * np.minimum(w, ta_cm) + mu_b * np.maximum(w - ta_cm, 0.0)
        O1 = O0 + rng.exponential(size=n) * uz
        out = (O1 < 0) | (O1 >= cal.cells * per_cell)
        c1 = np.floor(O1 / per_cell)
        r = O1 - c1 * per_cell
        in_abs = r < mu_a * ta_cm
        z1 = c1 * T + np.where(in_abs, r / mu_a, ta_cm + (r - mu_a * ta_cm) / mu_b)
        s = (z1 - p.z) / uz
        x1, y1 = p.x + p.ux * s, p.y + p.uy * s
        out |= x1**2 + y1**2 > cal.radius_cm**2
        if out.any():
            np.add.at(self.leaked, p.sid[out], p.E[out])
        keep = ~out
        p = _Particles(p.sid[keep], p.E[keep], x1[keep], y1[keep], np.clip(z1[keep], 0, cal.depth_cm),
                       p.ux[keep], p.uy[keep], p.uz[keep], p.q[keep])
        in_abs, c1 = in_abs[keep], c1[keep].astype(np.int64)
        ta = _PhotonTable(*(a[keep] for a in ta))
        tb = _PhotonTable(*(a[keep] for a in tb))
        n = len(p.E)
        if not n:
            return
        photo = np.where(in_abs, ta.photo, tb.photo)
        compton = np.where(in_abs, ta.compton, tb.compton)
        pair = np.where(in_abs, ta.pair, tb.pair)
        u = rng.random(n) * (photo + compton + pair)
        is_photo = u < photo
        is_compton = ~is_photo & (u < photo + compton)
        is_pair = ~is_photo & ~is_compton
        if is_photo.any():  # the photo-electron carries the energy (binding energy neglected)
            q = p.take(is_photo)
            self.emit(q.sid, q.E, q.x, q.y, q.z, q.ux, q.uy, q.uz, -1)
        if is_compton.any():
            self.compton(p.take(is_compton))
        if is_pair.any():
            self.pair(p.take(is_pair))

    def compton(self, p: _Particles) -> None:
        rng = self.rng
        n = len(p.E)
        eps = _sample_compton(p.E, rng)
        k1 = eps * p.E
        cos_t = 1.0 - (1.0 / eps - 1.0) * ME / p.E
        phi = 2.0 * np.pi * rng.random(n)
        vx, vy, vz = _rotate(p.ux, p.uy, p.uz, cos_t, phi)
        # electron momentum = k u - k' u'
        ex, ey, ez = p.E * p.ux - k1 * vx, p.E * p.uy - k1 * vy, p.E * p.uz - k1 * vz
        norm = np.sqrt(ex**2 + ey**2 + ez**2)
        norm = np.where(norm > 0, norm, 1.0)
        self.emit(p.sid, k1, p.x, p.y, p.z, vx, vy, vz, 0)
        self.emit(p.sid, p.E - k1, p.x, p.y, p.z, ex / norm, ey / norm, ez / norm, -1)

    def pair(self, p: _Particles) -> None:
        rng = self.rng
        n = len(p.E)
        kinetic = p.E - 2 * ME
        np.add.at(self.rest_mass, p.sid, 2 * ME)
        x = _sample_pair_x(n, rng)
        phi = 2.0 * np.pi * rng.random(n)
        for share, q, dphi in ((x, -1, 0.0), (1.0 - x, 1, np.pi)):
            E = share * kinetic
            theta = ME / (E + ME)
            ux, uy, uz = _rotate(p.ux, p.uy, p.uz, np.cos(theta), phi + dphi)
            self.emit(p.sid, E, p.x, p.y, p.z, ux, uy, uz, q)

    # -- electrons and positrons: one step ------------------------------------

    def step_electrons(self, p: _Particles) -> None:
        cal, rng = self.cal, self.rng
        n = len(p.E)
        a, b = cal.absorber, cal.active
        in_abs, cell, lo, hi = cal.slab(p.z, p.uz)
        X0 = np.where(in_abs, a.X0, b.X0)
        dedx = np.where(in_abs, a.dedx(p.E), b.dedx(p.E))
        yc = cal.k_cut / p.E
        rate = np.where(yc < 1.0, _brem_count(yc), 0.0) / X0  # hard bremsstrahlung per cm
        loss = dedx + _soft_brem(yc) * p.E / X0  # continuous loss per cm
        with np.errstate(divide="ignore"):
            s_brem = np.where(rate > 0, rng.exponential(size=n) / np.where(rate > 0, rate, 1.0), np.inf)
            s_bound = np.where(p.uz > 0, (hi - p.z) / p.uz, np.where(p.uz < 0, (lo - p.z) / p.uz, np.inf))
        s_bound = np.maximum(s_bound, 0.0)
        s_limit = np.minimum(cal.max_step_x0 * X0, cal.max_loss_fraction * p.E / loss)
        s = np.minimum(np.minimum(s_brem, s_bound), s_limit)
        at_boundary = s_bound <= s
        dE = np.minimum(loss * s, p.E)
        half = 0.5 * s
        self.dep.add(p.sid, cell, p.x + p.ux * half, p.y + p.uy * half, dE, ~in_abs)
        x, y = p.x + p.ux * s, p.y + p.uy * s
        z = np.where(at_boundary, np.where(p.uz > 0, hi, lo), p.z + p.uz * s)
        E = p.E - dE
        # multiple scattering (Highland), at the energy after the step
        pc = np.sqrt(np.maximum(E, 1e-6) * (E + 2 * ME))
        beta = pc / (E + ME)
        t = np.maximum(s / X0, 1e-12)
        theta0 = 13.6 / (beta * pc) * np.sqrt(t) * np.maximum(1.0 + 0.038 * np.log(t), 0.3)
        (e1x, e1y, e1z), (e2x, e2y, e2z) = _perpendicular_basis(p.ux, p.uy, p.uz)
        tx = np.clip(theta0 * rng.standard_normal(n), -1.5, 1.5)
        ty = np.clip(theta0 * rng.standard_normal(n), -1.5, 1.5)
        ux, uy, uz = (p.ux + tx * e1x + ty * e2x, p.uy + tx * e1y + ty * e2y, p.uz + tx * e1z + ty * e2z)
        norm = np.sqrt(ux**2 + uy**2 + uz**2)
        ux, uy, uz = ux / norm, uy / norm, uz / norm
        # hard bremsstrahlung at the end of the step
        brem = (s_brem <= s) & (E > cal.k_cut)
        if brem.any():
            i = np.flatnonzero(brem)
            y_frac = _sample_brem_y(cal.k_cut / E[i], rng)
            k = y_frac * E[i]
            E[i] -= k
            theta = ME / (E[i] + k + ME)
            gx, gy, gz = _rotate(ux[i], uy[i], uz[i], np.cos(theta), 2 * np.pi * rng.random(len(i)))
            self.emit(p.sid[i], k, x[i], y[i], z[i], gx, gy, gz, 0)
        q = _Particles(p.sid, E, x, y, z, ux, uy, uz, p.q)
        out = self.escaped(q)
        if out.any():
            np.add.at(self.leaked, q.sid[out], q.E[out])
        stop = ~out & (q.E < cal.e_cut)
        if stop.any():
            r = q.take(stop)
            self.deposit_here(r, r.E)
            self.annihilate(r.take(r.q > 0))
        live = ~out & ~stop
        if live.all():
            self.electrons.append(q)
        elif live.any():
            self.electrons.append(q.take(live))

    def run(self, primaries: _Particles) -> None:
        (self.photons if primaries.q[0] == 0 else self.electrons).append(primaries)
        while self.photons or self.electrons:
            photons, electrons = _Particles.concat(self.photons), _Particles.concat(self.electrons)
            self.photons, self.electrons = [], []
            if len(photons.E):
                self.step_photons(photons)
            if len(electrons.E):
                self.step_electrons(electrons)


def voxel_deposits(cal: Calorimeter, n: int, sid: np.ndarray, cell: np.ndarray, x: np.ndarray, y: np.ndarray,
                   e: np.ndarray) -> np.ndarray:
    """Scintillator deposits summed per voxel: ``(n, n_voxels)`` MeV, before the readout.

    One entry per deposit: shower ``sid`` in ``[0, n)``, ``cell`` in ``[0, cells)``, transverse
    position ``x, y`` (cm) and energy ``e`` (MeV); deposits beyond the last ring are not read out.
    Shared by both simulators (this Monte Carlo and ``geant4_shower.py``).

    >>> cal = Calorimeter()
    >>> d = voxel_deposits(cal, 1, np.array([0]), np.array([5]), np.array([0.3]), np.array([0.0]), np.array([2.0]))
    >>> np.argwhere(d.reshape(cal.voxel_shape)).tolist()   # layer 5 // 2, innermost ring, sector of phi = 0
    [[2, 0, 4]]
    """
    ring = np.searchsorted(np.asarray(cal.radial_edges_cm) ** 2, x * x + y * y, side="right") - 1
    sector = np.floor((np.arctan2(y, x) + np.pi) / (2 * np.pi) * cal.angular).astype(np.int64) % cal.angular
    read = ring < cal.radial
    layer = cell // cal.cells_per_layer
    index = ((sid * cal.layers + layer) * cal.radial + ring) * cal.angular + sector
    return np.bincount(index[read], weights=e[read], minlength=n * cal.n_voxels).reshape(n, cal.n_voxels)


def read_out(deposits: np.ndarray, rng: np.random.Generator, cal: Calorimeter) -> np.ndarray:
    """Voxels read with photo-statistics and threshold: ``(n, layers, radial, angular)`` float32, MeV.

    ``deposits`` ``(n, n_voxels)`` MeV (:func:`voxel_deposits`); each voxel reads a Poisson number of
    photo-electrons (``pe_per_mev`` per MeV) over ``pe_per_mev``, and 0 below ``threshold_mev``.
    """
    pe = rng.poisson(deposits * cal.pe_per_mev)
    voxels = pe / cal.pe_per_mev
    voxels[voxels < cal.threshold_mev] = 0.0
    return voxels.astype(np.float32).reshape((len(deposits), *cal.voxel_shape))


def simulate_showers(energies: np.ndarray, rng: np.random.Generator | None = None, cal: Calorimeter | None = None,
                     *, particle: str = "e-", details: bool = False) -> np.ndarray | ShowerResult:
    """Simulate one shower per incident energy (MeV; a particle along the z axis at x = y = 0).

    Returns the read-out voxels ``(n, layers, radial, angular)`` float32 in MeV, or with
    ``details=True`` a :class:`ShowerResult` with the energy bookkeeping and the per-cell profile.
    ``particle``: ``"e-"``, ``"e+"`` or ``"gamma"``.
    """
    cal = cal or Calorimeter()
    rng = rng if rng is not None else np.random.default_rng()
    E = np.asarray(energies, np.float64).reshape(-1)
    if E.size and not (np.all(np.isfinite(E)) and E.min() > 0):
        raise ValueError(f"simulate_showers: energies must be finite and > 0 MeV, got min {E.min()}")
    charge = {"e-": -1, "e+": 1, "gamma": 0}.get(particle)
    if charge is None:
        raise ValueError(f"simulate_showers: particle must be 'e-', 'e+' or 'gamma', got {particle!r}")
    n = len(E)
    zeros = np.zeros(n)
    if n == 0:
        return np.zeros((0, *cal.voxel_shape), np.float32)
    t = _Transport(cal, n, rng, per_cell=details)
    t.run(_Particles(np.arange(n), E.copy(), zeros, zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(),
                     np.ones(n), np.full(n, charge, np.int8)))
    sid, cell, x, y, e = t.dep.arrays()
    voxels = read_out(voxel_deposits(cal, n, sid, cell, x, y, e), rng, cal)
    if not details:
        return voxels
    visible = np.bincount(sid, weights=e, minlength=n)
    assert t.dep.cells is not None
    return ShowerResult(voxels, visible, t.dep.cells.reshape(n, cal.cells), t.leaked, t.rest_mass)


def simulate_shower(energy: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """One shower of an electron of ``energy`` MeV: voxels ``(layers, radial, angular)`` float32, MeV."""
    return simulate_showers(np.array([energy], np.float64), rng)[0]  # type: ignore[index]
