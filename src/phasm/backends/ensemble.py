"""Deep ensembles around any backend: K members, different seeds, optional bootstrap.

The ensemble is the trust gate's source of uncertainty: its members disagree
where the data did not pin the function down.  ``predict`` returns the
members' mean, ``predict_members`` all of them ``(K, n, n_out)``.  Members
whose constructor takes a ``seed`` get ``seed + i``; each member also sees
its own shuffling seed, and, with ``bootstrap``, its own Poisson(1)
resampling of the training rows (which works on streamed data too).

Weights of member ``i`` are saved as ``m<i>.<file>`` next to each other in the
artefact folder, so every file is checksummed by the artefact as usual.

Example
-------
>>> import numpy as np
>>> from phasm.train.data import ArrayData
>>> X = np.random.default_rng(0).uniform(-1, 1, (200, 2)); Y = X[:, :1] ** 2 + X[:, 1:]
>>> ens = EnsembleBackend(member="ridge", k=3, member_params={"degree": 2})
>>> _ = ens.fit(ArrayData(X, Y, val_fraction=0.2, seed=0))
>>> ens.predict_members(np.zeros((4, 2), np.float32)).shape
(3, 4, 1)
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from phasm.backends.base import Backend, BackendError, FitHistory, TrainingData
from phasm.backends.registry import get_backend


class _MemberData:
    """One member's view of the training data: its own shuffling seed and bootstrap weights."""

    def __init__(self, data: TrainingData, offset: int, bootstrap: bool, seed: int) -> None:
        self._data = data
        self._offset = offset
        self._bootstrap = bootstrap
        self._seed = seed
        self.layout = data.layout
        self.n_in, self.n_out = data.n_in, data.n_out
        self.n_train, self.n_val = data.n_train, data.n_val

    def _resample(self, X: np.ndarray, Y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if not self._bootstrap:
            return X, Y
        idx = np.repeat(np.arange(len(X)), rng.poisson(1.0, len(X)))
        rng.shuffle(idx)
        return X[idx], Y[idx]

    def train_batches(self, batch_size: int, *, seed: int, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # Same bootstrap weights every epoch would need the row index; Poisson weights
        # drawn per epoch are the "online bootstrap" (Oza & Russell), equivalent in expectation.
        rng = np.random.default_rng([self._seed, self._offset, seed])
        for X, Y in self._data.train_batches(batch_size, seed=seed + 7919 * self._offset, shuffle=shuffle):
            Xb, Yb = self._resample(X, Y, rng)
            if len(Xb):
                yield Xb, Yb

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        X, Y = self._data.train_arrays()
        return self._resample(X, Y, np.random.default_rng([self._seed, self._offset]))

    def validation(self) -> tuple[np.ndarray, np.ndarray]:
        return self._data.validation()


class EnsembleBackend(Backend):
    """K independently trained copies of a member backend.

    Parameters
    ----------
    member:
        Registered backend name of the members (``"torch"``, ``"ridge"``, ...).
    k:
        Number of members (>= 2).
    member_params:
        Constructor parameters of every member.
    bootstrap:
        Train each member on a Poisson(1) bootstrap resample of the training
        rows.  ``None`` (default): bootstrap only when the member has no
        ``seed`` parameter (a deterministic member would otherwise give K
        identical copies and no spread).
    seed:
        Base seed; member ``i`` uses ``seed + i``.
    client:
        A ``distributed.Client``: members train in parallel on its workers (each member's weights
        come back through its own ``save``/``load`` files, not pickled objects).  A run-time
        resource, not a parameter: it is not saved with the model.  Results equal a sequential fit.
    """

    name = "ensemble"
    has_members = True

    def __init__(self, member: str = "torch", k: int = 5, member_params: dict[str, Any] | None = None,
                 bootstrap: bool | None = None, seed: int = 0, client: Any = None) -> None:
        if not isinstance(member, str) or member == self.name:
            raise BackendError(f"ensemble: member must be the name of another backend, got {member!r}")
        if int(k) < 2:
            raise BackendError(f"ensemble: k must be >= 2 members, got {k}")
        member_params = dict(member_params or {})
        cls = get_backend(member)  # unknown or uninstalled member: fail now, with the registry's message
        takes_seed = "seed" in inspect.signature(cls.__init__).parameters
        if bootstrap is None:
            bootstrap = not takes_seed
        super().__init__(member=member, k=int(k), member_params=member_params, bootstrap=bootstrap, seed=int(seed))
        self.member, self.k, self.member_params = member, int(k), member_params
        self.bootstrap, self.seed = bool(bootstrap), int(seed)
        self._member_cls = cls
        self._takes_seed = takes_seed
        self.client = client

    @classmethod
    def library_version(cls) -> str:
        return ""

    def _make_member(self, i: int) -> Backend:
        params = dict(self.member_params)
        if self._takes_seed:
            params["seed"] = int(params.get("seed", 0)) + self.seed + i
        return self._member_cls(**params)

    def fit(self, data: TrainingData, *, verbose: bool = False) -> FitHistory:
        t0 = time.perf_counter()
        self.members_: list[Backend] = []
        histories: list[FitHistory] = []
        if self.client is not None:
            self.members_, histories = self._fit_on_cluster(data)
        for i in range(self.k if self.client is None else 0):
            m = self._make_member(i)
            histories.append(m.fit(_MemberData(data, i, self.bootstrap, self.seed), verbose=verbose))
            self.members_.append(m)
        hist = FitHistory(epochs=max(h.epochs for h in histories), best_epoch=0,
                          seconds=time.perf_counter() - t0, device=histories[0].device)
        if data.n_val:
            Xv, Yv = data.validation()
            hist.val_loss.append(float(np.mean((self.predict(Xv) - Yv) ** 2)))
        Xt, Yt = data.train_arrays() if data.n_train <= 200_000 else next(data.train_batches(65536, seed=0))
        hist.train_loss.append(float(np.mean((self.predict(Xt) - Yt) ** 2)))
        hist.notes["members"] = [{"epochs": h.epochs, "best_epoch": h.best_epoch,
                                  "val_loss": h.val_loss[-1] if h.val_loss else None} for h in histories]
        return hist

    def _fit_on_cluster(self, data: TrainingData) -> tuple[list[Backend], list[FitHistory]]:
        """Fit the members as Dask tasks; each returns its saved files, loaded back here as any artefact is."""
        futures = [self.client.submit(_fit_member_files, self._make_member(i), _MemberData(data, i, self.bootstrap, self.seed),
                                      pure=False) for i in range(self.k)]
        members, histories = [], []
        for fut in futures:
            files, state, history = fut.result()
            with tempfile.TemporaryDirectory() as tmp:
                for name, blob in files.items():
                    if Path(name).name != name:
                        raise BackendError(f"ensemble: a member wrote {name!r}, not a plain file name")
                    (Path(tmp) / name).write_bytes(blob)
                members.append(self._member_cls.load(Path(tmp), dict(self.member_params), state))
            histories.append(history)
        return members, histories

    def _check(self) -> None:
        if not getattr(self, "members_", None):
            raise BackendError("ensemble: predict called before fit/load")

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """Predictions of every member ``(k, n, n_out)`` in standardised units."""
        self._check()
        return np.stack([np.asarray(m.predict(X), np.float32) for m in self.members_])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The members' mean ``(n, n_out)``."""
        return self.predict_members(X).mean(axis=0)

    def state(self) -> dict[str, Any]:
        self._check()
        return {"members": [{"state": m.state(), "files": getattr(self, "_files", {}).get(i, [])}
                            for i, m in enumerate(self.members_)]}

    def save(self, directory: Path) -> list[str]:
        self._check()
        directory = Path(directory)
        written: list[str] = []
        self._files: dict[int, list[str]] = {}
        for i, m in enumerate(self.members_):
            with tempfile.TemporaryDirectory(dir=directory) as tmp:
                names = m.save(Path(tmp))
                for name in names:
                    if Path(name).name != name:
                        raise BackendError(f"ensemble: member {i} wrote {name!r}, not a plain file name")
                    shutil.move(str(Path(tmp) / name), directory / f"m{i}.{name}")
                    written.append(f"m{i}.{name}")
                self._files[i] = list(names)
        return written

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "EnsembleBackend":
        self = cls(**params)
        records = state.get("members")
        if not isinstance(records, list) or len(records) != self.k:
            raise BackendError(f"ensemble: state lists {len(records) if isinstance(records, list) else 'no'} members, "
                               f"expected k={self.k}")
        directory = Path(directory)
        self.members_ = []
        self._files = {}
        for i, rec in enumerate(records):
            names = list(rec.get("files", []))
            with tempfile.TemporaryDirectory() as tmp:
                for name in names:
                    if Path(name).name != name:
                        raise BackendError(f"ensemble: member {i} file {name!r} is not a plain file name")
                    src = directory / f"m{i}.{name}"
                    if not src.is_file():
                        raise BackendError(f"ensemble: member {i} weights file {src.name} is missing")
                    shutil.copyfile(src, Path(tmp) / name)
                self.members_.append(self._member_cls.load(Path(tmp), dict(self.member_params), dict(rec.get("state", {}))))
            self._files[i] = names
        return self


def _fit_member_files(member: Backend, data: Any) -> tuple[dict[str, bytes], dict[str, Any], FitHistory]:
    """On a worker: fit one member and return its weight files' bytes, JSON state and history."""
    history = member.fit(data)
    with tempfile.TemporaryDirectory() as tmp:
        names = member.save(Path(tmp))
        return {n: (Path(tmp) / n).read_bytes() for n in names}, member.state(), history
