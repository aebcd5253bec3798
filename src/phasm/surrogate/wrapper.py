"""The surrogate wrapper: a function whose calls a trained model may answer.

A :class:`Surrogate` is made of parts, each with one job, held as named attributes:

* ``codec`` (:class:`~phasm.surrogate.codec.CallCodec`): call arguments <-> model rows,
  through the spec's optics;
* ``specs`` (:class:`~phasm.surrogate.specs.SpecSource`): where the spec comes from
  (the declarations, the first call), and how a stored one is checked;
* ``slot`` (:class:`~phasm.surrogate.slot.ModelSlot`): the (model, gate) pair, swapped as
  one reference, with training, retraining, saving and loading;
* ``sink`` (:class:`~phasm.surrogate.sink.CaptureSink`): the capture store writer
  (created under a lock) and ``summarize`` statistics;
* ``counters`` (:class:`~phasm.surrogate.counters.Counters`): what ``fn.stats`` reports;
* ``batcher`` (:class:`~phasm.surrogate.batching.Batcher`): the queue of deferred calls
  inside ``phasm.batching()`` / ``fn.batching()``;

and a table ``{Mode: handler}`` (:data:`~phasm.surrogate.handlers.HANDLERS`): a call is
``handler(self, args, kwargs)`` for the active mode's handler, resolved when the mode is set
(inside a batching block, a deferrable mode's handler is wrapped by
:func:`~phasm.surrogate.batching.call_deferred`).

Example
-------
>>> import phasm
>>> @phasm.surrogate(store="captures/price.h5", mode="capture")
... def price(S: float, K: float) -> float:
...     return max(S - K, 0.0)
>>> price(2.0, 1.5), price.stats.captured_rows
(0.5, 1)
"""

from __future__ import annotations

import functools
import os
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, cast

import numpy as np

from phasm.bindings.spec import Spec, Variable
from phasm.errors import SpecError, StoreError
from phasm.gate.base import Gate
from phasm.gate.certify import CalibrationReport
from phasm.gate.distribution import DistributionTolerance
from phasm.gate.tolerance import Tolerance
from phasm.surrogate.calls import Handler, Parts
from phasm.surrogate.codec import CallCodec
from phasm.surrogate.counters import Counters
from phasm.surrogate.batching import DEFAULT_MAX_BATCH, Batcher, Flush, answer_now
from phasm.surrogate.batching import register as register_for_batching
from phasm.surrogate.handlers import DEFERRABLE, HANDLERS
from phasm.surrogate.mode import Mode, mode_from_env, parse_mode
from phasm.surrogate.sink import CaptureSink
from phasm.surrogate.slot import ModelSlot
from phasm.surrogate.specs import SpecSource
from phasm.surrogate.stats import SurrogateStats
from phasm.surrogate.stochastic import check_stochastic_settings, random_argument

if TYPE_CHECKING:
    from phasm.store.reader import CaptureStore
    from phasm.train.artefact import ModelArtefact
    from phasm.train.package import TrainResult

__all__ = ["Surrogate", "surrogate"]


