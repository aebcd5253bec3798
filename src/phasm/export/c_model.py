"""C source of a model: weights as static tables and one function per member, no heap, no libraries.

Loops have literal trip counts and hidden widths are padded to multiples of 8 with zero weights
(exact: a padded unit contributes ``0 * w``), so compilers vectorise them at ``-O2``.  Dense layers
with many outputs run as ``h += x_i * W[i, :]`` (vectorised over outputs); layers with a few
outputs (the last one, typically) as dot products with 8 partial sums.

The exponential behind ``silu``/``tanh`` is generated too (Cody-Waite range reduction, a degree-6
polynomial, ~1 ulp in float32): libm's ``expf`` is not vectorised and would cost most of a call.
"""

from __future__ import annotations

import numpy as np

from phasm.export.cformat import c_float, double_array, float_array, int_array
from phasm.export.plan import Dense, MLPMember, ModelPlan, RidgeMember

PAD = 8
DOT_BELOW = 8  # layers with fewer outputs (and a padded input) run as dot products


def pad8(n: int) -> int:
    return (n + PAD - 1) // PAD * PAD


EXP_CODE = """\
/* exp(x) in float32 for the activations: Cody-Waite reduction and a degree-6 polynomial (Cephes'
   expf, < 1 ulp), |x| clamped to 87 on the bits (no float branch), so compilers vectorise the
   loops that call it; libm's expf is not vectorised and would cost most of a call. */
static inline float {p}_impl_exp(float x)
{{
    float r, q, scale;
    int32_t k, bits;
    uint32_t u, mag;
    memcpy(&u, &x, sizeof u);
    mag = u & 0x7fffffffu;
    mag = mag < 0x42ae0000u ? mag : 0x42ae0000u;
    u = (u & 0x80000000u) | mag;
    memcpy(&x, &u, sizeof x);
    k = (int32_t)(x * 1.44269504088896341f + 128.5f) - 128;
    r = x - (float)k * 0.693359375f;
    r = r + (float)k * 2.12194440e-4f;
    q = ((((( 1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
          + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) + r + 1.0f;
    bits = (k + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return q * scale;
}}
"""


def activation_loop(p: str, act: str, buf: str, n: int) -> str:
    """In-place activation over ``buf[0..n)``, as torch computes it (default settings)."""
    body = {
        "relu": f"{buf}[j] = {buf}[j] > 0.0f ? {buf}[j] : 0.0f;",
        "silu": f"{buf}[j] = {buf}[j] / (1.0f + {p}_impl_exp(-{buf}[j]));",
        # tanh(v) = sign(v) (1 - e) / (1 + e), e = exp(-2|v|)
        "tanh": (f"{{ const float e = {p}_impl_exp(-2.0f * fabsf({buf}[j]));"
                 f" {buf}[j] = copysignf((1.0f - e) / (1.0f + e), {buf}[j]); }}"),
        "gelu": f"{buf}[j] = 0.5f * {buf}[j] * (1.0f + erff({buf}[j] * 0.707106781186547524f));",
        "elu": f"{buf}[j] = {buf}[j] > 0.0f ? {buf}[j] : expm1f({buf}[j]);",
        "softplus": f"{buf}[j] = {buf}[j] > 20.0f ? {buf}[j] : log1pf(expf({buf}[j]));",
    }[act]
    return f"    for (j = 0; j < {n}; ++j) {body}\n"


