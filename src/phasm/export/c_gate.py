"""C source of a trust gate: the same checks, in the same precision, as phasm's Python gate.

Generated functions (``p`` the prefix), each used by ``<p>_predict``:

* ``p_impl_in_range(x)``: every float32 model input inside the captured range widened by the
  calibrated margin (bounds rounded outwards to float32, as Python compares float32 rows);
* ``p_impl_neighbours(x, &dist, &resid)`` (kNN domain): exact k nearest reference rows through a
  k-d tree built at export time; the mean distance, and the mean of the model's errors at those
  rows (the residual score), or ``p_impl_distance(x)`` (Mahalanobis domain);
* ``p_impl_spread(r, y)`` (ensembles): the members' standard deviation over the error the
  tolerance allows, worst output variable;
* ``p_impl_threshold(x, dist, score)``: the certified threshold of the region the call falls in
  (one region today; see :class:`~phasm.export.gateplan.Regions`).
"""

from __future__ import annotations

import math

import numpy as np

from phasm.export.cformat import c_double, c_float, comment_text, double_array, float_array, int_array
from phasm.export.gateplan import GatePlan


class GateEmitter:
    """Emits the tables and functions of a :class:`GatePlan` under the prefix ``p``."""

    def __init__(self, plan: GatePlan, p: str, n_in: int, n_out: int, n_members: int) -> None:
        self.plan, self.p = plan, p
        self.n_in, self.n_out, self.n_members = n_in, n_out, n_members
        self.tables: list[str] = []
        self.functions: list[str] = []

    def emit(self) -> tuple[str, str]:
        g = self.plan
        if g.in_range:
            self._range()
        if g.domain:
            if g.metric == "knn":
                self._knn()
            else:
                self._mahalanobis()
        if g.needs_members:
            self._spread()
        if g.kind == "conformal":
            self._threshold()
        return "".join(self.tables), "\n".join(self.functions)

    # -- domain -------------------------------------------------------------

    def _range(self) -> None:
        p, g = self.p, self.plan
        margin = f", widened by the calibrated margin of {g.margin:.4g} widths" if g.margin is not None else ""
        self.tables.append(float_array(f"{p}_impl_low", g.low, f"gate: the captured input range{margin}; float32, rounded outwards", "bound"))  # type: ignore[arg-type]
        self.tables.append(float_array(f"{p}_impl_high", g.high, what="bound"))  # type: ignore[arg-type]
        self.functions.append(
            f"/* 1 when every model input lies in the captured (widened) range */\n"
            f"static inline int {p}_impl_in_range(const float *x)\n{{\n"
            f"    int i, ok = 1;\n"
            f"    for (i = 0; i < {self.n_in}; ++i) ok &= (x[i] >= {p}_impl_low[i]) & (x[i] <= {p}_impl_high[i]);\n"
            f"    return ok;\n}}\n")

    def _knn(self) -> None:
        p, g, n = self.p, self.plan, self.n_in
        t = g.tree
        assert t is not None and g.mean is not None and g.scale is not None
        k, L = g.k, t.leaf_size
        self.tables.append(double_array(f"{p}_impl_d_mean", g.mean, "gate: standardisation of the distance, (x - mean) / scale in float64"))
        self.tables.append(double_array(f"{p}_impl_d_scale", g.scale))
        self.tables.append(int_array(f"{p}_impl_tree_dim", t.dim, "k-d tree over the reference rows, nodes in preorder: split dimension (-1: leaf)"))
        self.tables.append(float_array(f"{p}_impl_tree_split", t.split, "split value", "split"))
        self.tables.append(int_array(f"{p}_impl_tree_right", t.right, "right child (the left one is the next node), or the leaf's number"))
        self.tables.append(int_array(f"{p}_impl_tree_count", t.count, "reference rows in each leaf"))
        self.tables.append(float_array(f"{p}_impl_tree_leaf", t.leaf,
                                       f"leaves: {int(t.count.sum())} reference rows (standardised), leaf[l][dim][{L}], zero padded",
                                       "reference"))
        resid = g.ref_error is not None
        if resid:
            self.tables.append(float_array(f"{p}_impl_tree_error", g.ref_error,  # type: ignore[arg-type]
                                           "residual score: the model's error at each reference row (leaf slot), in tolerance units", "error"))
        rn = math.sqrt(n)
        depth = t.depth + 1
        if n <= 16:  # one pass over the leaf's points, every dimension in the body: d2 stays in registers
            terms = " ".join(f"t = s->zf[{i}] - c[{L * i} + q]; {'e =' if i == 0 else 'e +='} t * t;" for i in range(n))
            leaf_loop = f"            for (q = 0; q < {L}; ++q) {{ float t, e; {terms} d2[q] = e; }}\n"
        else:
            leaf_loop = (f"            for (q = 0; q < {L}; ++q) d2[q] = 0.0f;\n"
                         f"            for (i = 0; i < {n}; ++i) {{\n"
                         f"                const float zi = s->zf[i];\n"
                         f"                for (q = 0; q < {L}; ++q) {{ const float t = zi - c[{L} * i + q]; d2[q] += t * t; }}\n"
                         f"            }}\n")
        self.functions.append(
            f"/* State of one nearest-neighbour search: the query (float64 and float32), the {k} best squared\n"
            f"   distances and their leaf slots, and lim: a float32 bound on the float32 distance of any\n"
            f"   point closer than best[{k - 1}]. */\n"
            f"struct {p}_impl_knn {{\n"
            f"    double z[{n}], best[{k}], zmax;\n"
            f"    float zf[{n}], lim;\n"
            f"    int slot[{k}];\n"
            f"}};\n\n"
            f"/* lim = best + a bound on the rounding error of a float32 distance near it (query rounded to\n"
            f"   float32, then {n} float32 differences, squares and sums; sqrt(b) <= (b + 1) / 2 keeps it\n"
            f"   free of square roots), so that the float32 pass never drops a point whose float64 distance\n"
            f"   beats the {k}-th best: the neighbours found are the float64 ones. */\n"
            f"static inline void {p}_impl_knn_limit(struct {p}_impl_knn *s)\n{{\n"
            f"    const double b = s->best[{k - 1}], u = 5.9604644775390625e-08, zm = s->zmax;\n"
            f"    if (!(b < 1e30)) {{ s->lim = HUGE_VALF; return; }}\n"
            f"    s->lim = (float)((b + 4.0 * u * ({n + 1 + rn!r} * b + {rn / 2!r} * zm * (b + 1.0) + {2 * n}.0 * u * (zm * zm + b))) * 1.000001);\n"
            f"}}\n\n"
            f"/* The exact {k} nearest reference rows: descend to the query's leaf, pushing each far child\n"
            f"   with the squared distance to its splitting plane; a pushed branch is skipped when that\n"
            f"   bound is no better than the {k}-th best so far.  A leaf's distances are computed in float32\n"
            f"   (one vectorised pass); the few under lim again in float64. */\n"
            f"static inline void {p}_impl_search(struct {p}_impl_knn *s)\n{{\n"
            f"    int node[{depth}], sp = 1;\n"
            f"    double bound[{depth}];\n"
            f"    node[0] = 0;\n"
            f"    bound[0] = 0.0;\n"
            f"    while (sp > 0) {{\n"
            f"        int at;\n"
            f"        --sp;\n"
            f"        if (!(bound[sp] < s->best[{k - 1}])) continue;\n"
            f"        at = node[sp];\n"
            f"        while ({p}_impl_tree_dim[at] >= 0) {{\n"
            f"            const double diff = s->z[{p}_impl_tree_dim[at]] - (double){p}_impl_tree_split[at];\n"
            f"            const int right = {p}_impl_tree_right[at];\n"
            f"            if (diff < 0.0) {{ node[sp] = right; at = at + 1; }} else {{ node[sp] = at + 1; at = right; }}\n"
            f"            bound[sp] = diff * diff;\n"
            f"            sp += bound[sp] < s->best[{k - 1}];\n"
            f"        }}\n"
            f"        {{\n"
            f"            const int leaf = {p}_impl_tree_right[at];\n"
            f"            const float *c = {p}_impl_tree_leaf + {n * L} * leaf;\n"
            f"            const float lim = s->lim;\n"
            f"            float d2[{L}];\n"
            f"            int i, q, j, hits = 0;\n"
            + leaf_loop
            + f"            for (q = 0; q < {L}; ++q) hits += d2[q] <= lim;\n"
            f"            for (q = 0; hits && q < {p}_impl_tree_count[leaf]; ++q) {{\n"
            f"                double e = 0.0;\n"
            f"                if (!(d2[q] <= s->lim)) continue;\n"
            f"                for (i = 0; i < {n}; ++i) {{ const double t = s->z[i] - (double)c[{L} * i + q]; e += t * t; }}\n"
            f"                if (!(e < s->best[{k - 1}])) continue;\n"
            f"                j = {k - 1};\n"
            f"                while (j > 0 && s->best[j - 1] > e) {{ s->best[j] = s->best[j - 1]; s->slot[j] = s->slot[j - 1]; --j; }}\n"
            f"                s->best[j] = e;\n"
            f"                s->slot[j] = {L} * leaf + q;\n"
            f"                {p}_impl_knn_limit(s);\n"
            f"            }}\n"
            f"        }}\n"
            f"    }}\n}}\n")
        sum_err = (f"    e = 0.0f;\n    for (j = 0; j < {k}; ++j) e += {p}_impl_tree_error[s.slot[j]];\n"
                   f"    *resid = (double)(e / {c_float(k)});\n") if resid else "    *resid = 0.0;\n"
        self.functions.append(
            f"/* The domain distance: mean distance from x (standardised) to its {k} nearest reference rows;\n"
            f"   *resid: the mean of the model's errors at those rows (the residual score). */\n"
            f"static inline void {p}_impl_neighbours(const float *x, double *dist, double *resid)\n{{\n"
            f"    struct {p}_impl_knn s;\n"
            f"    double sum;\n"
            f"    int i, j;\n"
            + ("    float e;\n" if resid else "")
            + f"    s.zmax = 0.0;\n"
            f"    for (i = 0; i < {n}; ++i) {{\n"
            f"        s.z[i] = ((double)x[i] - {p}_impl_d_mean[i]) / {p}_impl_d_scale[i];\n"
            f"        s.zf[i] = (float)s.z[i];\n"
            f"        if (fabs(s.z[i]) > s.zmax) s.zmax = fabs(s.z[i]);\n"
            f"    }}\n"
            f"    for (j = 0; j < {k}; ++j) {{ s.best[j] = HUGE_VAL; s.slot[j] = 0; }}\n"
            f"    s.lim = HUGE_VALF;\n"
            f"    {p}_impl_search(&s);\n"
            f"    sum = 0.0;\n"
            f"    for (j = 0; j < {k}; ++j) sum += sqrt(s.best[j]);\n"
            f"    *dist = sum / {k}.0;\n"
            + sum_err + "}\n")

    def _mahalanobis(self) -> None:
        p, g, n = self.p, self.plan, self.n_in
        P = g.precision
        assert P is not None
        self.tables.append(float_array(f"{p}_impl_d_mean", g.mean32, "gate: standardisation of the distance, float32 as phasm computes it"))  # type: ignore[arg-type]
        self.tables.append(float_array(f"{p}_impl_d_inv_scale", g.inv_scale32))  # type: ignore[arg-type]
        if P.ndim == 1:
            self.tables.append(float_array(f"{p}_impl_precision", P, "diagonal precision", "precision"))
            q = f"    for (i = 0; i < {n}; ++i) q += (double)z[i] * (double)z[i] * (double){p}_impl_precision[i];\n"
            decl = "    int i;\n"
        else:
            self.tables.append(float_array(f"{p}_impl_precision", P, f"precision matrix ({n} x {n})", "precision"))
            q = (f"    for (i = 0; i < {n}; ++i) {{\n"
                 f"        const float *row = {p}_impl_precision + {n} * i;\n"
                 f"        double t = 0.0;\n"
                 f"        for (j = 0; j < {n}; ++j) t += (double)row[j] * (double)z[j];\n"
                 f"        q += (double)z[i] * t;\n    }}\n")
            decl = "    int i, j;\n"
        self.functions.append(
            f"/* The domain distance: Mahalanobis distance of x to the training mean (standardised units) */\n"
            f"static inline double {p}_impl_distance(const float *x)\n{{\n"
            f"    float z[{n}];\n    double q = 0.0;\n" + decl
            + f"    for (i = 0; i < {n}; ++i) z[i] = (x[i] - {p}_impl_d_mean[i]) * {p}_impl_d_inv_scale[i];\n"
            + q + "    return sqrt(q > 0.0 ? q : 0.0);\n}\n")

    # -- scores -------------------------------------------------------------

    def _spread(self) -> None:
        p, g, k, n_out = self.p, self.plan, self.n_members, self.n_out
        parts = []
        for tol in g.tolerances:
            lo, hi = tol.offset, tol.offset + tol.size
            rel = tol.rel is not None
            lines = [f"    {{   /* output {comment_text(tol.name)}: features [{lo}, {hi}) */",
                     "        double e2 = 0.0, y2 = 0.0, en, yn, allowed, ratio;" if rel else
                     "        double e2 = 0.0, en, allowed, ratio;",
                     f"        for (j = {lo}; j < {hi}; ++j) {{",
                     "            float mean = r[j], ss = 0.0f, sd;",
                     f"            for (m = 1; m < {k}; ++m) mean += r[m * {n_out} + j];",
                     f"            mean = mean / {c_float(k)};",
                     f"            for (m = 0; m < {k}; ++m) {{ const float d = r[m * {n_out} + j] - mean; ss += d * d; }}",
                     f"            sd = sqrtf(ss / {c_float(k - 1)});",
                     "            e2 += (double)sd * (double)sd;"]
            if rel:
                lines.append("            y2 += (double)y[j] * (double)y[j];")
            lines += ["        }", "        en = sqrt(e2);"]
            if rel:
                lines.append("        yn = sqrt(y2);")
            lines.append("        allowed = 0.0;")
            if tol.rel is not None:
                lines.append(f"        if ({c_double(tol.rel)} * yn > allowed) allowed = {c_double(tol.rel)} * yn;")
            if tol.abs is not None:
                lines.append(f"        if ({c_double(tol.abs)} > allowed) allowed = {c_double(tol.abs)};")
            lines += ["        ratio = en == 0.0 ? 0.0 : (allowed > 0.0 ? en / allowed : HUGE_VAL);",
                      "        if (!(ratio <= worst)) worst = ratio;", "    }"]
            parts.append("\n".join(lines) + "\n")
        self.functions.append(
            f"/* Spread score: per output variable, the members' standard deviation (L2 over its features)\n"
            f"   over the error the tolerance allows, max(rel * ||y||, abs); the worst variable. */\n"
            f"static inline double {p}_impl_spread(const float *r, const float *y)\n{{\n"
            f"    double worst = 0.0;\n    int j, m;\n    (void)y;\n" + "".join(parts) + "    return worst;\n}\n")

    def _threshold(self) -> None:
        p, g = self.p, self.plan
        reg = g.regions
        if reg is None:
            self.functions.append(
                f"/* The certified threshold on the score (one region: the same for every call) */\n"
                f"static inline double {p}_impl_threshold(const float *x, double dist, double score)\n{{\n"
                f"    (void)x; (void)dist; (void)score;\n"
                f"    return {c_double(g.threshold)};\n}}\n")
            return
        if reg.source == "bands":
            self._bands()
            return
        value = {"input": f"(double)x[{reg.index}]", "distance": "dist", "score": "score"}[reg.source]
        self.tables.append(double_array(f"{p}_impl_region_edges", reg.edges if len(reg.edges) else np.zeros(1),
                                        f"gate regions: bins of the {reg.source}" + (f" (input {reg.index})" if reg.source == "input" else "")))
        self.tables.append(double_array(f"{p}_impl_region_threshold", reg.thresholds, "certified threshold per region"))
        self.functions.append(
            f"/* The certified threshold of the region the call falls in: region = number of edges <= value */\n"
            f"static inline double {p}_impl_threshold(const float *x, double dist, double score)\n{{\n"
            f"    const double v = {value};\n"
            f"    int lo = 0, hi = {len(reg.edges)};\n"
            f"    (void)x; (void)dist; (void)score;\n"
            f"    while (lo < hi) {{\n"
            f"        const int mid = (lo + hi) / 2;\n"
            f"        if ({p}_impl_region_edges[mid] <= v) lo = mid + 1; else hi = mid;\n"
            f"    }}\n"
            f"    return {p}_impl_region_threshold[lo];\n}}\n")

    def _bands(self) -> None:
        """Per-region thresholds of a gate certified per region (gate record format 2): the band of a
        call from nested boxes over some inputs (its position within their ranges) and/or cuts of the
        domain distance, as :meth:`phasm.gate.RegionPartition.bands` computes it."""
        p, reg = self.p, self.plan.regions
        assert reg is not None
        B = len(reg.thresholds) - 1
        self.tables.append(double_array(f"{p}_impl_region_threshold", reg.thresholds,
                                        "certified threshold per region band, interior first (-HUGE_VAL: falls back)"))
        body = [f"    int band = 0;\n"]
        if reg.edge_low is not None:
            F = len(reg.edge_features)  # type: ignore[arg-type]
            self.tables.append(int_array(f"{p}_impl_edge_feature", np.asarray(reg.edge_features),
                                         "gate regions: the inputs whose position counts"))
            self.tables.append(double_array(f"{p}_impl_edge_low", reg.edge_low.reshape(-1),
                                            f"gate regions: {B} nested boxes ({B} x {F}), outermost first"))
            self.tables.append(double_array(f"{p}_impl_edge_high", reg.edge_high.reshape(-1)))  # type: ignore[union-attr]
            body.append(
                f"    {{  /* edge band: {B} minus the boxes the call lies in */\n"
                f"        int k, i, inside = 0;\n"
                f"        for (k = 0; k < {B}; ++k) {{\n"
                f"            int in = 1;\n"
                f"            for (i = 0; i < {F}; ++i) {{\n"
                f"                const double v = (double)x[{p}_impl_edge_feature[i]];\n"
                f"                in &= (v >= {p}_impl_edge_low[k * {F} + i]) & (v <= {p}_impl_edge_high[k * {F} + i]);\n"
                f"            }}\n"
                f"            inside += in;\n"
                f"        }}\n"
                f"        band = {B} - inside;\n"
                f"    }}\n")
        if reg.distance_cuts is not None:
            self.tables.append(double_array(f"{p}_impl_distance_cut", reg.distance_cuts,
                                            "gate regions: cuts of the domain distance, outermost first"))
            body.append(
                f"    {{  /* distance band: the cuts the distance exceeds */\n"
                f"        int k, far = 0;\n"
                f"        for (k = 0; k < {B}; ++k) far += !(dist <= {p}_impl_distance_cut[k]);\n"
                f"        if (far > band) band = far;\n"
                f"    }}\n")
        self.functions.append(
            f"/* The certified threshold of the region band the call falls in (0: interior .. {B}: outermost) */\n"
            f"static inline double {p}_impl_threshold(const float *x, double dist, double score)\n{{\n"
            f"    (void)x; (void)dist; (void)score;\n" + "".join(body)
            + f"    return {p}_impl_region_threshold[band];\n}}\n")
