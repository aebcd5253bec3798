"""The calorimeter of ``shower.py`` simulated with Geant4 (geant4-pybind): same voxels, same readout.

An optional second simulator for the calorimeter example.  The geometry comes from the same
:class:`shower.Calorimeter`: ``cells`` cells of lead (``G4_Pb``) then polystyrene scintillator
(``G4_POLYSTYRENE``), NIST materials, cylinders of ``radius_cm`` along z from z = 0, in a vacuum
world.  The particle starts 1 mm in front of the calorimeter on the axis, along +z.

Physics: Geant4's ``G4EmStandardPhysics_option4`` alone (a modular list, default 0.7 mm production
cuts).  Option 4 is the Geant4 EM group's most accurate set (Goudsmit-Saunderson multiple
scattering, Penelope ionisation of slow electrons, Livermore photon models), the one meant for thin
sampling layers, where electron scattering and ranging decide the sampling fraction.  No hadronic
physics (FTFP_BERT, QBBC): in an electron or photon shower photo-nuclear reactions take well under 1%
of the energy, the numpy Monte Carlo leaves them out too, and without them three data sets suffice
(``G4EMLOW``, ``G4ENSDFSTATE``, ``PhotonEvaporation``: Geant4 reads the last two whatever the physics)
instead of also the hadronic ones (``G4PARTICLEXS``, ``G4NDL``, ...).

Scoring: a sensitive detector on the scintillator records each step's deposit at its midpoint
(cell = copy number, x, y); :func:`shower.voxel_deposits` and :func:`shower.read_out` then bin and
read them exactly as the numpy Monte Carlo does (photo-statistics, threshold), so both simulators'
showers are interchangeable.  With ``details=True`` the lead's deposits per cell and what leaves the
calorimeter (kinetic energy at exit, escaping positrons) are scored too.

Geant4 needs its physics data sets: set ``GEANT4_DATA_DIR`` to the folder holding them (``G4EMLOW*``,
``G4ENSDFSTATE*``, ``PhotonEvaporation*``).  geant4_pybind is imported only when that variable is set:
imported without it, it offers to download the data sets.  Geant4 allows one run manager per process, so the first call
builds the geometry and physics of that process and later calls reuse them.

>>> geant4_datasets({})  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
Geant4Unavailable: GEANT4_DATA_DIR is not set ...
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from phasm.errors import BackendError, BackendUnavailable
from shower import ME, Calorimeter, ShowerResult, read_out, voxel_deposits

DATA_VARIABLE = "GEANT4_DATA_DIR"
#: Data sets the physics list reads: folder name prefix in GEANT4_DATA_DIR -> Geant4's variable for it.
DATASETS = {"G4EMLOW": "G4LEDATA", "G4ENSDFSTATE": "G4ENSDFSTATEDATA", "PhotonEvaporation": "G4LEVELGAMMADATA"}
#: shower.Material names -> the NIST material Geant4 builds for them.
NIST_MATERIALS = {"lead": "G4_Pb", "polystyrene": "G4_POLYSTYRENE"}
PIP_INSTALL = "pip install 'geant4-pybind>=0.1.3'  (or pip install -e '.[geant4]')"
MM_PER_CM = 10.0  # Geant4 lengths are in mm
GUN_OFFSET_MM = 1.0  # the particle starts this far in front of the calorimeter
WORLD_MARGIN_CM = 10.0
X0_TOLERANCE = 0.05  # Geant4's radiation length vs the Calorimeter's, relative


class Geant4Unavailable(BackendUnavailable):
    """The Geant4 path cannot run here: GEANT4_DATA_DIR, its data sets or geant4_pybind are missing."""


def geant4_datasets(environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """The data set folders the Geant4 path uses, as ``{Geant4 variable: folder}``; never imports Geant4.

    ``GEANT4_DATA_DIR`` must name a folder holding ``G4EMLOW*``, ``G4ENSDFSTATE*`` and
    ``PhotonEvaporation*`` (the newest version of each is taken), unless Geant4's own variable for a
    data set (``G4LEDATA``, ``G4ENSDFSTATEDATA``, ``G4LEVELGAMMADATA``) already names an existing folder.
    Raises :class:`Geant4Unavailable` (one line: the variable, what was expected, what was found) otherwise.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("G4EMLOW8.6", "G4EMLOW8.8", "G4ENSDFSTATE3.0", "PhotonEvaporation6.1.2", "G4NDL4.7.1"):
    ...         os.mkdir(os.path.join(d, name))
    ...     print({k: v.name for k, v in geant4_datasets({"GEANT4_DATA_DIR": d}).items()})
    {'G4LEDATA': 'G4EMLOW8.8', 'G4ENSDFSTATEDATA': 'G4ENSDFSTATE3.0', 'G4LEVELGAMMADATA': 'PhotonEvaporation6.1.2'}
    """
    env = os.environ if environ is None else environ
    root = _data_dir(env)
    entries = sorted(p.name for p in root.iterdir())
    found: dict[str, Path] = {}
    missing = []
    for prefix, variable in DATASETS.items():
        own = env.get(variable)
        if own and Path(own).is_dir():
            found[variable] = Path(own)
            continue
        versions = [(_version(m.group(1)), name) for name in entries
                    if (m := re.fullmatch(re.escape(prefix) + r"(\d[\d.]*)", name)) and (root / name).is_dir()]
        if versions:
            found[variable] = root / max(versions)[1]
        else:
            missing.append(prefix)
    if missing:
        shown = ", ".join(entries[:12]) + (f", ... ({len(entries)} entries)" if len(entries) > 12 else "")
        raise Geant4Unavailable(
            f"{DATA_VARIABLE}={str(root)!r} lacks Geant4 data sets: expected folders "
            f"{', '.join(p + '*' for p in DATASETS)}, missing {', '.join(p + '*' for p in missing)}; "
            f"found: {shown or 'an empty folder'}")
    return found


def _data_dir(env: Mapping[str, str]) -> Path:
    value = env.get(DATA_VARIABLE)
    if not value:
        raise Geant4Unavailable(
            f"{DATA_VARIABLE} is not set: the Geant4 path needs it to name the folder of Geant4's data sets "
            f"({', '.join(p + '*' for p in DATASETS)}); found no such variable (geant4_pybind is not imported "
            "without it: it would offer to download them)")
    root = Path(value)
    if not root.is_dir():
        raise Geant4Unavailable(
            f"{DATA_VARIABLE} must name a folder holding Geant4's data sets "
            f"({', '.join(p + '*' for p in DATASETS)}), got {value!r}, which is not a folder")
    return root


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part)


def require_geant4(*, need_data: bool = True) -> dict[str, Path]:
    """Check, without importing it, that the Geant4 path can run: :func:`geant4_datasets` (with
    ``need_data``; else only that ``GEANT4_DATA_DIR`` names a folder) and geant4_pybind installed.
    Raises :class:`Geant4Unavailable`; returns the data set folders found."""
    found: dict[str, Path] = {}
    if need_data:
        found = geant4_datasets()
    else:
        _data_dir(os.environ)
    if importlib.util.find_spec("geant4_pybind") is None:
        raise Geant4Unavailable(f"geant4_pybind is not installed: the Geant4 path needs it, found no such module; "
                                f"{PIP_INSTALL}")
    return found


def import_geant4(*, need_data: bool = True) -> Any:
    """``geant4_pybind``, imported only after :func:`require_geant4` (so never without ``GEANT4_DATA_DIR``).

    Sets Geant4's own variables (``G4LEDATA``, ...) to the folders found, where they are not set.
    ``need_data=False``: for building the geometry, which reads no data set.
    """
    for variable, folder in require_geant4(need_data=need_data).items():
        os.environ.setdefault(variable, str(folder))
    import geant4_pybind

    return geant4_pybind


class Geometry(NamedTuple):
    """The Geant4 volumes of a :class:`shower.Calorimeter` (what ``Construct`` returns is ``world``)."""

    world: Any  # G4PVPlacement of the world
    absorber: Any  # G4LogicalVolume of one lead slab (24 placements, copy number = cell)
    active: Any  # G4LogicalVolume of one scintillator slab (copy number = cell)
    escape: Any  # G4LogicalVolume of the vacuum around the calorimeter


def build_geometry(cal: Calorimeter, *, check_overlaps: bool = False) -> Geometry:
    """The calorimeter's volumes in Geant4 (needs ``GEANT4_DATA_DIR`` set, but no data sets).

    Each cell is a lead cylinder of ``absorber_cm`` then a scintillator cylinder of ``active_cm``
    (copy number = cell index), z from 0 to ``depth_cm``; materials from NIST, refused when their
    radiation length differs from the Calorimeter's by more than 5%.
    """
    g = import_geant4(need_data=False)
    nist = g.G4NistManager.Instance()
    materials = []
    for role, m in (("absorber", cal.absorber), ("active", cal.active)):
        if m.name not in NIST_MATERIALS:
            raise ValueError(f"calorimeter.{role}.name must be one of {sorted(NIST_MATERIALS)} for Geant4, "
                             f"got {m.name!r}")
        material = nist.FindOrBuildMaterial(NIST_MATERIALS[m.name])
        x0 = material.GetRadlen() / g.cm
        if abs(x0 / m.X0 - 1.0) > X0_TOLERANCE:
            raise ValueError(f"calorimeter.{role}.X0 must match Geant4's {NIST_MATERIALS[m.name]} ({x0:.4g} cm) within "
                             f"{X0_TOLERANCE:.0%}, got {m.X0:.4g} cm")
        materials.append(material)
    vacuum = nist.FindOrBuildMaterial("G4_Galactic")
    radius, margin = cal.radius_cm * g.cm, WORLD_MARGIN_CM * g.cm
    world_lv = g.G4LogicalVolume(g.G4Box("World", radius + margin, radius + margin, cal.depth_cm * g.cm + margin),
                                 vacuum, "World")
    world = g.G4PVPlacement(None, g.G4ThreeVector(), world_lv, "World", None, False, 0, check_overlaps)
    slabs = []
    for name, material, thickness in (("Absorber", materials[0], cal.absorber_cm), ("Scintillator", materials[1],
                                                                                    cal.active_cm)):
        solid = g.G4Tubs(name, 0.0, radius, 0.5 * thickness * g.cm, 0.0, 2.0 * np.pi)
        slabs.append(g.G4LogicalVolume(solid, material, name))
    for cell in range(cal.cells):
        z0 = cell * cal.cell_cm
        for lv, lo, thickness in ((slabs[0], z0, cal.absorber_cm), (slabs[1], z0 + cal.absorber_cm, cal.active_cm)):
            g.G4PVPlacement(None, g.G4ThreeVector(0.0, 0.0, (lo + 0.5 * thickness) * g.cm), lv, lv.GetName(), world_lv,
                            False, cell, check_overlaps)
    return Geometry(world, slabs[0], slabs[1], world_lv)


class ShowerDeposits:
    """What Geant4 reports for a batch of showers (lengths in mm, energies in MeV), turned into voxels.

    The primary generator calls :meth:`start_shower` at each event; the sensitive detectors call
    :meth:`active` (a scintillator step), :meth:`absorber` (a lead step) and :meth:`escape` (a particle
    leaving the calorimeter).  :meth:`result` bins and reads out like ``shower.simulate_showers``.

    >>> d = ShowerDeposits(Calorimeter(), np.array([1000.0]), "e-")
    >>> d.start_shower()
    1000.0
    >>> d.active(cell=5, x_mm=3.0, y_mm=0.0, edep=20.0)   # cell 5 -> layer 2; r = 0.3 cm -> ring 0; phi = 0 -> sector 4
    >>> r = d.result(np.random.default_rng(0), details=True)
    >>> np.argwhere(r.voxels[0]).tolist(), r.visible.tolist()
    ([[2, 0, 4]], [20.0])
    """

    def __init__(self, cal: Calorimeter, energies: np.ndarray, particle: str) -> None:
        self.cal, self.energies, self.particle = cal, energies, particle
        n = len(energies)
        self.shower = -1
        self._sid: list[int] = []
        self._cell: list[int] = []
        self._x: list[float] = []
        self._y: list[float] = []
        self._e: list[float] = []
        self._cell_sum = [0.0] * (n * cal.cells)
        self._leaked = [0.0] * n
        self._positrons_out = [0] * n

    def start_shower(self) -> float:
        """Move on to the next shower; its incident energy (MeV)."""
        self.shower += 1
        return float(self.energies[self.shower])

    def active(self, cell: int, x_mm: float, y_mm: float, edep: float) -> None:
        s = self.shower
        self._sid.append(s)
        self._cell.append(cell)
        self._x.append(x_mm)
        self._y.append(y_mm)
        self._e.append(edep)
        self._cell_sum[s * self.cal.cells + cell] += edep

    def absorber(self, cell: int, edep: float) -> None:
        self._cell_sum[self.shower * self.cal.cells + cell] += edep

    def escape(self, kinetic: float, positron: bool) -> None:
        self._leaked[self.shower] += kinetic
        self._positrons_out[self.shower] += positron

    def result(self, rng: np.random.Generator, details: bool) -> np.ndarray | ShowerResult:
        cal, n = self.cal, len(self.energies)
        if self.shower != n - 1:
            raise BackendError(f"geant4: {self.shower + 1} of {n} showers were simulated (an event was aborted)")
        sid, cell = np.asarray(self._sid, np.int64), np.asarray(self._cell, np.int64)
        x, y = np.asarray(self._x, np.float64) / MM_PER_CM, np.asarray(self._y, np.float64) / MM_PER_CM
        e = np.asarray(self._e, np.float64)
        voxels = read_out(voxel_deposits(cal, n, sid, cell, x, y, e), rng, cal)
        if not details:
            return voxels
        # shower.py's rest-mass account: +2 me per pair, -2 me per annihilation; every positron that
        # does not leave annihilates, so the balance is 2 me per escaping positron, less the primary's
        rest_mass = 2.0 * ME * (np.asarray(self._positrons_out, np.float64) - (self.particle == "e+"))
        return ShowerResult(voxels, np.bincount(sid, weights=e, minlength=n),
                            np.asarray(self._cell_sum).reshape(n, cal.cells), np.asarray(self._leaked), rest_mass)


def sensitive_detectors(g: Any, deposits_of: Any) -> dict[str, Any]:
    """Sensitive detectors for the scintillator, the lead and the vacuum around (``"active"``,
    ``"absorber"``, ``"escape"``), reporting to ``deposits_of()`` (the current :class:`ShowerDeposits`)."""

    class ActiveSD(g.G4VSensitiveDetector):
        def ProcessHits(self, step: Any, history: Any) -> bool:
            edep = step.GetTotalEnergyDeposit()
            if edep <= 0.0:
                return False
            pre = step.GetPreStepPoint()
            a, b = pre.GetPosition(), step.GetPostStepPoint().GetPosition()
            deposits_of().active(pre.GetTouchable().GetCopyNumber(), 0.5 * (a.x + b.x), 0.5 * (a.y + b.y), edep)
            return True

    class AbsorberSD(g.G4VSensitiveDetector):
        def ProcessHits(self, step: Any, history: Any) -> bool:
            edep = step.GetTotalEnergyDeposit()
            if edep <= 0.0:
                return False
            deposits_of().absorber(step.GetPreStepPoint().GetTouchable().GetCopyNumber(), edep)
            return True

    class EscapeSD(g.G4VSensitiveDetector):
        # a step in the vacuum that starts on a boundary: a particle that has just left the calorimeter
        # (the primary's first step starts at the gun, not on a boundary); it cannot come back, stop it
        def ProcessHits(self, step: Any, history: Any) -> bool:
            pre = step.GetPreStepPoint()
            if pre.GetStepStatus() != g.G4StepStatus.fGeomBoundary:
                return False
            track = step.GetTrack()
            deposits_of().escape(pre.GetKineticEnergy(), track.GetDefinition().GetParticleName() == "e+")
            track.SetTrackStatus(g.G4TrackStatus.fStopAndKill)
            return True

    return {"active": ActiveSD("CaloActive"), "absorber": AbsorberSD("CaloAbsorber"), "escape": EscapeSD("CaloEscape")}


class Geant4Run:
    """A Geant4 run manager with the calorimeter, the physics list and the particle gun, initialised.

    Geant4 allows one run manager per process: get it through :func:`geant4_run`.  Attributes:
    ``manager`` (G4RunManager), ``geometry`` (:class:`Geometry`), ``detectors`` (the sensitive
    detectors by role), ``gun`` (the primary generator action) and ``deposits`` (the
    :class:`ShowerDeposits` of the batch being simulated, None between batches).
    """

    def __init__(self, g: Any, cal: Calorimeter) -> None:
        self.g, self.cal = g, cal
        self.deposits: ShowerDeposits | None = None
        self.geometry: Geometry | None = None  # built by Detector.Construct, at Initialize
        self.gun: Any = None  # the primary generator, made by Actions.Build
        run = self

        class Detector(g.G4VUserDetectorConstruction):
            def Construct(self) -> Any:
                run.geometry = build_geometry(cal)
                return run.geometry.world

            def ConstructSDandField(self) -> None:
                for role, sd in run.detectors.items():
                    g.G4SDManager.GetSDMpointer().AddNewDetector(sd)
                    self.SetSensitiveDetector(getattr(run.geometry, role), sd)

        class Physics(g.G4VModularPhysicsList):
            def __init__(self) -> None:
                super().__init__()
                self.RegisterPhysics(g.G4EmStandardPhysics_option4())
                self.SetVerboseLevel(0)  # after the constructors: it is passed on to them

        class Gun(g.G4VUserPrimaryGeneratorAction):
            def __init__(self) -> None:
                super().__init__()
                self.gun = g.G4ParticleGun(1)
                self.gun.SetParticlePosition(g.G4ThreeVector(0.0, 0.0, -GUN_OFFSET_MM * g.mm))
                self.gun.SetParticleMomentumDirection(g.G4ThreeVector(0.0, 0.0, 1.0))

            def GeneratePrimaries(self, event: Any) -> None:
                deposits = run.deposits
                assert deposits is not None
                self.gun.SetParticleDefinition(g.G4ParticleTable.GetParticleTable().FindParticle(deposits.particle))
                self.gun.SetParticleEnergy(deposits.start_shower() * g.MeV)
                self.gun.GeneratePrimaryVertex(event)

        class Actions(g.G4VUserActionInitialization):
            def Build(self) -> None:  # Geant4 wants the generator made once the physics list is set
                run.gun = Gun()
                self.SetUserAction(run.gun)

        self.detectors = sensitive_detectors(g, lambda: run.deposits)
        self.manager = g.G4RunManagerFactory.CreateRunManager(g.G4RunManagerType.SerialOnly)
        # Python objects Geant4 calls back into: kept alive here for the life of the process
        self.detector, self.physics, self.actions = Detector(), Physics(), Actions()
        g.G4EmParameters.Instance().SetVerbose(0)  # after the EM constructor, which sets its own
        self.manager.SetUserInitialization(self.detector)
        self.manager.SetUserInitialization(self.physics)
        self.manager.SetUserInitialization(self.actions)  # calls Build: makes self.gun
        ui = g.G4UImanager.GetUIpointer()
        for command in ("/control/verbose 0", "/run/verbose 0", "/event/verbose 0", "/tracking/verbose 0"):
            ui.ApplyCommand(command)
        self.manager.Initialize()

    def simulate(self, energies: np.ndarray, particle: str, seed: int, details: bool) -> ShowerDeposits:
        """One event per energy (MeV), Geant4's engine seeded with ``seed``; what was scored."""
        self.detectors["absorber"].Activate(details)  # only the scintillator's steps matter for the voxels
        self.detectors["escape"].Activate(details)
        self.deposits = ShowerDeposits(self.cal, energies, particle)
        self.g.G4Random.setTheSeed(seed)
        try:
            self.manager.BeamOn(len(energies))
            return self.deposits
        finally:
            self.deposits = None