class ModelEmitter:
    """Emits the tables and functions of a :class:`ModelPlan` under the prefix ``p``."""

    def __init__(self, plan: ModelPlan, p: str) -> None:
        self.plan, self.p = plan, p
        self.tables: list[str] = []
        self.functions: list[str] = []

    @property
    def uses_exp(self) -> bool:
        return any(isinstance(m, MLPMember) and any(d.activation in ("silu", "tanh") for d in m.layers)
                   for m in self.plan.members)

    def emit(self) -> tuple[str, str]:
        """``(tables, functions)``: the weights, then member functions and ``<p>_impl_model``."""
        p, plan = self.p, self.plan
        if not plan.folded:
            self.tables.append(float_array(f"{p}_impl_x_mean", plan.x_mean, "input standardisation: (x - mean) / scale, float32 as phasm computes it"))
            self.tables.append(float_array(f"{p}_impl_x_scale", plan.x_scale))
            self.tables.append(float_array(f"{p}_impl_y_mean", plan.y_mean, "output standardisation: y * scale + mean"))
            self.tables.append(float_array(f"{p}_impl_y_scale", plan.y_scale))
        for i, member in enumerate(plan.members):
            if isinstance(member, MLPMember):
                self._mlp(i, member)
            else:
                self._ridge(i, member)
        self.functions.append(self._members_function())
        self.functions.append(self._model_function())
        return "".join(self.tables), "\n".join(self.functions)

    # -- members ------------------------------------------------------------

    def _mlp(self, i: int, m: MLPMember) -> None:
        p = self.p
        name = f"{p}_impl_m{i}"
        n_in = self.plan.n_in
        src, n_src = "x", n_in
        lines = [f"/* member {i}: {self.plan.description if len(self.plan.members) == 1 else 'torch MLP'} */\n",
                 f"static inline void {name}(const float *x, float *y)\n{{\n"]
        decl = ["    int i, j;\n"]
        code: list[str] = []
        if m.select is not None:
            self.tables.append(int_array(f"{name}_select", m.select, f"member {i}: the input columns it reads"))
            decl.append(f"    float xs[{len(m.select)}];\n")
            code.append(f"    for (i = 0; i < {len(m.select)}; ++i) xs[i] = x[{name}_select[i]];\n")
            src, n_src = "xs", len(m.select)
        x_src, n_x = src, n_src
        n_out = self.plan.n_out
        for li, d in enumerate(m.layers):
            last = li == len(m.layers) - 1
            width = d.weight.shape[1]
            dot = last and width < DOT_BELOW and n_src % PAD == 0
            dst = "o" if last else f"h{li}"
            n_dst = width if dot else pad8(width)
            decl.append(f"    float {dst}[{n_dst}];\n")
            code.append(self._dense(f"{name}_w{li}", f"{name}_b{li}", d, src, n_src, dst, n_dst, dot, f"member {i} layer {li}"))
            if d.activation:
                code.append(activation_loop(p, d.activation, dst, n_dst))
            src, n_src = dst, n_dst
        if m.skip is not None:
            decl.append(f"    float s[{pad8(n_out)}];\n")
            code.append("    /* linear skip path, added to the MLP's answer */\n")
            code.append(self._dense(f"{name}_ws", f"{name}_bs", m.skip, x_src, n_x, "s", pad8(n_out), False, f"member {i} skip path"))
            code.append(f"    for (j = 0; j < {n_out}; ++j) y[j] = s[j] + o[j];\n")
        else:
            code.append(f"    for (j = 0; j < {n_out}; ++j) y[j] = o[j];\n")
        if any("for (k = 0" in c for c in code):
            decl[0] = "    int i, j, k;\n"
        self.functions.append("".join(lines + decl + code) + "}\n")

    def _dense(self, wname: str, bname: str, d: Dense, src: str, n_src: int, dst: str, n_dst: int, dot: bool,
               what: str) -> str:
        n_real = d.weight.shape[1]
        if dot:
            # Stored per output: W^T, each row padded to n_src (a multiple of 8).
            wt = np.zeros((n_real, n_src), np.float32)
            wt[:, : d.weight.shape[0]] = d.weight.T
            self.tables.append(float_array(wname, wt, f"{what}: {d.weight.shape[0]} -> {n_real}, stored per output"))
            self.tables.append(float_array(bname, d.bias))
            return (f"    for (j = 0; j < {n_real}; ++j) {{\n"
                    f"        const float *w = {wname} + {n_src} * j;\n"
                    f"        float t[8] = {{0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}};\n"
                    f"        for (i = 0; i < {n_src}; i += 8)\n"
                    f"            for (k = 0; k < 8; ++k) t[k] += {src}[i + k] * w[i + k];\n"
                    f"        {dst}[j] = {bname}[j] + (((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7])));\n"
                    f"    }}\n")
        w = np.zeros((n_src, n_dst), np.float32)
        w[: d.weight.shape[0], :n_real] = d.weight
        b = np.zeros(n_dst, np.float32)
        b[:n_real] = d.bias
        self.tables.append(float_array(wname, w, f"{what}: {d.weight.shape[0]} -> {n_real}, stored per input row "
                                                 f"({n_dst} wide)"))
        self.tables.append(float_array(bname, b))
        # Four input rows per pass (the sums keep their sequential order): a quarter of the loads
        # and stores of dst, which compilers then keep close to the arithmetic.
        n4 = n_src // 4 * 4
        code = f"    for (j = 0; j < {n_dst}; ++j) {dst}[j] = {bname}[j];\n"
        if n4:
            code += (f"    for (i = 0; i < {n4}; i += 4) {{\n"
                     f"        const float a0 = {src}[i], a1 = {src}[i + 1], a2 = {src}[i + 2], a3 = {src}[i + 3];\n"
                     f"        const float *w = {wname} + {n_dst} * i;\n"
                     f"        for (j = 0; j < {n_dst}; ++j)\n"
                     f"            {dst}[j] = ((({dst}[j] + a0 * w[j]) + a1 * w[{n_dst} + j]) + a2 * w[{2 * n_dst} + j]) + a3 * w[{3 * n_dst} + j];\n"
                     f"    }}\n")
        if n4 < n_src:
            code += (f"    for (i = {n4}; i < {n_src}; ++i) {{\n"
                     f"        const float a = {src}[i];\n"
                     f"        const float *w = {wname} + {n_dst} * i;\n"
                     f"        for (j = 0; j < {n_dst}; ++j) {dst}[j] += a * w[j];\n"
                     f"    }}\n")
        return code

    def _ridge(self, i: int, m: RidgeMember) -> None:
        p = self.p
        name = f"{p}_impl_m{i}"
        n_in, n_out = self.plan.n_in, self.plan.n_out
        n_terms, degree = m.terms.shape
        self.tables.append(int_array(f"{name}_terms", m.terms,
                                     f"member {i}: monomial t multiplies columns terms[t][:] ({n_in} = the constant 1)"))
        self.tables.append(double_array(f"{name}_coef", m.coef, f"member {i}: row 0 the intercept, row 1 + t monomial t"))
        factors = "".join(f" * z[v[{d}]]" for d in range(1, degree))
        self.functions.append(
            f"/* member {i}: ridge regression on {n_terms} monomials, evaluated in float64 as phasm does */\n"
            f"static inline void {name}(const float *x, float *y)\n{{\n"
            f"    double z[{n_in + 1}], acc[{n_out}];\n"
            f"    int i, j, t;\n"
            f"    for (i = 0; i < {n_in}; ++i) z[i] = (double)x[i];\n"
            f"    z[{n_in}] = 1.0;\n"
            f"    for (j = 0; j < {n_out}; ++j) acc[j] = {name}_coef[j];\n"
            f"    for (t = 0; t < {n_terms}; ++t) {{\n"
            f"        const int *v = {name}_terms + {degree} * t;\n"
            f"        const double f = z[v[0]]{factors};\n"
            f"        const double *c = {name}_coef + {n_out} * (t + 1);\n"
            f"        for (j = 0; j < {n_out}; ++j) acc[j] += f * c[j];\n"
            f"    }}\n"
            f"    for (j = 0; j < {n_out}; ++j) y[j] = (float)acc[j];\n}}\n")

    # -- the whole model ------------------------------------------------------

    def _standardise(self, src: str = "x") -> str:
        p, n_in = self.p, self.plan.n_in
        return f"    for (i = 0; i < {n_in}; ++i) z[i] = ({src}[i] - {p}_impl_x_mean[i]) / {p}_impl_x_scale[i];\n"

    def _transform_in(self) -> tuple[str, str, str]:
        """Declarations, the call of ``<p>_impl_tx`` and the source row name (``x`` without transforms)."""
        tf = self.plan.transforms
        if tf.inputs_identity:
            return "", "", "x"
        return f"    float t[{self.plan.n_in}];\n    int ok;\n", f"    ok = {self.p}_impl_tx(x, t);\n", "t"

    def _transform_out(self, buf: str, rows: int) -> str:
        """The inverse output transforms over ``rows`` answers in ``buf``, and NaN answers for refused rows."""
        p, tf, n_out = self.p, self.plan.transforms, self.plan.n_out
        code = ""
        if not tf.outputs_identity:
            code += "".join(f"    {p}_impl_ty({buf} + {m * n_out});\n" for m in range(rows))
        if not tf.inputs_identity:
            code += (f"    if (!ok)  /* no transform for an input, or an input the model does not read differs */\n"
                     f"        for (j = 0; j < {rows * n_out}; ++j) {buf}[j] = {p}_impl_nan();\n")
        return code

    def _members_function(self) -> str:
        """``<p>_impl_members(x, r)``: every member's answer in the caller's units, ``r[m * N_OUT + j]``."""
        p, plan = self.p, self.plan
        n_in, n_out, k = plan.n_in, plan.n_out, len(plan.members)
        head = (f"/* Every member's answer in the caller's units (float32), r[m * {n_out} + j]: the spread score's input. */\n"
                f"static inline void {p}_impl_members(const float *x, float *r)\n{{\n")
        t_decl, t_call, src = self._transform_in()
        if plan.folded:
            tail = self._transform_out("r", 1)
            return (head + t_decl + ("    int j;\n" if tail else "") + t_call + f"    {p}_impl_m0({src}, r);\n"
                    + tail + "}\n")
        calls = "".join(f"    {p}_impl_m{m}(z, r + {m * n_out});\n" for m in range(k))
        return (head + t_decl + f"    float z[{n_in}];\n    int i, j;\n" + t_call + self._standardise(src) + calls
                + f"    for (i = 0; i < {k}; ++i)\n"
                + f"        for (j = 0; j < {n_out}; ++j) r[i * {n_out} + j] = r[i * {n_out} + j] * {p}_impl_y_scale[j] + {p}_impl_y_mean[j];\n"
                + self._transform_out("r", k) + "}\n")

    def _model_function(self) -> str:
        """``<p>_impl_model(x, y)``: the answer of phasm's ``model`` mode, float32 in, float32 out."""
        p, plan = self.p, self.plan
        n_in, n_out, k = plan.n_in, plan.n_out, len(plan.members)
        head = (f"/* The model's answer for one model row x (phasm's `model` mode): {plan.description}. */\n"
                f"static inline void {p}_impl_model(const float *x, float *y)\n{{\n")
        t_decl, t_call, src = self._transform_in()
        if plan.folded:
            tail = self._transform_out("y", 1)
            return (head + t_decl + ("    int j;\n" if tail else "") + t_call
                    + f"    {p}_impl_m0({src}, y);  /* standardisation folded into the weights */\n" + tail + "}\n")
        calls = "".join(f"    {p}_impl_m{m}(z, o + {m * n_out});\n" for m in range(k))
        # numpy's float32 mean over members adds them in order, then divides.
        combine = (f"    for (j = 0; j < {n_out}; ++j) {{\n"
                   f"        float s = o[j];\n"
                   + (f"        for (i = 1; i < {k}; ++i) s += o[i * {n_out} + j];\n" if k > 1 else "")
                   + (f"        s = s / {c_float(k)};\n" if k > 1 else "")
                   + f"        y[j] = s * {p}_impl_y_scale[j] + {p}_impl_y_mean[j];\n    }}\n")
        return (head + t_decl + f"    float z[{n_in}], o[{k * n_out}];\n    int i, j;\n" + t_call
                + self._standardise(src) + calls + combine + self._transform_out("y", 1) + "}\n")
