"""Physics-informed training from the spec's point of view: domain, normalisation, the problem.

``fn.train(physics=residual, physics_weight=1.0, collocation=1024, domain={...})``
reaches :func:`prepare_physics` through :func:`phasm.train.fit_model`.  It turns
the user's names into columns: the input domain (where collocation points are
drawn) comes from ``domain=`` where given, else from the captured range; the
input standardisation from the domain (a variable with a ``domain`` entry is
standardised as if uniform over it) or the captures; the output
standardisation from the captures, from ``output_range=``, else none (mean 0,
scale 1).  So a model trains from physics alone, with no captured row.

Example
-------
>>> import numpy as np, phasm, torch
>>> spec = phasm.Spec.from_declarations("m.decay", {"t": phasm.Scalar()}, {"u": phasm.Scalar()})
>>> def decay(model, inputs):                     # u' = -u, u(0) = 1
...     t = inputs["t"]; u = model(inputs)["u"]
...     du, = torch.autograd.grad(u.sum(), t, create_graph=True)
...     u0 = model({"t": torch.zeros_like(t)})["u"]
...     return {"ode": du + u, "initial": u0 - 1.0}
>>> from phasm.train import fit_model
>>> art, res = fit_model(None, spec, physics=decay, domain={"t": (0.0, 2.0)}, collocation=64,
...                      hidden=(16,), activation="tanh", epochs=300, lr=1e-2)
>>> bool(abs(float(art.predict(np.array([[1.0]]))[0, 0]) - np.exp(-1.0)) < 0.05)
True
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from phasm.backends.base import Backend, BackendError
from phasm.backends.physics import PhysicsProblem
from phasm.backends.registry import get_backend, make_backend
from phasm.bindings.spec import Spec, SpecError, Variable
from phasm.store.reader import CaptureStore
from phasm.train.data import ArrayData, Standardiser

# Keyword arguments of fn.train / fit_model that belong to physics-informed training.
PHYSICS_KEYS = ("physics", "physics_weight", "collocation", "domain", "output_range")
UNIFORM_STD = 1.0 / math.sqrt(12.0)  # std of U(0, 1): a range of width w standardises to scale w / sqrt(12)


def wants_physics(params: Mapping[str, Any]) -> bool:
    """True when any physics keyword was given (``fit_model`` then routes here)."""
    return any(k in params for k in PHYSICS_KEYS)


def prepare_physics(
    source: CaptureStore | tuple[np.ndarray, np.ndarray] | None,
    spec: Spec | None,
    *,
    physics: Callable[..., Any] | None = None,
    physics_weight: float = 1.0,
    collocation: int = 1024,
    domain: Mapping[str, Any] | None = None,
    output_range: Mapping[str, Any] | None = None,
    backend: str | Backend = "torch",
    val_fraction: float = 0.2,
    seed: int = 0,
    **params: Any,
) -> tuple[Spec, Backend, ArrayData, dict[str, Any]]:
    """Training data, backend and training record for a residual loss added to the data loss.

    ``source`` may be ``None`` (physics only).

    ``physics(model, inputs)``: see ``docs/physics-informed.md``.  ``domain``:
    ``{input name: (low, high)}`` (scalars, or arrays of the variable's shape),
    required for every input when there are no captured rows.
    ``output_range``: ``{output name: (low, high)}``, the expected range of an
    output, used to standardise it (needed only without captures, and then
    only if the outputs are far from order 1).  Other keyword arguments go to
    the backend.  Returns ``(spec, backend, data, training record)`` for
    :func:`phasm.train.fit.fit_and_package`.
    """
    if physics is None:
        raise BackendError("physics_weight=, collocation=, domain= and output_range= need physics=residual "
                           "(a function residual(model, inputs)); see docs/physics-informed.md")
    if not callable(physics):
        raise BackendError(f"physics must be a function residual(model, inputs), got {type(physics).__name__}")
    cls = get_backend(backend) if isinstance(backend, str) else type(backend)
    if not cls.supports_physics:
        raise BackendError(f"backend {cls.name!r} does not support physics-informed training (physics=); use backend='torch'")
    spec = spec if spec is not None else getattr(source, "spec", None)
    if spec is None:
        raise SpecError("physics-informed training needs the function's spec: declare inputs= and outputs=, or capture rows first")
    ragged = [v.name for v in [*spec.inputs, *spec.outputs] if v.ragged]
    if ragged:
        raise SpecError(f"{spec.function}: physics-informed training takes fixed-shape variables; {ragged} are variable-length")
    X, Y = _captured(source, spec)
    finite = np.isfinite(X).all(1) & np.isfinite(Y).all(1)
    lower, upper, x_norm = _input_domain(spec, domain or {}, X[finite])
    y_norm = _output_norm(spec, output_range or {}, Y[finite])
    data = ArrayData(X, Y, val_fraction=val_fraction, seed=seed, x_norm=x_norm, y_norm=y_norm)
    problem = PhysicsProblem(physics, physics_weight, collocation, lower, upper,
                             tuple((str(v.name), v.shape) for v in spec.inputs),
                             tuple((str(v.name), v.shape) for v in spec.outputs),
                             x_norm.mean, x_norm.scale, y_norm.mean, y_norm.scale)
    est = make_backend(backend, physics=problem, **params) if isinstance(backend, str) else backend
    if not isinstance(backend, str):
        est.physics = problem  # type: ignore[attr-defined]
    return spec, est, data, {"physics": problem.describe(), "captured_rows": int(len(X))}


def physics_source(fn: Any) -> CaptureStore | None:
    """The capture store of surrogate ``fn`` (flushed), or ``None`` when it has captured nothing yet.

    ``fn.train(physics=...)`` then trains from physics alone; that needs a
    declared spec, and no tolerance (a gate is certified on held-out captures).
    """
    if fn.store_path is not None:
        fn.flush()
        try:
            return CaptureStore(fn.store_path)
        except FileNotFoundError:
            pass
    if fn.spec is None:
        raise SpecError(f"{fn.name}: training from physics alone needs a declared spec (inputs=..., outputs=...); "
                        "nothing was captured to infer it from")
    if fn.tolerance is not None:
        raise SpecError(f"{fn.name}: a tolerance needs captured rows to certify the trust gate; nothing was captured. "
                        "Capture some rows, or train from physics alone with tolerance=None")
    return None


def _captured(source: Any, spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    if source is None:
        return np.empty((0, spec.n_in_features), np.float32), np.empty((0, spec.n_out_features), np.float32)
    if isinstance(source, CaptureStore):
        assert source.spec is not None
        source.spec.check_compatible(spec, f"store {source.path}")
        if len(source) == 0:
            return _captured(None, spec)
        X, Y = source.matrices()
    else:
        X, Y = (np.asarray(a, np.float32) for a in source)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != spec.n_in_features or Y.shape != (len(X), spec.n_out_features):
        raise SpecError(f"{spec.function}: X must be (n, {spec.n_in_features}) and Y (n, {spec.n_out_features}); "
                        f"got {X.shape} and {Y.shape}")
    return np.asarray(X, np.float32), np.asarray(Y, np.float32)


def _bounds(v: Variable, value: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` for variable ``v`` as two flat float64 arrays of ``v.size`` entries."""
    try:
        low, high = value
        lo = np.broadcast_to(np.asarray(low, np.float64), v.shape).ravel()
        hi = np.broadcast_to(np.asarray(high, np.float64), v.shape).ravel()
    except (TypeError, ValueError):
        raise SpecError(f"{what}[{v.name!r}]: expected (low, high) scalars or arrays of shape {v.shape}, got {value!r}") from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise SpecError(f"{what}[{v.name!r}]: bounds must be finite, got ({low!r}, {high!r})")
    if np.any(hi < lo):
        raise SpecError(f"{what}[{v.name!r}]: low must be <= high, got ({low!r}, {high!r})")
    return lo, hi


def _check_names(given: Mapping[str, Any], variables: Sequence[Variable], what: str) -> None:
    if not isinstance(given, Mapping):
        raise SpecError(f"{what} must be a dict {{name: (low, high)}}, got {type(given).__name__}")
    names = [v.name for v in variables]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise SpecError(f"{what}: unknown variable(s) {unknown}; expected some of {names}")


def domain_bounds(spec: Spec, domain: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(low, high)`` of the inputs from a ``domain=`` mapping that names every input.

    >>> import phasm
    >>> spec = phasm.Spec.from_declarations("m.f", {"t": phasm.Scalar()}, {"y": phasm.Scalar()})
    >>> [b.tolist() for b in domain_bounds(spec, {"t": (0.0, 2.0)})]
    [[0.0], [2.0]]
    """
    lower, upper, _ = _input_domain(spec, domain, np.empty((0, spec.n_in_features), np.float32))
    return lower, upper


def _input_domain(spec: Spec, domain: Mapping[str, Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray, Standardiser]:
    _check_names(domain, spec.inputs, "domain")
    lower, upper, mean, scale, col = [], [], [], [], 0
    for v in spec.inputs:
        cols = X[:, col : col + v.size]
        if v.name is not None and v.name in domain:
            lo, hi = _bounds(v, domain[v.name], "domain")
            m, s = (lo + hi) / 2, (hi - lo) * UNIFORM_STD
        elif len(cols):
            lo, hi = cols.min(0).astype(np.float64), cols.max(0).astype(np.float64)
            m, s = cols.mean(0, dtype=np.float64), cols.std(0, dtype=np.float64)
        else:
            raise SpecError(f"domain: input {v.name!r} has no range: pass domain={{{v.name!r}: (low, high)}} "
                            "(no captured rows to take it from)")
        lower.append(lo)
        upper.append(hi)
        mean.append(m)
        scale.append(np.where(s > 1e-12 * np.maximum(1.0, np.abs(m)), s, 1.0))
        col += v.size
    norm = Standardiser(np.concatenate(mean).astype(np.float32), np.concatenate(scale).astype(np.float32))
    return np.concatenate(lower), np.concatenate(upper), norm


def _output_norm(spec: Spec, output_range: Mapping[str, Any], Y: np.ndarray) -> Standardiser:
    _check_names(output_range, spec.outputs, "output_range")
    mean, scale, col = [], [], 0
    for v in spec.outputs:
        cols = Y[:, col : col + v.size]
        if v.name is not None and v.name in output_range:
            lo, hi = _bounds(v, output_range[v.name], "output_range")
            m, s = (lo + hi) / 2, (hi - lo) * UNIFORM_STD
        elif len(cols) >= 2:
            m, s = cols.mean(0, dtype=np.float64), cols.std(0, dtype=np.float64)
        else:
            m, s = np.zeros(v.size), np.ones(v.size)
        mean.append(m)
        scale.append(np.where(s > 1e-12 * np.maximum(1.0, np.abs(m)), s, 1.0))
        col += v.size
    return Standardiser(np.concatenate(mean).astype(np.float32), np.concatenate(scale).astype(np.float32))
