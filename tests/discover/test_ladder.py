"""The ladder of targets: each function's interface is discovered exactly."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import discover_targets as T  # noqa: E402

from phasm.discover import inspect_function, proposed_code, proposed_spec  # noqa: E402
from phasm.errors import TargetError  # noqa: E402

G = "global:discover_targets."


def run(fn, *examples, **kw):
    return inspect_function(fn, [(ex, {}) if isinstance(ex, tuple) else ex for ex in examples], **kw)


def test_pure_function_of_scalars():
    ins = run(T.pure_scalars, (2.0, 3.0))
    assert ins.kinds() == {"x": "in", "y": "in", "return": "out"}
    assert ins.flags == []
    assert ins.by_name("return").shape == () and ins.by_name("return").dtype == "float64"
    spec = proposed_spec(ins)
    assert [(v.name, v.direction, v.shape) for v in spec.variables] == [
        ("x", "in", ()), ("y", "in", ()), ("result", "out", ())]


def test_reads_a_global():
    ins = run(T.reads_global, (2.0,))
    assert ins.kinds() == {"x": "in", G + "GAIN": "in", "return": "out"}
    assert ins.by_name(G + "GAIN").source == "both"
    # A read-only module global is offered, commented out, in the proposal.
    assert '# "GAIN": phasm.glob("discover_targets.GAIN")' in proposed_code(ins)


def test_unused_argument():
    ins = run(T.unused_arg, (2.0, True))
    assert ins.kinds() == {"x": "in", "verbose": "unused", "return": "out"}
    assert "# verbose: unused" in proposed_code(ins)
    assert [v.name for v in proposed_spec(ins).variables] == ["x", "result"]


def test_reads_a_nested_global_attribute():
    ins = run(T.nested_global_attr, (2.0,))
    kinds = ins.kinds()
    assert kinds[G + "CONFIG.grid.dx"] == "in"
    assert kinds[G + "CONFIG.grid.n"] == "unused"
    assert G + "CONFIG.name" not in kinds and G + "CONFIG" not in kinds  # the walk stops at what was used
    assert 'phasm.glob("discover_targets:CONFIG.grid.dx")' in proposed_code(ins)


def test_writes_a_global_and_leaves_it_untouched():
    before = T.LAST
    ins = run(T.writes_global, (4.0,))
    assert ins.kinds() == {"x": "in", G + "LAST": "out"}
    assert T.LAST == before  # inspection works on copies and restores globals
    spec = proposed_spec(ins)
    assert spec["LAST"].direction == "out" and repr(spec["LAST"].optic) == "global:discover_targets.LAST"


def test_returns_a_newly_allocated_array():
    ins = run(T.new_array, (5, 2.0))
    ret = ins.by_name("return")
    assert (ret.kind, ret.shape, ret.dtype) == ("out", (5,), "float64")
    assert "newly allocated" in ret.notes
    assert ins.kinds() == {"n": "in", "scale": "in", "return": "out"}
    assert ins.by_name("n").dtype == "int64"


def test_mutates_an_argument_array_in_place():
    u = np.ones(4)
    ins = run(T.mutates_inplace, (u, 3.0))
    assert ins.kinds() == {"u": "inout", "k": "in"}
    assert np.array_equal(u, np.ones(4))  # the caller's array is not modified by inspection
    spec = proposed_spec(ins)
    assert spec["u"].direction == "inout" and spec["u"].shape == (4,)


def test_write_only_buffer_is_out_not_inout():
    ins = run(T.fills_buffer, (np.ones(3), np.full(3, 7.0)))
    assert ins.kinds() == {"x": "in", "out": "out", "return": "out"}


def test_writes_an_attribute_of_an_object_argument():
    p = T.Particle(1.0, 2.0)
    ins = run(T.kick, (p, 0.1))
    assert ins.kinds() == {"p.ax": "in", "p.e": "out", "p.tag": "unused", "p.vx": "inout", "dt": "in"}
    assert (p.vx, p.e, type(p)) == (1.0, 0.0, T.Particle)  # untouched, class restored
    code = proposed_code(ins)
    assert '"ax": phasm.attr("p.ax")' in code
    assert '"vx": phasm.attr("p.vx", direction=\'inout\')' in code
    spec = proposed_spec(ins)
    assert {v.name: v.direction for v in spec.variables} == {"ax": "in", "dt": "in", "e": "out", "vx": "inout"}


def test_getter_setter_pair_is_proposed_as_a_setter_optic():
    ins = run(T.deposit, (T.Primary(2.0), T.Step()))
    kinds = ins.kinds()
    assert kinds["particle.energy"] == "in" and kinds["step._edep"] == "out"
    assert ins.methods["step"] == ["set_edep"]
    code = proposed_code(ins)
    assert '"edep": phasm.setter("step", get="get_edep", set="set_edep"),' in code
    spec = proposed_spec(ins)
    assert repr(spec["edep"].optic) == "step.get_edep()/set_edep()" and spec["edep"].direction == "out"


def test_helper_in_same_module_does_the_write():
    ins = run(T.via_helper, (T.State(0.0, np.ones(3)), 0.1))
    assert ins.kinds() == {"state.t": "inout", "state.y": "inout", "dt": "in"}
    assert "discover_targets._advance" in ins.calls
    # Static analysis found the write through the call, inside the helper.
    assert any("in discover_targets._advance" in w for w in ins.by_name("state.t").where)
    assert ins.by_name("state.y").shape == (3,)


def test_unseeded_random_is_flagged():
    ins = run(T.uses_random, (1.0,))
    assert "random" in ins.flags and "nondeterministic" in ins.flags
    [flag] = [f for f in ins.flag_details if f.flag == "random"]
    assert flag.what == "random.random" and flag.source == "both"
    code = proposed_code(ins)
    assert "stochastic (two runs on the same input differ)" in code and "    stochastic=True,\n)" in code
    assert "WARNING: random" not in code  # said once, as the suggestion, not as an unsafe effect


def test_seeded_function_gets_no_stochastic_suggestion():
    assert "stochastic" not in proposed_code(run(T.seeded_random, (1.0,)))


def test_seeded_local_generator_is_not_flagged():
    ins = run(T.seeded_random, (1.0,))
    assert ins.flags == []


def test_print_is_flagged(capsys):
    ins = run(T.prints, (1.0,))
    assert ins.flags == ["io"]
    assert ins.flag_details[0].what == "builtins.print" and ins.flag_details[0].source == "both"
    assert ins.kinds() == {"x": "in", "return": "out"}


def test_list_of_objects_of_varying_length_is_ragged():
    ins = run(T.fit_line, ([T.Hit(0.0, 1.0), T.Hit(1.0, 3.0), T.Hit(2.0, 5.1)],), ([T.Hit(0, 1), T.Hit(2, 2)],))
    assert ins.kinds() == {"hits[*].t": "unused", "hits[*].x": "in", "hits[*].y": "in",
                           "return[0]": "out", "return[1]": "out"}
    x = ins.by_name("hits[*].x")
    assert x.ragged and x.shape == (None,) and x.dtype == "float64"  # ints in one example, floats in the other
    assert '"hits": phasm.each("hits", fields=[\'x\', \'y\'])' in proposed_code(ins)
    spec = proposed_spec(ins)
    assert spec["hits"].ragged and spec["hits"].shape == (2,)
    assert [v.name for v in spec.outputs] == ["result0", "result1"]


def test_branch_not_taken_is_a_disagreement():
    ins = run(T.branchy, (1.0, 1))
    hist = ins.by_name(G + "HISTORY")
    assert (hist.kind, hist.source) == ("inout", "static")
    assert len(ins.disagreements) == 1 and "HISTORY" in ins.disagreements[0]
    assert T.HISTORY == []


def test_scratch_global_restored_by_the_function():
    ins = run(T.scratch_global, (1.0,))
    assert ins.kinds() == {"x": "in", G + "WORK": "scratch", "return": "out"}


def test_closure_variable_is_found():
    ins = run(T.scaled_by_3, (2.0,))
    assert ins.kinds() == {"x": "in", "closure:factor": "in", "return": "out"}


def test_io_in_a_branch_not_taken_is_flagged_statically():
    ins = run(T.writes_file, (-1.0,))
    assert ins.flags == ["io"] and ins.flag_details[0].source == "static"
    assert ins.by_name("path").kind == "in" and not ins.by_name("path").passed


def test_dict_items():
    ins = run(T.dict_config, ({"dt": 0.5, "unused": 3}, 2.0))
    assert ins.kinds() == {"cfg['dt']": "in", "x": "in", "return": "out"}
    assert "phasm.attr(\"cfg['dt']\")" in proposed_code(ins)


def test_exception_in_example_is_reported():
    ins = run(T.fit_line, ([T.Hit(1.0, 1.0)],))  # one hit: zero denominator
    assert "raises" in ins.flags and "ZeroDivisionError" in ins.errors[0]


def test_arguments_that_do_not_fit_the_signature():
    with pytest.raises(TargetError, match=r"example arguments do not fit pure_scalars\(x, y\)"):
        run(T.pure_scalars, (1.0,))


HITS = [T.Hit(0.0, 1.0), T.Hit(1.0, 3.0), T.Hit(2.0, 5.1)]


def test_object_created_and_kept_is_out_field_by_field():
    ins = run(T.attach_fit, (T.Track(list(HITS)),))
    kinds = ins.kinds()
    assert kinds["track.fit.slope"] == "out" and kinds["track.fit.intercept"] == "out"
    assert kinds["track.hits[*].x"] == "in" and "track.fit" not in kinds
    assert "in an object created by the call" in ins.by_name("track.fit.slope").notes
    assert ins.classes["track.fit"] == "Fit"


def test_returned_object_is_built_from_its_class():
    ins = run(T.fit_object, (list(HITS),))
    assert {k: v for k, v in ins.kinds().items() if k.startswith("return")} == {
        "return.intercept": "out", "return.slope": "out"}
    assert ins.classes["return"] == "Fit"
    assert '"slope": phasm.attr("return.slope", cls=Fit),' in proposed_code(ins)
    assert [v.name for v in proposed_spec(ins).outputs] == ["slope", "intercept"]


def test_returned_list_of_objects_is_a_ragged_output():
    ins = run(T.find_clusters, (np.array([0.1, 2.0, 3.0]), 1.0), (np.array([5.0, 0.0, 0.2, 4.0, 6.0]), 1.0))
    kinds = ins.kinds()
    assert kinds["return[*].x"] == "out" and kinds["return[*].e"] == "out"
    assert ins.by_name("return[*].e").ragged
    assert ins.by_name("energies").shape == (None,)  # lengths 3 and 5 in the two examples
    assert "\"result\": phasm.each(\"return\", fields=['x', 'e'], cls=Cluster)," in proposed_code(ins)
    spec = proposed_spec(ins)  # evaluates in the function's module, where Cluster is defined
    assert spec["result"].ragged and spec["result"].direction == "out" and spec["result"].shape == (2,)


def test_bound_method_state_and_asarray_alias():
    class Solver:
        def __init__(self):
            self.alpha = 0.5
            self.cache = np.zeros(3)

        def step(self, u):
            self.cache[:] = u * self.alpha
            return self.cache.sum()

    s = Solver()
    ins = run(s.step, (np.ones(3),))
    assert ins.kinds() == {"self.alpha": "in", "self.cache": "out", "u": "in", "return": "out"}
    assert not s.cache.any()

    def via_asarray(out, x):
        a = np.asarray(out)  # a plain view: the write order is not observed, the net change is
        a[:] = x

    assert run(via_asarray, (np.zeros(3), 1.0)).kinds() == {"out": "inout", "x": "in"}


def test_builtin_function_is_refused_with_a_clear_error():
    with pytest.raises(TargetError, match="not a Python function"):
        run(np.sin, (1.0,))


def test_attributes_of_a_global_object_updated_in_place():
    ins = run(T.counts_calls, (2.0,))
    assert ins.kinds() == {"x": "in", G + "STATS.calls": "inout", G + "STATS.total": "inout", "return": "out"}
    assert (T.STATS.calls, T.STATS.total) == (0, 0.0)
    spec = proposed_spec(ins)
    assert repr(spec["calls"].optic) == "global:discover_targets.STATS.calls"
    assert spec["calls"].direction == "inout" and spec["calls"].dtype == np.int64


def test_collection_read_and_written_is_one_inout_each():
    ins = run(T.mark_hits, (list(HITS), 0.5))
    kinds = ins.kinds()
    assert kinds["hits[*].x"] == "in" and kinds["hits[*].used"] == "out" and kinds["cut"] == "in"
    assert "\"hits\": phasm.each(\"hits\", fields=['x', 'used'], direction='inout')," in proposed_code(ins)
    assert proposed_spec(ins)["hits"].direction == "inout"


def test_data_dependent_output_length_is_left_to_the_user():
    ins = run(T.positive_part, (np.array([1.0, -1.0, 2.0]),), (np.array([-1.0, 3.0]),))
    ret = ins.by_name("return")
    assert ret.kind == "out" and ret.shape == (None,) and ret.ragged
    code = proposed_code(ins)
    assert "# return: shape n, not a fixed-shape numeric value: declare the output by hand" in code
    assert proposed_spec(ins) is None  # no output it could declare
