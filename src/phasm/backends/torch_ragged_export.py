"""Backend ``torch-ragged-export``: a ``torch.export`` program over variable-length inputs, trained elsewhere.

A sequence model over hits (an LSTM or GRU), or any network that reads a list
per call, is exported with ``torch.export`` and served on a spec with ragged
inputs (``phasm.each(..., max_len=M)``).  The program takes one float32
matrix ``(batch, width)`` in phasm's *encoded* layout, the same one the
``torch-sets`` backend trains on (:func:`phasm.bindings.ragged.encode`):

    fixed inputs (spec order) | per ragged input: M elements of k features, flattened, then an M-wide 0/1 mask

with every set padded to the declared ``max_len`` M (elements left-aligned,
zeros after the last), so ``width = n_fixed + sum_sets M * (k + 1)`` is fixed
and the export needs only a dynamic batch axis.  It returns ``(batch,
n_out)``.  Element features and fixed inputs arrive standardised by the
artefact's normalisation (the identity unless ``load_exported`` was given
``x_mean/x_scale``).  Rows may have no elements (all-zero mask): a program
must not index past its input then.

The backend only serves: ``fit`` refuses (train the network yourself and
export it); saving writes the program (``model.pt2``), loading goes through
:func:`phasm.backends.torch_export.load_pt2`, which refuses archives that
would unpickle anything.

Example
-------
>>> fn.load_exported("lstm.pt2")      # spec with phasm.each("event.hits", fields=[...], max_len=10)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from phasm.backends.base import Backend, BackendError, FitHistory
from phasm.backends.torch_export import load_pt2
from phasm.backends.torch_train import pick_device
from phasm.bindings.ragged import RaggedInputs, encode

EXPORT_FILE = "model.pt2"
PREDICT_CHUNK = 8192


def encoded_width(n_fixed: int, set_dims: Sequence[int], max_len: int) -> int:
    """Columns of the encoded layout: ``n_fixed + sum(max_len * (k + 1))``.

    >>> encoded_width(1, [3], 10)
    41
    """
    return int(n_fixed) + sum(int(max_len) * (int(k) + 1) for k in set_dims)


class TorchRaggedExportBackend(Backend):
    """Serves a ``torch.export`` program over ragged inputs padded to ``max_len`` (see the module doc).

    Parameters
    ----------
    max_len: elements per set the program was exported for.
    device: ``"cpu"``, ``"cuda"``...; default ``cuda`` when available.

    Learned (from the program and the spec): ``n_fixed_``, ``set_names_``, ``set_dims_``, ``n_out_``.
    """

    name = "torch-ragged-export"
    requires = ("torch",)
    extra = "torch"
    accepts_ragged = True

    def __init__(self, max_len: int, device: str | None = None) -> None:
        if not int(max_len) >= 1:
            raise BackendError(f"torch-ragged-export: max_len must be >= 1, got {max_len}")
        super().__init__(max_len=int(max_len), device=device)
        # learned state, set by from_program_file/load (absent until then, as sklearn does)
        self.n_fixed_: int
        self.set_names_: list[str]
        self.set_dims_: list[int]
        self.n_out_: int
        self.program_: torch.export.ExportedProgram
        self.module_: torch.nn.Module
        self.device_: torch.device

    @classmethod
    def library_version(cls) -> str:
        return torch.__version__

    def fit(self, data: Any, *, verbose: bool = False) -> FitHistory:
        raise BackendError("torch-ragged-export serves a program trained elsewhere; train your network, export it "
                           "with torch.export and attach it with fn.load_exported(path)")

    # -- construction -------------------------------------------------------

    @classmethod
    def from_program_file(cls, path: str | os.PathLike[str], *, n_fixed: int, set_names: Sequence[str], set_dims: Sequence[int],
                          n_out: int, max_len: int, device: str | None = None) -> "TorchRaggedExportBackend":
        """The backend around the ``.pt2`` at ``path``, checked to map the encoded width to ``n_out``."""
        self = cls(max_len=max_len, device=device)
        self.n_fixed_, self.set_names_ = int(n_fixed), [str(s) for s in set_names]
        self.set_dims_, self.n_out_ = [int(k) for k in set_dims], int(n_out)
        self._attach(load_pt2(path), path)
        return self

    def _attach(self, prog: Any, where: Any) -> None:
        width = encoded_width(self.n_fixed_, self.set_dims_, self.params["max_len"])
        user_inputs = list(prog.graph_signature.user_inputs)
        if len(user_inputs) != 1:
            raise BackendError(f"{where}: the exported model must take one input tensor (batch, {width}); "
                               f"it takes {len(user_inputs)}: {user_inputs}")
        module = prog.module()
        out = self._dry_run(module, width, where)
        if out.ndim != 2 or out.shape[1] != self.n_out_:
            raise BackendError(f"{where}: the exported model returns {tuple(out.shape)} for a batch of 2; "
                               f"expected (2, {self.n_out_}) (the spec's output features)")
        dev = pick_device(self.params["device"])
        self.program_, self.module_, self.device_ = prog, module.to(dev), dev

    def _dry_run(self, module: Any, width: int, where: Any) -> torch.Tensor:
        """Run two rows (one empty, one full) of the encoded width; a wrong width or batch axis fails here."""
        x = torch.zeros(2, width)
        col = self.n_fixed_
        L = self.params["max_len"]
        for k in self.set_dims_:
            x[1, col + L * k : col + L * (k + 1)] = 1.0  # the second row's mask: every slot filled
            col += L * (k + 1)
        try:
            with torch.inference_mode():
                out = module(x)
        except Exception as exc:
            raise BackendError(
                f"{where}: the exported model does not run on a (2, {width}) encoded batch "
                f"({self.n_fixed_} fixed features, sets {dict(zip(self.set_names_, self.set_dims_))} padded to "
                f"max_len={L}); export it for that width with a dynamic batch axis: {exc}") from None
        if not isinstance(out, torch.Tensor):
            raise BackendError(f"{where}: the exported model must return one (batch, outputs) tensor; got {type(out).__name__}")
        return out

    # -- inference ----------------------------------------------------------

    def predict(self, X: Any) -> np.ndarray:
        """Standardised :class:`~phasm.bindings.ragged.RaggedInputs` (or an encoded matrix) -> ``(n, n_out)``."""
        module = getattr(self, "module_", None)
        if module is None:
            raise BackendError("torch-ragged-export: predict called before a program was attached")
        L = self.params["max_len"]
        if isinstance(X, RaggedInputs):
            if list(X.sets) != self.set_names_ or X.fixed.shape[1] != self.n_fixed_:
                raise BackendError(f"torch-ragged-export: inputs have sets {list(X.sets)} and {X.fixed.shape[1]} fixed "
                                   f"features; the program takes sets {self.set_names_} and {self.n_fixed_} fixed features")
            longest = max((int(r.lengths.max()) for r in X.sets.values() if len(r)), default=0)
            if longest > L:
                raise BackendError(f"torch-ragged-export: a call has {longest} elements in one set; the program was "
                                   f"exported for at most max_len={L}")
            n = len(X)
            out = np.empty((n, self.n_out_), np.float32)
            for s in range(0, n, PREDICT_CHUNK):
                out[s : s + PREDICT_CHUNK] = self._run(encode(X.take(np.arange(s, min(n, s + PREDICT_CHUNK))), length=L))
            return out
        return self._run(np.asarray(X, np.float32))

    def _run(self, x: np.ndarray) -> np.ndarray:
        width = encoded_width(self.n_fixed_, self.set_dims_, self.params["max_len"])
        if x.ndim != 2 or x.shape[1] != width:
            raise BackendError(f"torch-ragged-export: encoded rows must be (n, {width}), got {x.shape}")
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
            if self.device_.type == "cpu":
                return self.module_(t).numpy()
            return self.module_(t.to(self.device_)).cpu().numpy()

    # -- persistence ----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"n_fixed": self.n_fixed_, "set_names": self.set_names_, "set_dims": self.set_dims_, "n_out": self.n_out_}

    def save(self, directory: Path) -> list[str]:
        torch.export.save(self.program_, str(Path(directory) / EXPORT_FILE))
        return [EXPORT_FILE]

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], state: dict[str, Any]) -> "TorchRaggedExportBackend":
        try:
            self = cls(**params)
            self.n_fixed_, self.set_names_ = int(state["n_fixed"]), [str(s) for s in state["set_names"]]
            self.set_dims_, self.n_out_ = [int(k) for k in state["set_dims"]], int(state["n_out"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"torch-ragged-export: bad artefact state or parameters: {exc}") from None
        if len(self.set_names_) != len(self.set_dims_) or not self.set_dims_:
            raise BackendError(f"torch-ragged-export: artefact state names sets {self.set_names_} with widths {self.set_dims_}")
        path = Path(directory) / EXPORT_FILE
        self._attach(load_pt2(path), path)
        return self