def _resolve_mode_then_call(p: Parts, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The handler before the mode is known: read it from the environment, then dispatch."""
    surrogate = cast(Surrogate, p)
    surrogate.mode  # resolves the mode, and with it the handler  # noqa: B018
    return surrogate._handler(p, args, kwargs)


class Surrogate:
    """A function that may be answered by a trained model. See :func:`surrogate` and the module docstring."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        inputs: Mapping[str, Variable] | None = None,
        outputs: Mapping[str, Variable] | None = None,
        store: str | os.PathLike[str] | None = None,
        batched: bool = False,
        mode: Mode | str | None = None,
        model: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        tolerance: Tolerance | DistributionTolerance | None = None,
        gate: Gate | None = None,
        flush_rows: int = 1024,
        shadow_fraction: float = 0.0,
        stochastic: bool = False,
        transforms: Mapping[str, Any] | str | None = None,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.__wrapped__: Callable[..., Any] = fn
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self.batched = bool(batched)
        self.stochastic = bool(stochastic)
        check_stochastic_settings(self.name, self.stochastic, tolerance, shadow_fraction)
        self.tolerance = tolerance
        #: per-variable transforms for :meth:`train` (``{"tau": "log"}``); the others are chosen from the captures
        self.transforms = transforms
        if transforms is not None:  # names of transforms are checked now; variable names once the spec is known
            from phasm.train.transforms import parse_declared

            for var, kind in ({"*": transforms} if isinstance(transforms, str) else dict(transforms)).items():
                if kind != "auto":
                    parse_declared(str(var), kind)
        self.shadow_fraction = float(shadow_fraction)
        #: retrain in the background, in ``auto`` mode, after this many new captured rows
        self.retrain_after_rows: int | None = None
        #: retrain in a spawned process by default (see :meth:`retrain`)
        self.retrain_in_process = False
        self.rng = np.random.default_rng(0)  # shadow sampling
        self.codec = CallCodec(fn, self.name, batched=self.batched)
        #: a stochastic function's random argument (never a model input; see :mod:`phasm.surrogate.stochastic`)
        self.random_argument = random_argument(self.codec.signature) if self.stochastic else None
        skip = (self.random_argument,) if self.random_argument is not None else ()
        self.specs = SpecSource(self.name, self.codec.params, batched=self.batched, inputs=inputs, outputs=outputs,
                                skip=skip)
        if self.specs.declared is not None:
            self.codec.bind(self.specs.declared)
        self.slot = ModelSlot(self.name, backend=backend or ("flow" if self.stochastic else "auto"), gate=gate,
                              stochastic=self.stochastic)
        self.sink = CaptureSink(self.name, store, flush_rows=flush_rows)
        self.counters = Counters()
        self.batcher = Batcher(self.name)
        self._captured_at_train = 0
        self._explicit_mode: Mode | None = None
        self._mode: Mode | None = None
        self._handler: Handler = _resolve_mode_then_call
        if mode is not None:
            self.mode = mode
        if model is not None:
            self.load(model)
        register_for_batching(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._handler(self, args, kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        # Decorating a method: bind like a function does.
        return self if instance is None else types.MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<phasm.Surrogate {self.name} mode={self.mode.value} model={'yes' if self.model else 'no'}>"

    # -- mode -------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The active call mode. Set it to a :class:`Mode` or its name; ``None`` re-reads the environment."""
        mode = self._mode
        if mode is None:
            mode = mode_from_env(self.name)
            self._mode = mode
            self.refresh_handler()
        return mode

    @mode.setter
    def mode(self, value: Mode | str | None) -> None:
        mode = None if value is None else parse_mode(value, source=f"{self.name}.mode")
        self.batcher.flush_pending()  # deferred calls are answered in the mode they were made in
        self._explicit_mode = self._mode = mode
        self.refresh_handler()

    def refresh_handler(self) -> None:
        """Resolve the handler calls go through: the mode's, wrapped for deferral while batching."""
        mode = self._mode
        if mode is None:
            self._handler = _resolve_mode_then_call
            return
        handler = HANDLERS[mode]
        flush = DEFERRABLE.get(mode)
        if flush is not None and self.batcher.active:
            handler = self.batcher.handler(flush, handler, self)
        self._handler = handler

    @property
    def explicit_mode(self) -> Mode | None:
        """The mode set in code (``mode=`` or ``fn.mode = ...``); ``None`` when it comes from the environment."""
        return self._explicit_mode

    # -- the parts, as attributes -------------------------------------------------------

    @property
    def spec(self) -> Spec | None:
        """The function's spec (``None`` until declared, inferred from the first call, or bound from a stored one)."""
        return self.codec.spec

    @property
    def model(self) -> ModelArtefact | None:
        """The attached model artefact (``None`` until trained or loaded)."""
        return self.slot.model

    @model.setter
    def model(self, art: ModelArtefact | None) -> None:
        self.batcher.flush_pending()  # calls deferred earlier are answered by the model they were made with
        self.slot.set_model(art)

    @property
    def gate(self) -> Gate:
        """The trust gate used in ``auto`` mode."""
        return self.slot.gate

    @gate.setter
    def gate(self, gate: Gate) -> None:
        self.batcher.flush_pending()
        self.slot.set_gate(gate)

    @property
    def calibration(self) -> CalibrationReport | None:
        """The gate's calibration report: the certified bound, the expected fallback rate (``None``: none certified)."""
        return self.slot.calibration

    @property
    def backend(self) -> str:
        """The default backend of :meth:`train`."""
        return self.slot.backend

    @backend.setter
    def backend(self, name: str) -> None:
        self.slot.backend = name

    @property
    def store_path(self) -> Path | None:
        """The capture store (``None``: no store); a new path takes effect when the store is next opened."""
        return self.sink.path

    @store_path.setter
    def store_path(self, path: str | os.PathLike[str] | None) -> None:
        self.sink.path = Path(path) if path is not None else None

    @property
    def flush_rows(self) -> int:
        """Captured rows buffered before a write (see :class:`~phasm.store.CaptureWriter`)."""
        return self.sink.flush_rows

    @flush_rows.setter
    def flush_rows(self, n: int) -> None:
        self.sink.flush_rows = int(n)

    @property
    def retrain_error(self) -> BaseException | None:
        """The error of the last background retrain (``None`` when it succeeded)."""
        return self.slot.retrain_error

    @property
    def retrains(self) -> int:
        """How many retrains have completed and been swapped in."""
        return self.slot.retrains

    # -- spec ---------------------------------------------------------------------------

    def bind_spec(self, stored: Spec, what: str = "a stored spec") -> Spec:
        """This function's spec for one read from a store or model folder: checked against the
        declarations (names, shapes, dtypes, directions) and bound by the code, never by the file.

        Adopted when the function has no spec yet; an error naming the differing variable otherwise.
        """
        spec = self.codec.spec
        if spec is None:
            spec = self.specs.from_file(stored, what)
            self.codec.bind(spec)
        else:
            spec.check_compatible(stored, what)
        return spec

    # -- store --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered captured rows to the store now (calls deferred in a batching block answered first)."""
        self.batcher.flush_pending()
        self.sink.flush()

    def close(self) -> None:
        """Flush and close the capture store (a later capture reopens it); save summaries, if any.
        Calls deferred in a batching block are answered first (``auto`` captures their fallbacks)."""
        self.batcher.flush_pending()
        self.sink.close()

    def capture_store(self) -> CaptureStore:
        """The capture store as a :class:`~phasm.store.CaptureStore` (buffered rows flushed first)."""
        return self.sink.store()

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per-variable statistics gathered in ``summarize`` mode (``"in:x"``, ``"out:y"`` keys)."""
        return self.sink.summary()

    def save_summary(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write :meth:`summary` as JSON (default: next to the store, ``<store>.summary.json``)."""
        return self.sink.save_summary(path)

    # -- model --------------------------------------------------------------------------

    def train(self, backend: str | None = None, *, store: str | os.PathLike[str] | None = None,
              val_fraction: float = 0.2, seed: int = 0, verbose: bool = False,
              calibration_fraction: float = 0.25, confidence: float = 0.95,
              tolerance: Tolerance | DistributionTolerance | None = None,
              **params: Any) -> TrainResult:
        """Train a model on the captured rows and attach it; returns a :class:`~phasm.train.TrainResult`.

        ``backend`` defaults to the surrogate's backend (``"auto"``: chosen from the data, see
        :mod:`phasm.train.auto`); extra keyword arguments go to the backend (e.g. ``epochs=200``), or to
        training: ``transforms=`` (overrides the surrogate's), ``search=N`` (an Optuna search over N
        configurations), ``time_budget=`` (seconds for ``auto``).  ``tolerance`` given here replaces the
        surrogate's (``fn.tolerance``) for this and later training.  With a ``tolerance``, ``calibration_fraction`` of the
        rows are held out to certify a :class:`~phasm.gate.ConformalGate` at ``confidence``
        (see :func:`phasm.gate.train_calibrated`); its report is ``fn.calibration``.  Without one,
        the gate trusts only inputs inside the captured range (a :class:`~phasm.gate.RangeGate`):
        no accuracy bound is certified.
        """
        from phasm.store.reader import CaptureStore
        from phasm.train.physics import physics_source

        if tolerance is not None:
            check_stochastic_settings(self.name, self.stochastic, tolerance, self.shadow_fraction)
            self.tolerance = tolerance
        source: CaptureStore | None
        if store is not None:
            source = CaptureStore(store)
        elif params.get("physics") is not None:
            source = physics_source(self)  # None: nothing captured, train from the physics alone
        else:
            source = self.sink.store()
        if source is None:
            spec = self.codec.spec
        else:
            spec = self.bind_spec(source.spec, f"store {source.path}") if source.spec is not None else self.codec.spec
        if spec is None:
            raise StoreError(f"{self.name}: store {getattr(source, 'path', None)} holds no spec")
        if self.transforms is not None:
            params.setdefault("transforms", self.transforms)
        kw = dict(val_fraction=val_fraction, seed=seed, verbose=verbose, calibration_fraction=calibration_fraction,
                  confidence=confidence, **params)
        self.batcher.flush_pending()
        return self.slot.train(source, spec, self.tolerance, backend, kw)

    def retrain(self, backend: str | None = None, *, background: bool = True, process: bool | None = None,
                **params: Any) -> Any:
        """Train a new model (and gate) on everything captured so far and hot-swap it in.

        With ``background=True`` (default) training runs in a daemon thread and
        this returns it at once (``.join()`` to wait); calls keep using the old
        model until the new model and its gate are fully built, then switch with
        one reference assignment.  A retrain already running is returned
        instead of starting another.  Errors are kept in ``fn.retrain_error``.
        With ``process=True`` (default: ``fn.retrain_in_process``) training runs in a
        spawned process, so it does not share the GIL with the callers; the
        thread only waits, loads the saved model and swaps it in.
        Without arguments it repeats the last :meth:`train` (backend and parameters).
        Set ``fn.retrain_after_rows = N`` to retrain automatically, in
        ``auto`` mode, after ``N`` new captured rows.

        Example
        -------
        >>> fn.retrain().join()      # doctest: +SKIP
        """
        from phasm.store.reader import CaptureStore

        path = self.sink.path
        if path is None:
            raise StoreError(f"{self.name}: no store configured; pass store= to phasm.surrogate")
        if background:
            self.sink.flush()  # the writer belongs to the calling threads; the worker only reads
            self._captured_at_train = self.counters.captured_rows
        source = self.sink.store if not background else (lambda: CaptureStore(path))
        spec = self.codec.spec
        if spec is None:
            stored = CaptureStore(path).spec
            if stored is None:
                raise StoreError(f"{self.name}: store {path} holds no spec")
            spec = self.bind_spec(stored, f"store {path}")
        in_process = self.retrain_in_process if process is None else bool(process)
        return self.slot.retrain(source, spec, self.tolerance, backend, params, background=background,
                                 process=in_process, store_path=path)

    def retrain_if_due(self) -> None:
        """Start a background retrain when ``retrain_after_rows`` rows were captured since the last one."""
        n = self.retrain_after_rows
        if n and self.sink.path is not None and self.counters.captured_rows - self._captured_at_train >= n:
            self.retrain(background=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the attached model (and its gate) as a model folder."""
        return self.slot.save(path)

    def load(self, path: str | os.PathLike[str]) -> Surrogate:
        """Load a model folder; refuses one whose spec differs from this function's, naming the variable.

        The folder's spec brings names, shapes and dtypes; the bindings come from this code.
        """
        from phasm.train.artefact import ModelArtefact

        expect = self.codec.spec
        if expect is None:
            stored = Spec.from_json(ModelArtefact.read_metadata(path)["spec"])
            expect = self.specs.from_file(stored, f"model {path}")
        self.batcher.flush_pending()
        self.slot.load(path, expect)
        if self.codec.spec is None:
            self.codec.bind(expect)
        return self

    def load_exported(self, path: str | os.PathLike[str], **norm: Any) -> Surrogate:
        """Attach a ``torch.export`` program (``.pt2``) trained elsewhere; widths are checked against the spec.

        The program maps ``(batch, n_in_features)`` to ``(batch, n_out_features)`` in user units unless
        ``x_mean/x_scale/y_mean/y_scale`` say otherwise (see :func:`phasm.train.exported.load_exported`).
        """
        spec = self.codec.spec
        if spec is None:
            raise SpecError(f"{self.name}: declare inputs/outputs (or call it once) before load_exported, "
                            "so the model's widths can be checked")
        self.batcher.flush_pending()
        self.slot.load_exported(path, spec, norm)
        return self

    def seed(self, seed: int | np.random.SeedSequence | None) -> None:
        """Restart the stream a stochastic function's model draws its samples from (``None``: fresh entropy).

        The same seed and the same calls give the same answers, also from a model saved and loaded.

        >>> import phasm
        >>> walk = phasm.surrogate(lambda steps: steps, name="m.walk", stochastic=True)
        >>> walk.seed(7)
        """
        if not self.stochastic:
            raise ValueError(f"{self.name}: seed() is for stochastic functions; declare phasm.surrogate(stochastic=True)")
        self.slot.reseed(seed)

    # -- batching ------------------------------------------------------------------------

    def batching(self, max_batch: int = DEFAULT_MAX_BATCH) -> Any:
        """A ``with`` block in which this surrogate's ``model``/``auto`` calls (from any thread) return
        deferred values, answered together ``max_batch`` rows at a time (see :func:`phasm.batching`).

        Example
        -------
        >>> import numpy as np, phasm
        >>> from phasm.train import fit_model
        >>> @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
        ...                  mode="model")
        ... def area(x, y):
        ...     return x * y
        >>> X = np.random.default_rng(0).uniform(0, 2, (200, 2))
        >>> area.model, _ = fit_model((X, X[:, :1] * X[:, 1:]), area.spec, backend="ridge", degree=2)
        >>> with area.batching(max_batch=1024):
        ...     zs = [area(x, 2.0) for x in (0.5, 1.0, 1.5)]   # deferred values: queued, nothing computed
        ...     zs[0].done()
        False
        >>> [round(float(z), 3) for z in zs]                   # computed together when the block ended
        [1.0, 2.0, 3.0]
        """
        return self.batcher.block(self, max_batch)

    def batch(self, calls: Iterable[Any]) -> list[Any]:
        """Call the function once per item of ``calls`` (an argument tuple, or a dict of keyword arguments)
        and return the results in order, plain values.

        In ``model`` and ``auto`` mode the calls are answered together: their inputs are checked (a bad
        one raises before anything runs), then one model evaluation answers them all (in ``auto``, the
        refused ones are run by the original, one call at a time, or per call for a batched function,
        and captured); a call's error is raised once all are answered.  Other modes run the calls one
        by one, as a loop would.

        Example
        -------
        >>> import numpy as np, phasm
        >>> from phasm.train import fit_model
        >>> @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
        ...                  mode="model")
        ... def area(x, y):
        ...     return x * y
        >>> X = np.random.default_rng(0).uniform(0, 2, (200, 2))
        >>> area.model, _ = fit_model((X, X[:, :1] * X[:, 1:]), area.spec, backend="ridge", degree=2)
        >>> [round(z, 3) for z in area.batch([(0.5, 2.0), {"x": 1.5, "y": 2.0}])]
        [1.0, 3.0]
        """
        items = list(calls)
        flush = self._flush_now()
        if flush is None:
            return [self(**c) if isinstance(c, Mapping) else self(*c) for c in items]
        return answer_now(self, flush, [dict(c) if isinstance(c, Mapping) else c for c in items])

    def map(self, *iterables: Iterable[Any]) -> list[Any]:
        """Like the built-in ``map``: ``fn(a, b)`` for ``a, b`` taken together from ``iterables``, answered
        together as :meth:`batch` answers them; results in order.  Float arrays, one per argument of a
        function of scalars, go to the model as columns, with no per-call Python work.

        Example
        -------
        >>> import numpy as np, phasm
        >>> from phasm.train import fit_model
        >>> @phasm.surrogate(inputs={"x": phasm.Scalar(), "y": phasm.Scalar()}, outputs={"z": phasm.Scalar()},
        ...                  mode="model")
        ... def area(x, y):
        ...     return x * y
        >>> X = np.random.default_rng(0).uniform(0, 2, (200, 2))
        >>> area.model, _ = fit_model((X, X[:, :1] * X[:, 1:]), area.spec, backend="ridge", degree=2)
        >>> [round(z, 3) for z in area.map(np.array([0.5, 1.0, 1.5]), np.array([2.0, 2.0, 2.0]))]
        [1.0, 2.0, 3.0]
        """
        flush = self._flush_now()
        plan = self.codec.plan
        if (flush is not None and plan is not None and plan.float_row and len(iterables) == plan.n_in
                and all(type(c) is np.ndarray and c.ndim == 1 and c.dtype in (np.float32, np.float64)
                        and len(c) == len(iterables[0]) for c in iterables)):  # type: ignore[arg-type]
            return answer_now(self, flush, columns=tuple(iterables))  # type: ignore[arg-type]
        return self.batch(zip(*iterables))

    def _flush_now(self) -> Flush | None:
        """The batch step of the current mode when calls in hand can be answered together now, else ``None``."""
        flush = DEFERRABLE.get(self.mode)
        plan = self.codec.plan
        if flush is None or plan is None or self.slot.pair[0] is None or plan.layout.ragged:
            return None
        self.batcher.flush_pending()  # calls deferred earlier are answered first, in order
        return flush

    # -- counters ------------------------------------------------------------------------

    @property
    def stats(self) -> SurrogateStats:
        """Counters since creation (or :meth:`reset_stats`), with the gate and what it certifies."""
        cal = self.slot.calibration
        return self.counters.snapshot(gate=self.slot.gate.describe(),
                                      certified_bound=cal.miss_rate_bound if cal is not None and cal.certified else None,
                                      tolerance=cal is not None)

    def reset_stats(self) -> None:
        self.counters.reset()

    # -- report --------------------------------------------------------------------------

    def report(self, path: str | os.PathLike[str]) -> Path:
        """Write a self-contained HTML report of this surrogate (spec, data, training, accuracy, gate, counters).

        See :func:`phasm.report.report_surrogate`; needs matplotlib (``pip install 'phasm[report]'``).
        """
        from phasm.report.live import report_surrogate  # the report layer sits above: imported at call time only

        path_written: Path = report_surrogate(self, path)
        return path_written


def surrogate(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    inputs: Mapping[str, Variable] | None = None,
    outputs: Mapping[str, Variable] | None = None,
    store: str | os.PathLike[str] | None = None,
    batched: bool = False,
    mode: Mode | str | None = None,
    model: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    tolerance: Tolerance | DistributionTolerance | None = None,
    gate: Gate | None = None,
    flush_rows: int = 1024,
    shadow_fraction: float = 0.0,
    stochastic: bool = False,
    transforms: Mapping[str, Any] | str | None = None,
) -> Any:
    """Wrap a function so a trained model may answer its calls.

    Nothing changes until a mode says so (``fn.mode``, ``PHASM_CALL_MODE``).

    Parameters
    ----------
    name: defaults to ``module.qualname``; also names ``PHASM_CALL_MODE_<NAME>``.
    inputs, outputs: explicit declarations (``phasm.Scalar()``, ``phasm.Array(shape)``, optics);
        without them the spec is inferred from the first call.  Either may be given alone, and list
        only the variables that need declaring: the first call infers the rest (the other arguments
        as inputs, the return value as outputs).
    store: HDF5 capture store path.
    batched: the function is vectorised: every input and output has a leading batch axis.
    model: a model folder to load now (its spec is checked against this function's; its
        bindings never replace the code's).
    backend: the default backend for :meth:`Surrogate.train`; ``"auto"`` (default): chosen from the
        captures (a Gaussian process for small, low-dimensional ones, else an MLP sized from the rows;
        see :mod:`phasm.train.auto`); ``"torch"`` always means the torch MLP; ``"flow"`` by default
        when stochastic.
    tolerance: the error tolerance (see :class:`phasm.Tolerance`); training then certifies a gate.
        For a stochastic function, bounds on distributions (:class:`phasm.DistributionTolerance`):
        training then decides a :class:`~phasm.gate.distribution.DistributionGate`.
    gate: a trust gate; default: the one stored with the model (without a tolerance, the
        captured input range; with one, a certified gate), else finite-only.
    shadow_fraction: share of model-answered calls in ``auto`` mode also run on the original
        to measure the miss rate in production (0 for a stochastic function).
    stochastic: the function draws random numbers: training fits a generative model (``flow``,
        ``vae``) whose answers are samples, one per call or row; ``fn.seed(...)`` or the function's
        own random argument makes them reproducible (see :mod:`phasm.surrogate.stochastic`).
    transforms: per-variable transforms the model learns on, ``{"tau": "log", "P": "log"}`` (names:
        ``log``, ``asinh``, ``logit``, ``standardise``, ``none``); undeclared variables get theirs
        from the captures (see :mod:`phasm.train.transforms`).  The tolerance is judged on the
        caller's scale either way.

    Example
    -------
    >>> import phasm
    >>> @phasm.surrogate(mode="original")
    ... def f(x: float) -> float:
    ...     return 2 * x
    >>> f(3.0)
    6.0
    """
    def make(f: Callable[..., Any]) -> Surrogate:
        return Surrogate(f, name=name, inputs=inputs, outputs=outputs, store=store, batched=batched, mode=mode,
                         model=model, backend=backend, tolerance=tolerance, gate=gate, flush_rows=flush_rows,
                         shadow_fraction=shadow_fraction, stochastic=stochastic, transforms=transforms)

    return make if fn is None else make(fn)