_RUN: Geant4Run | None = None


def geant4_run(calorimeter: Calorimeter | None = None) -> Geant4Run:
    """This process's :class:`Geant4Run` for ``calorimeter`` (default ``Calorimeter()``), made at the first call.

    Checks ``GEANT4_DATA_DIR`` and geant4_pybind first (:class:`Geant4Unavailable`); refuses a
    calorimeter other than the one the process's geometry was built for (ValueError).
    """
    global _RUN
    cal = calorimeter if calorimeter is not None else Calorimeter()
    if _RUN is not None and _RUN.cal != cal:
        built = _RUN.cal
        differ = ", ".join(f"{f.name}={getattr(cal, f.name)!r} (built: {getattr(built, f.name)!r})"
                           for f in fields(cal) if f.compare and getattr(cal, f.name) != getattr(built, f.name))
        raise ValueError(f"calorimeter must be the one this process's Geant4 geometry was built for (Geant4 allows "
                         f"one run manager per process), got one with {differ}")
    g = import_geant4()
    if _RUN is None:
        _RUN = Geant4Run(g, cal)
    return _RUN


def simulate_showers_geant4(energies: np.ndarray, rng: np.random.Generator | int | None = None,
                            calorimeter: Calorimeter | None = None, *, particle: str = "e-",
                            details: bool = False) -> np.ndarray | ShowerResult:
    """Geant4's showers in the calorimeter, in ``shower.simulate_showers``' format: voxels
    ``(n, layers, radial, angular)`` float32 MeV read out with the same photo-statistics and threshold,
    or with ``details=True`` a :class:`shower.ShowerResult`.

    ``energies``: incident kinetic energies (MeV), one shower each, the particle (``"e-"``, ``"e+"``,
    ``"gamma"``) on the axis along +z.  ``rng``: a generator or a seed; it seeds Geant4's engine and
    draws the photo-statistics, so a seed repeats the showers.  Needs ``GEANT4_DATA_DIR`` and
    geant4_pybind (:class:`Geant4Unavailable` otherwise, before anything is imported).  One
    calorimeter per process: the first call builds it, a different one later is refused.
    """
    cal = calorimeter if calorimeter is not None else Calorimeter()
    E = np.asarray(energies, np.float64).reshape(-1)
    if E.size and not (np.all(np.isfinite(E)) and E.min() > 0):
        raise ValueError(f"simulate_showers_geant4: energies must be finite and > 0 MeV, got min {E.min()}")
    if particle not in ("e-", "e+", "gamma"):
        raise ValueError(f"simulate_showers_geant4: particle must be 'e-', 'e+' or 'gamma', got {particle!r}")
    run = geant4_run(cal)
    rng = np.random.default_rng(rng)
    if E.size == 0:
        empty = np.zeros((0, *cal.voxel_shape), np.float32)
        if not details:
            return empty
        return ShowerResult(empty, np.zeros(0), np.zeros((0, cal.cells)), np.zeros(0), np.zeros(0))
    deposits = run.simulate(E, particle, int(rng.integers(1, 2**31 - 1)), details)
    return deposits.result(rng, details)
