"""Deferred results: the value of a call that is computed later, together with others.

Inside ``phasm.batching()`` a ``model``/``auto`` call returns a :class:`Deferred`
at once.  It stands for the call's return value: ``float(d)``, ``int(d)``,
``np.asarray(d)``, arithmetic (``d * 2``, ``1 - d``, ``d @ m``), comparisons,
``d[i]``, ``len(d)``, iteration, attribute access (``d.shape``), ``str``,
``format`` and ``hash`` all work and give what the value gives.  The first such
use computes the batch the call belongs to (every call queued with it, in one
model evaluation) and from then on the value is simply there; ``d.result()``
returns the plain value (or raises the call's error).

A deferred value is **not** an instance of the value's type:
``isinstance(d, float)`` is ``False`` and ``type(d)`` is ``Deferred``.  Code that
checks types, or a C extension that insists on a real float, needs the plain
value: ``d.result()``, ``float(d)``, or :func:`resolve` for any structure.
Pickling or copying a deferred value gives the plain value.

Example
-------
>>> d = Deferred.done_with(0.5)
>>> float(d) + 1, d * 2, d > 0.25, f"{d:.2f}", isinstance(d, float), d.result()
(1.5, 1.0, True, '0.50', False, 0.5)
>>> resolve({"a": (d, [d])})
{'a': (0.5, [0.5])}
"""

from __future__ import annotations

import copy
import math
import operator
from typing import Any, Callable, Protocol

import numpy as np

__all__ = ["Deferred", "Failure", "deferred_form", "deliver", "failed_errors", "guarded", "resolve"]


class _Batch(Protocol):
    def run(self) -> None: ...


class Failure:
    """An exception a deferred call ended with (raised where its value is used; ``claimed`` once it was)."""

    __slots__ = ("error", "claimed")

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.claimed = False


def guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or the :class:`Failure` holding the exception it raised (one call of a batch failing
    fails that call alone)."""
    try:
        return fn(*args)
    except Exception as exc:
        return Failure(exc)


def _plain(x: Any) -> Any:
    return x.result() if type(x) is Deferred else x


def _forward(op: Callable[[Any, Any], Any]) -> Callable[["Deferred", Any], Any]:
    def method(self: "Deferred", other: Any) -> Any:
        return op(self.result(), _plain(other))
    return method


def _reflected(op: Callable[[Any, Any], Any]) -> Callable[["Deferred", Any], Any]:
    def method(self: "Deferred", other: Any) -> Any:
        return op(_plain(other), self.result())
    return method


class Deferred:
    """The value of a deferred call (see the module docstring)."""

    # ``_value`` stays unset until the batch is computed (one attribute store less per call).
    __slots__ = ("_batch", "_value")
    _value: Any

    def __init__(self, batch: _Batch | None) -> None:
        self._batch = batch

    @classmethod
    def done_with(cls, value: Any) -> "Deferred":
        """A deferred value that is already computed (for tests and examples)."""
        d = cls(None)
        d._value = value
        return d

    def done(self) -> bool:
        """Whether the value is computed (no evaluation is started)."""
        try:
            self._value
        except AttributeError:
            return False
        return True

    def result(self) -> Any:
        """The plain value, computing the pending batch first if needed; raises the call's error."""
        try:
            value = self._value
        except AttributeError:
            batch = self._batch
            assert batch is not None
            batch.run()
            value = self._value
        if type(value) is Failure:
            value.claimed = True
            raise value.error
        return value

    # -- conversions ----------------------------------------------------------------

    def __float__(self) -> float:
        try:
            value = self._value
        except AttributeError:
            return float(self.result())
        if type(value) is float:  # computed already: the common way a loop's results are read back
            return value
        return float(self.result())

    def __int__(self) -> int:
        return int(self.result())

    def __complex__(self) -> complex:
        return complex(self.result())

    def __index__(self) -> int:
        return operator.index(self.result())

    def __bool__(self) -> bool:
        return bool(self.result())

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        value = self.result()
        if copy:
            return np.array(value, dtype=dtype, copy=True)
        return np.asarray(value, dtype=dtype)

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self.result(), ndigits) if ndigits is not None else round(self.result())

    def __trunc__(self) -> Any:
        return math.trunc(self.result())

    def __floor__(self) -> Any:
        return math.floor(self.result())

    def __ceil__(self) -> Any:
        return math.ceil(self.result())

    def __hash__(self) -> int:
        return hash(self.result())

    def __str__(self) -> str:
        return str(self.result())

    def __format__(self, spec: str) -> str:
        return format(self.result(), spec)

    def __repr__(self) -> str:
        # Shows the value (computing it), never raises: a debugger or a log line must not fail on it.
        try:
            return f"deferred({self.result()!r})"
        except BaseException as exc:
            return f"deferred(<failed: {type(exc).__name__}: {exc}>)"

    def __reduce__(self) -> tuple[Callable[[Any], Any], tuple[Any]]:
        return (_identity, (self.result(),))

    def __copy__(self) -> Any:
        return copy.copy(self.result())

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(self.result(), memo)

    # -- containers and attributes ------------------------------------------------------

    def __len__(self) -> int:
        return len(self.result())

    def __iter__(self) -> Any:
        return iter(self.result())

    def __reversed__(self) -> Any:
        return reversed(self.result())

    def __contains__(self, item: Any) -> bool:
        return _plain(item) in self.result()

    def __getitem__(self, key: Any) -> Any:
        return self.result()[_plain(key)]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.result()[_plain(key)] = _plain(value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # protocol probes (copy, pickle, IPython, numpy) never start an evaluation
            raise AttributeError(name)
        return getattr(self.result(), name)

    # -- arithmetic and comparisons: on the value ------------------------------------------

    __add__, __radd__ = _forward(operator.add), _reflected(operator.add)
    __sub__, __rsub__ = _forward(operator.sub), _reflected(operator.sub)
    __mul__, __rmul__ = _forward(operator.mul), _reflected(operator.mul)
    __truediv__, __rtruediv__ = _forward(operator.truediv), _reflected(operator.truediv)
    __floordiv__, __rfloordiv__ = _forward(operator.floordiv), _reflected(operator.floordiv)
    __mod__, __rmod__ = _forward(operator.mod), _reflected(operator.mod)
    __divmod__, __rdivmod__ = _forward(divmod), _reflected(divmod)
    __pow__, __rpow__ = _forward(operator.pow), _reflected(operator.pow)
    __matmul__, __rmatmul__ = _forward(operator.matmul), _reflected(operator.matmul)
    __and__, __rand__ = _forward(operator.and_), _reflected(operator.and_)
    __or__, __ror__ = _forward(operator.or_), _reflected(operator.or_)
    __xor__, __rxor__ = _forward(operator.xor), _reflected(operator.xor)
    __lshift__, __rlshift__ = _forward(operator.lshift), _reflected(operator.lshift)
    __rshift__, __rrshift__ = _forward(operator.rshift), _reflected(operator.rshift)
    __lt__, __le__ = _forward(operator.lt), _forward(operator.le)
    __gt__, __ge__ = _forward(operator.gt), _forward(operator.ge)
    __eq__, __ne__ = _forward(operator.eq), _forward(operator.ne)

    def __neg__(self) -> Any:
        return -self.result()

    def __pos__(self) -> Any:
        return +self.result()

    def __abs__(self) -> Any:
        return abs(self.result())

    def __invert__(self) -> Any:
        return ~self.result()


def _identity(value: Any) -> Any:
    return value


def resolve(x: Any) -> Any:
    """``x`` with every deferred value in it replaced by its plain value (tuples, lists, dicts walked).

    >>> resolve([Deferred.done_with(1.0), 2.0])
    [1.0, 2.0]
    """
    if type(x) is Deferred:
        return x.result()
    if type(x) is list:
        return [resolve(v) for v in x]
    if type(x) is tuple:
        return tuple(resolve(v) for v in x)
    if type(x) is dict:
        return {k: resolve(v) for k, v in x.items()}
    return x


# -- for the batcher: attach deferred values to their batch, fill them in ------------------------------


def _members(target: Any) -> Any:
    """The deferred values a call's caller holds: one, or those of a tuple or dict of them."""
    if type(target) is Deferred:
        return (target,)
    return target if type(target) is tuple else target.values()


def deferred_form(form: tuple[Any, ...], batch: _Batch) -> Any:
    """The deferred values of a call returning a tuple (``("tuple", items)``) or a dict (``("dict", entries)``)
    of scalars: one Deferred per item, so ``a, b = f(x)`` unpacks without computing anything."""
    if form[0] == "tuple":
        return tuple(Deferred(batch) for _ in form[1])
    if form[0] == "dict":
        return {k: Deferred(batch) for k, _, _ in form[1]}
    return Deferred(batch)


def deliver(targets: list[Any], outcomes: list[Any]) -> list[Deferred]:
    """Fill each call's deferred values with its outcome (a value, or a :class:`Failure`); returns those that failed.

    A tuple (dict) of deferred values takes the items (entries) of its call's value.
    """
    failed: list[Deferred] = []
    if Failure not in set(map(type, outcomes)) and set(map(type, targets)) == {Deferred}:  # one value each, no error
        for d, value in zip(targets, outcomes):
            d._value = value
        return failed
    for target, outcome in zip(targets, outcomes):
        if type(target) is Deferred:
            target._value = outcome
            if type(outcome) is Failure:
                failed.append(target)
            continue
        items = list(_members(target))
        if type(outcome) is Failure:
            values: Any = [outcome] * len(items)
            failed.extend(items)
        else:
            values = outcome if type(target) is tuple else [outcome[k] for k in target]
        for d, v in zip(items, values):
            d._value = v
    return failed


def failed_errors(failed: list[Deferred]) -> list[BaseException]:
    """The errors of failed deferred values that nobody has seen raised yet (one per failure)."""
    seen: set[int] = set()
    errors = []
    for d in failed:
        f = d._value
        if type(f) is Failure and not f.claimed and id(f) not in seen:
            seen.add(id(f))
            errors.append(f.error)
    return errors
