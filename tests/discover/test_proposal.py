"""Proposals are optic objects; the code printed from them declares exactly the same variables."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import discover_targets as T  # noqa: E402

import phasm  # noqa: E402
from phasm.bindings import Each, Global  # noqa: E402
from phasm.bindings import Path as PathOptic  # noqa: E402
from phasm.bindings.spec import Spec  # noqa: E402
from phasm.discover import inspect_function, proposed_code, proposed_declarations  # noqa: E402
from phasm.discover.printer import declaration_code  # noqa: E402
from phasm.discover.proposal import propose  # noqa: E402

HITS = [T.Hit(0.0, 1.0), T.Hit(1.0, 3.0), T.Hit(2.0, 5.1)]

CASES = {
    "scalars": (T.pure_scalars, [(2.0, 3.0)]),
    "global constant": (T.reads_global, [(2.0,)]),
    "nested global": (T.nested_global_attr, [(2.0,)]),
    "global written": (T.writes_global, [(4.0,)]),
    "global object fields": (T.counts_calls, [(2.0,)]),
    "in place": (T.mutates_inplace, [(np.ones(4), 3.0)]),
    "attributes": (T.kick, [(T.Particle(1.0, 2.0), 0.1)]),
    "through a helper": (T.via_helper, [(T.State(0.0, np.ones(3)), 0.1)]),
    "getter and setter": (T.deposit, [(T.Primary(2.0), T.Step())]),
    "dict item": (T.dict_config, [({"dt": 0.5, "unused": 3}, 2.0)]),
    "ragged input": (T.fit_line, [(list(HITS),), ([T.Hit(0, 1), T.Hit(2, 2)],)]),
    "object created on an argument": (T.attach_fit, [(T.Track(list(HITS)),)]),
    "returned object": (T.fit_object, [(list(HITS),)]),
    "returned list of objects": (T.find_clusters, [(np.array([0.1, 2.0, 3.0]), 1.0),
                                                   (np.array([5.0, 0.0, 0.2, 4.0, 6.0]), 1.0)]),
    "ragged inout": (T.mark_hits, [(list(HITS), 0.5)]),
}


def inspect_case(name):
    fn, examples = CASES[name]
    return inspect_function(fn, [(ex, {}) for ex in examples])


def evaluate(code, module):
    """Test-side check only: evaluate printed declaration code where the user would paste it."""
    return eval(code, {**vars(sys.modules[module]), "phasm": phasm})  # noqa: S307 - our own printed code


@pytest.mark.parametrize("name", sorted(CASES))
def test_printed_code_declares_the_proposed_objects(name):
    ins = inspect_case(name)
    proposal = propose(ins)
    for section in ("inputs", "outputs"):
        decls = getattr(proposal, section)
        printed = {d.name: evaluate(declaration_code(d.variable, section), ins.module) for d in decls}
        objects = {d.name: d.variable for d in decls}
        if section == "inputs":  # a spec needs an output: borrow the proposal's
            _, outs = proposal.declarations()
            a = Spec.from_declarations("f", printed, outs or {"y": phasm.Scalar()})
            b = Spec.from_declarations("f", objects, outs or {"y": phasm.Scalar()})
        else:
            a = Spec.from_declarations("f", {"x": phasm.Scalar()}, printed)
            b = Spec.from_declarations("f", {"x": phasm.Scalar()}, objects)
        assert a.to_json() == b.to_json(), (printed, objects)  # names, shapes, dtypes, directions and optics
    code = proposed_code(ins)
    ast.parse(code + "\ndef f(): pass\n")  # the whole decorator is valid Python


def test_proposals_are_optic_objects():
    inputs, outputs = proposed_declarations(inspect_case("ragged input"))
    (hits,) = inputs.values()
    assert isinstance(hits.optic, Each) and hits.optic.fields == ("x", "y") and hits.ragged
    inputs, outputs = proposed_declarations(inspect_case("global object fields"))
    assert sorted(outputs) == ["calls", "result", "total"] and outputs["result"].optic is None  # the return value
    assert all(isinstance(outputs[n].optic, PathOptic) and isinstance(outputs[n].optic.root, Global)
               for n in ("calls", "total"))
    inputs, outputs = proposed_declarations(inspect_case("returned object"))
    assert outputs["slope"].optic.classes[0] is T.Fit  # the class seen in the call, not code
    assert sorted(outputs) == ["intercept", "slope"]


def test_commented_out_constant_is_an_object_too():
    proposal = propose(inspect_case("global constant"))
    (gain,) = [d for d in proposal.inputs if not d.enabled]
    assert gain.name == "GAIN" and repr(gain.variable.optic) == "global:discover_targets.GAIN"
    assert "GAIN" not in proposal.declarations()[0]


def test_no_eval_in_discovery():
    src = Path(phasm.__file__).parent / "discover"
    calls = []
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                calls.append(f"{path.name}:{node.lineno}")
    # The one allowed: the user's own --example expression, evaluated like running their code.
    assert calls == [f"examples.py:{_line_of('examples.py', 'value = eval(expr')}"], calls


def _line_of(name, text):
    lines = (Path(phasm.__file__).parent / "discover" / name).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)
