"""A stand-in for a compiled chemistry-kinetics library, shaped like cantera's Python API.

Its ``Solution`` keeps the gas state (temperature, pressure, mass fractions) in
a C struct (``ctypes``), not in Python attributes, and cannot be copied or
pickled, like the extension types of real engines.  Setters change the state as
a whole (``gas.TP = T, P``; ``gas.set_equivalence_ratio(...)``), and a reactor
network advances the gas it was given in place.  The kinetics is one global
Arrhenius step H2 + 1/2 O2 -> H2O with heat release, enough for an ignition
delay that spans decades between 1000 and 1500 K.
"""

from __future__ import annotations

import ctypes
import math

SPECIES = ("H2", "O2", "H2O", "N2")
_MW = (2.016, 31.998, 18.015, 28.014)  # g/mol
_R = 8.314  # J/(mol K)
_EA = 2.5e5  # J/mol
_A = 1.0e12  # 1/s
_HEAT = 1.2e8  # J per kg of H2 burned / cp, in K per unit mass fraction of H2 (lumped)


class _ThermoState(ctypes.Structure):
    _fields_ = [("T", ctypes.c_double), ("P", ctypes.c_double), ("Y", ctypes.c_double * len(SPECIES))]


class Solution(_ThermoState):
    """A gas mixture whose state lives in C memory."""

    def __init__(self, T: float = 300.0, P: float = 101325.0) -> None:
        super().__init__(T, P)
        self.Y[:] = [0.0, 0.233, 0.0, 0.767]  # air

    def __reduce__(self):  # like cantera's Solution: not picklable, hence not deep-copyable
        raise NotImplementedError("Solution object is not picklable")

    @property
    def TP(self) -> tuple[float, float]:
        return self.T, self.P

    @TP.setter
    def TP(self, value: tuple[float, float]) -> None:
        self.T, self.P = (float(v) for v in value)

    @property
    def density(self) -> float:
        mean_mw = 1.0 / sum(y / mw for y, mw in zip(self.Y, _MW)) * 1e-3  # kg/mol
        return self.P * mean_mw / (_R * self.T)

    def set_equivalence_ratio(self, phi: float, fuel: str = "H2", oxidizer: str = "O2:1.0, N2:3.76") -> None:
        """Fresh hydrogen-air mixture at equivalence ratio ``phi`` (only H2/air is known here)."""
        if fuel != "H2":
            raise ValueError(f"unknown fuel {fuel!r}")
        moles = [2.0 * phi, 1.0, 0.0, 3.76]  # stoichiometric: 2 H2 + O2
        mass = [n * mw for n, mw in zip(moles, _MW)]
        total = sum(mass)
        self.Y[:] = [m / total for m in mass]


class IdealGasReactor:
    """A constant-pressure reactor holding ``contents``; advancing it changes ``contents`` in place."""

    def __init__(self, contents: Solution) -> None:
        self.thermo = contents

    @property
    def T(self) -> float:
        return self.thermo.T


class ReactorNet:
    """Integrates the reactors' chemistry in time."""

    def __init__(self, reactors: list[IdealGasReactor]) -> None:
        self.reactors = list(reactors)
        self.time = 0.0

    def step(self) -> float:
        """One explicit step, a small fraction of the current chemical time scale; returns the new time."""
        rates = [_A * math.exp(-_EA / (_R * r.thermo.T)) * r.thermo.Y[1] * (r.thermo.P / 101325.0)
                 for r in self.reactors]
        dt = min(0.05, *(0.05 / max(rate, 1e-12) for rate in rates))
        for r, rate in zip(self.reactors, rates):
            g = r.thermo
            burn = min(g.Y[0], rate * g.Y[0] * dt)
            g.Y[0] -= burn
            g.Y[1] -= burn * 7.94
            g.Y[2] += burn * 8.94
            g.T += burn * _HEAT / 1e3
        self.time += dt
        return self.time
