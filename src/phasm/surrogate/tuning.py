"""``phasm.tune(fn, trials)``: train a surrogate with a search over its network's settings.

The same as ``fn.train(search=trials, ...)``: an Optuna search (seeded TPE) over ``trials``
configurations of the torch MLP, each scored on the validation split, the best kept and attached
(see :mod:`phasm.train.tune`).  Needs ``pip install 'phasm[tune]'``.

Example
-------
>>> result = phasm.tune(price, trials=20)     # doctest: +SKIP
>>> print(result.summary())                   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from phasm.surrogate.wrapper import Surrogate
    from phasm.train.package import TrainResult

__all__ = ["tune"]


def tune(fn: Surrogate, trials: int = 20, **train_kwargs: Any) -> TrainResult:
    """Train ``fn`` with a search over ``trials`` network configurations (``fn.train(search=trials, ...)``)."""
    if int(trials) < 1:
        raise ValueError(f"phasm.tune: trials must be >= 1, got {trials}")
    return fn.train(search=int(trials), **train_kwargs)
