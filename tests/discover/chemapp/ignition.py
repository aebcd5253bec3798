"""Ignition delay of a hydrogen-air mixture, driving a module-level gas object of a compiled library.

The shape of a real script: a ``gas`` made once at import, set to each call's
conditions, then advanced by a reactor.  After a call, ``gas`` holds the burned
state, which a surrogate would not reproduce.
"""

from __future__ import annotations

import fakechem as ct

gas = ct.Solution()


def ignition_delay(T0: float, phi: float, P: float) -> float:
    """Time for the temperature to rise 400 K above ``T0`` (s)."""
    gas.TP = T0, P
    gas.set_equivalence_ratio(phi, "H2", "O2:1.0, N2:3.76")
    reactor = ct.IdealGasReactor(gas)
    net = ct.ReactorNet([reactor])
    t = 0.0
    while reactor.T < T0 + 400.0 and t < 1.0:
        t = net.step()
    return t
