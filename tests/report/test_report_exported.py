"""The report of a model trained elsewhere (``fn.load_exported``): what is recorded, and no invented training."""

from __future__ import annotations

import html
import re

import pytest

import phasm
from phasm.report import build_report

torch = pytest.importorskip("torch")


def visible_text(page: str) -> str:
    page = re.sub(r"<(style|script|svg)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_report_of_an_exported_program_says_where_it_came_from(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.lin(x)

    program = torch.export.export(Net(), (torch.zeros(4, 2),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(program, str(tmp_path / "net.pt2"))

    @phasm.surrogate(inputs={"a": phasm.Scalar(), "b": phasm.Scalar()}, outputs={"y": phasm.Scalar()},
                     name="demo.add_exported")
    def add(a, b):
        return a + b

    add.load_exported(tmp_path / "net.pt2")
    add.save(tmp_path / "model")
    text = visible_text(build_report([tmp_path / "model"], tmp_path / "r.html").read_text())
    assert "trained elsewhere (torch.export program)" in text
    assert "Serving parameters of the torch backend (the model was trained elsewhere" in text
    assert "no loss curve recorded" in text and "closed-form" not in text
    assert "None" not in text
