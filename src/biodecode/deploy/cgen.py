"""C99 source for a C graph: ``model.h``, ``model.c`` and the stdin/stdout example ``main.c``.

No malloc and nothing beyond libm: weights are ``const`` arrays (flash), every intermediate tensor
lives at a fixed offset of one static arena whose size is ``MODEL_ARENA_BYTES`` (offsets planned from
the tensors' lifetimes, elementwise ops in place), the input is read where the caller keeps it and
the logits are written to the caller's array. ``dtype="int8"`` emits integer kernels (int8 weights
with per-channel scales, int32 accumulation, fixed-point requantisation; floats only to quantise the
input, in ShallowConvNet's log and for the final logits); ``dtype="float32"`` emits float kernels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .cgraph import Graph, Op
from .cquant import QParams, elu_table, elu_table16, fixed_point, quantize_layer, tensor_qparams

IN_PLACE = {"elu"}


@dataclass
class CSource:
    """Generated files (name -> text) and what the generator knows of their size."""

    files: dict[str, str]
    dtype: str
    arena_bytes: int
    input_bytes: int
    constant_bytes: int
    input_qparams: QParams | None = None
    info: dict[str, Any] = field(default_factory=dict)


def plan_arena(g: Graph, bytes_per_value: int) -> tuple[dict[int, int], int]:
    """Byte offset of every intermediate tensor (not the input, not the logits) in one arena, and its
    size. Tensors alive at the same time never overlap; an elementwise op writes over its input when
    that is not read again. Placement is greedy by size (largest first, lowest free offset), which
    comes close to the lower bound, the most bytes alive at any one op. Offsets are 4-byte aligned."""
    last_use = {t: i for i, op in enumerate(g.ops) for t in op.inputs}
    buffer_of: dict[int, int] = {}
    buffers: dict[int, list[int]] = {}  # buffer id -> [size, first op, last op]
    for i, op in enumerate(g.ops[:-1]):
        size = -(-op.shape[0] * op.shape[1] * bytes_per_value // 4) * 4
        src = op.inputs[0]
        if op.kind in IN_PLACE and src in buffer_of and last_use[src] == i:
            b = buffer_of[op.output] = buffer_of[src]
        else:
            b = buffer_of[op.output] = op.output
            buffers[b] = [size, i, i]
        buffers[b][2] = max(buffers[b][2], last_use.get(op.output, i))
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first, last)
    offset_of: dict[int, int] = {}
    for b, (size, first, last) in sorted(buffers.items(), key=lambda kv: (-kv[1][0], kv[1][1])):
        clash = sorted((lo, hi) for lo, hi, f, l in placed if f <= last and first <= l)
        at = 0
        for lo, hi in clash:
            if at + size <= lo:
                break
            at = max(at, hi)
        placed.append((at, at + size, first, last))
        offset_of[b] = at
    arena = max((hi for _, hi, _, _ in placed), default=0)
    return {t: offset_of[b] for t, b in buffer_of.items()}, max(arena, 4)


def _array(ctype: str, name: str, values: np.ndarray) -> str:
    flat = np.asarray(values).ravel()
    if ctype == "float":
        items = [f"{float(v):.9g}f" if np.isfinite(v) else "0.0f" for v in flat.astype(np.float32)]
        items = [s if any(c in s for c in ".e") else s[:-1] + ".0f" for s in items]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n  " + ",\n  ".join(lines) + "\n};\n"


_COMMON = r"""
typedef struct {
  int cin, cout, lin, lout, k, stride, dil, padl, groups, relu;
} conv_shape;

/* the taps j of a kernel whose input sample start + j*dil lies inside [0, lin) */
static void tap_range(const conv_shape *p, int start, int *j0, int *j1) {
  int lo = 0, hi = p->k;
  if (start < 0) lo = (-start + p->dil - 1) / p->dil;
  if (start + (hi - 1) * p->dil >= p->lin) hi = (p->lin - 1 - start) / p->dil + 1;
  *j0 = lo;
  *j1 = hi;
}
"""

_KERNELS_F32 = {
    "conv": r"""
/* sum of w[j] * x[j * dil] for j < n (a leaf, so the loop keeps everything in registers) */
static float dot_f(const float *w, const float *x, int n, int dil) {
  float acc = 0;
  if (dil == 1) {
    while (n-- > 0) acc += *w++ * *x++;
  } else {
    while (n-- > 0) { acc += *w++ * *x; x += dil; }
  }
  return acc;
}

static void conv(const float *x, float *y, const conv_shape *p, const float *w, const float *b) {
  const int cpi = p->cin / p->groups, cpo = p->cout / p->groups, lin = p->lin, k = p->k, dil = p->dil;
  int o, t, i, j0, j1;
  for (o = 0; o < p->cout; o++) {
    const float *wo = w + (long)o * cpi * k;
    const float *xg = x + (long)(o / cpo) * cpi * lin;
    for (t = 0; t < p->lout; t++) {
      int start = t * p->stride - p->padl;
      float acc = b ? b[o] : 0.0f;
      tap_range(p, start, &j0, &j1);
      if (k == 1 && j1 > j0) {  /* pointwise: one tap per input channel, a stride of lin */
        acc += dot_f(wo, xg + start, cpi, lin);
      } else if (j1 > j0) {
        const float *xi = xg + start + j0 * dil, *wi = wo + j0;
        const int n = j1 - j0;
        for (i = 0; i < cpi; i++, xi += lin, wi += k) acc += dot_f(wi, xi, n, dil);
      }
      y[(long)o * p->lout + t] = (p->relu && acc < 0.0f) ? 0.0f : acc;
    }
  }
}
""",
    "elu": r"""
static void elu(const float *x, float *y, long n) {
  long i;
  for (i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : expm1f(x[i]);
}
""",
    "pool": r"""
static void pool(const float *x, float *y, int c, int lin, int lout, int k, int stride, int pad, int is_max) {
  int ch, t, j;
  for (ch = 0; ch < c; ch++) {
    for (t = 0; t < lout; t++) {
      int start = t * stride - pad, n = 0;
      float acc = is_max ? -INFINITY : 0.0f;
      for (j = start; j < start + k; j++) {
        float v;
        if (j < 0 || j >= lin) continue;
        v = x[(long)ch * lin + j];
        if (is_max) { if (v > acc) acc = v; } else acc += v;
        n++;
      }
      y[(long)ch * lout + t] = is_max ? acc : acc / (float)n;
    }
  }
}
""",
    "powlog": r"""
static void powlog(const float *x, float *y, int c, int lin, int lout, int k, int stride, float eps) {
  int ch, t, j;
  for (ch = 0; ch < c; ch++) {
    for (t = 0; t < lout; t++) {
      const float *xs = x + (long)ch * lin + (long)t * stride;
      float acc = 0.0f;
      for (j = 0; j < k; j++) acc += xs[j] * xs[j];
      acc /= (float)k;
      y[(long)ch * lout + t] = logf(acc > eps ? acc : eps);
    }
  }
}
""",
    "add": r"""
static void add(const float *a, const float *b, float *y, long n, int relu) {
  long i;
  for (i = 0; i < n; i++) {
    float v = a[i] + b[i];
    y[i] = (relu && v < 0.0f) ? 0.0f : v;
  }
}
""",
    "gpool": r"""
static void gpool(const float *x, float *y, int c, int lin) {
  int ch, t;
  for (ch = 0; ch < c; ch++) {
    const float *xc = x + (long)ch * lin;
    float sum = 0.0f, mx = xc[0];
    for (t = 0; t < lin; t++) { sum += xc[t]; if (xc[t] > mx) mx = xc[t]; }
    y[ch] = sum / (float)lin;
    y[c + ch] = mx;
  }
}
""",
    "last": r"""
static void last(const float *x, float *y, int c, int lin) {
  int ch;
  for (ch = 0; ch < c; ch++) y[ch] = x[(long)ch * lin + lin - 1];
}
""",
    "linear": r"""
static void linear(const float *x, float *y, int n_in, int n_out, const float *w, const float *b) {
  int o, i;
  for (o = 0; o < n_out; o++) {
    const float *wo = w + (long)o * n_in;
    float acc = b[o];
    for (i = 0; i < n_in; i++) acc += wo[i] * x[i];
    y[o] = acc;
  }
}
""",
}

_KERNELS_I8 = {
    "requant": r"""
/* round(v * m / 2^r), halves away from zero, saturated to int8 after adding zp */
static int8_t requant(int64_t v, int32_t m, int r, int zp) {
  int64_t p = v * (int64_t)m, q;
  if (r == 0) q = p;
  else if (p >= 0) q = (p + ((int64_t)1 << (r - 1))) >> r;
  else q = -((-p + ((int64_t)1 << (r - 1))) >> r);
  q += zp;
  return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}
""",
    "div_round": r"""
static int8_t div_round(int32_t sum, int32_t n) {
  int32_t q = sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n);
  return (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
}
""",
    "conv": r"""
/* sum of w[j] * x[j * dil] for j < n with x offset by -zp (a leaf, so the loop keeps everything in registers) */
static int32_t dot_q(const int8_t *w, const int8_t *x, int n, int dil, int32_t zp) {
  int32_t acc = 0;
  if (dil == 1) {
    while (n-- > 0) acc += (int32_t)*w++ * ((int32_t)*x++ - zp);
  } else {
    while (n-- > 0) { acc += (int32_t)*w++ * ((int32_t)*x - zp); x += dil; }
  }
  return acc;
}

static void conv(const int8_t *x, int8_t *y, const conv_shape *p, const int8_t *w, const int32_t *b,
                 const int32_t *m, const uint8_t *r, int zp_in, int zp_out) {
  const int cpi = p->cin / p->groups, cpo = p->cout / p->groups, lin = p->lin, k = p->k, dil = p->dil;
  int o, t, i, j0, j1;
  for (o = 0; o < p->cout; o++) {
    const int8_t *wo = w + (long)o * cpi * k;
    const int8_t *xg = x + (long)(o / cpo) * cpi * lin;
    for (t = 0; t < p->lout; t++) {
      int start = t * p->stride - p->padl;
      int32_t acc = b ? b[o] : 0;
      int8_t q;
      tap_range(p, start, &j0, &j1);
      if (k == 1 && j1 > j0) {  /* pointwise: one tap per input channel, a stride of lin */
        acc += dot_q(wo, xg + start, cpi, lin, zp_in);
      } else if (j1 > j0) {
        const int8_t *xi = xg + start + j0 * dil, *wi = wo + j0;
        const int n = j1 - j0;
        for (i = 0; i < cpi; i++, xi += lin, wi += k) acc += dot_q(wi, xi, n, dil, zp_in);
      }
      q = requant(acc, m[o], r[o], zp_out);
      y[(long)o * p->lout + t] = (p->relu && q < zp_out) ? (int8_t)zp_out : q;
    }
  }
}
""",
    "elu": r"""
static void lut(const int8_t *x, int8_t *y, long n, const int8_t *table) {
  long i;
  for (i = 0; i < n; i++) y[i] = table[x[i] + 128];
}
""",
    "pool": r"""
/* average or max pooling, requantised to the output's scale: M = m / 2^r maps one input step to
   output steps; an average's sum is scaled by k / n where the window hangs over the end */
static void pool(const int8_t *x, int8_t *y, int c, int lin, int lout, int k, int stride, int pad, int is_max,
                 int zp_in, int32_t m, int r, int zp_out) {
  int ch, t, j;
  for (ch = 0; ch < c; ch++) {
    for (t = 0; t < lout; t++) {
      int start = t * stride - pad, n = 0;
      int32_t acc = is_max ? -128 : 0;
      for (j = start; j < start + k; j++) {
        int32_t v;
        if (j < 0 || j >= lin) continue;
        v = x[(long)ch * lin + j];
        if (is_max) { if (v > acc) acc = v; } else acc += v - zp_in;
        n++;
      }
      if (is_max) acc -= zp_in;
      else if (n != k) acc = (int32_t)(((int64_t)acc * k + (acc >= 0 ? n / 2 : -n / 2)) / n);
      y[(long)ch * lout + t] = requant(acc, m, r, zp_out);
    }
  }
}
""",
    "elu_pool": r"""
/* ELU (int8 -> int16 table) then average pooling without padding, one requantisation */
static void elu_pool(const int8_t *x, int8_t *y, int c, int lin, int lout, int k, int stride,
                     const int16_t *table, int32_t m, int r, int zp_out) {
  int ch, t, j;
  for (ch = 0; ch < c; ch++) {
    for (t = 0; t < lout; t++) {
      const int8_t *xs = x + (long)ch * lin + (long)t * stride;
      int32_t acc = 0;
      for (j = 0; j < k; j++) acc += table[xs[j] + 128];
      y[(long)ch * lout + t] = requant(acc, m, r, zp_out);
    }
  }
}
""",
    "powlog": r"""
/* log(max(mean(x^2), eps)) with x = s_in (q - zp_in): the squares summed exactly in int32 */
static void powlog(const int8_t *x, int8_t *y, int c, int lin, int lout, int k, int stride, int zp_in,
                   float s2_over_k, float eps, float inv_s_out, int zp_out) {
  int ch, t, j;
  for (ch = 0; ch < c; ch++) {
    for (t = 0; t < lout; t++) {
      const int8_t *xs = x + (long)ch * lin + (long)t * stride;
      int32_t acc = 0;
      float v, q;
      for (j = 0; j < k; j++) { int32_t d = (int32_t)xs[j] - zp_in; acc += d * d; }
      v = (float)acc * s2_over_k;
      q = roundf(logf(v > eps ? v : eps) * inv_s_out) + (float)zp_out;
      y[(long)ch * lout + t] = (int8_t)(q < -128.0f ? -128 : (q > 127.0f ? 127 : (int)q));
    }
  }
}
""",
    "add": r"""
static void add(const int8_t *a, const int8_t *b, int8_t *y, long n, int zp_a, int zp_b, int32_t m_a,
                int32_t m_b, int r, int zp_out, int relu) {
  long i;
  for (i = 0; i < n; i++) {
    int64_t v = (int64_t)((int32_t)a[i] - zp_a) * m_a + (int64_t)((int32_t)b[i] - zp_b) * m_b;
    int8_t q = requant(v, 1, r, zp_out);
    y[i] = (relu && q < zp_out) ? (int8_t)zp_out : q;
  }
}
""",
    "gpool": r"""
static void gpool(const int8_t *x, int8_t *y, int c, int lin) {
  int ch, t;
  for (ch = 0; ch < c; ch++) {
    const int8_t *xc = x + (long)ch * lin;
    int32_t sum = 0;
    int8_t mx = xc[0];
    for (t = 0; t < lin; t++) { sum += xc[t]; if (xc[t] > mx) mx = xc[t]; }
    y[ch] = div_round(sum, lin);
    y[c + ch] = mx;
  }
}
""",
    "last": r"""
static void last(const int8_t *x, int8_t *y, int c, int lin, int zp_in, int32_t m, int r, int zp_out) {
  int ch;
  for (ch = 0; ch < c; ch++) y[ch] = requant((int32_t)x[(long)ch * lin + lin - 1] - zp_in, m, r, zp_out);
}
""",
    "linear": r"""
/* the final dense layer: int32 accumulators, returned as float logits acc * scale[o] */
static void linear(const int8_t *x, float *y, int n_in, int n_out, const int8_t *w, const int32_t *b,
                   const float *scale, int zp_in) {
  int o, i;
  for (o = 0; o < n_out; o++) {
    const int8_t *wo = w + (long)o * n_in;
    int32_t acc = b[o];
    for (i = 0; i < n_in; i++) acc += (int32_t)wo[i] * ((int32_t)x[i] - zp_in);
    y[o] = (float)acc * scale[o];
  }
}
""",
}


class _Emitter:
    def __init__(self, g: Graph, dtype: str, ranges: dict[int, tuple[float, float]] | None):
        self.g, self.dtype = g, dtype
        self.int8 = dtype == "int8"
        self.ctype = "int8_t" if self.int8 else "float"
        self.qp = tensor_qparams(g, ranges) if self.int8 else {}
        self.offsets, self.arena = plan_arena(g, 1 if self.int8 else 4)
        self.consts: list[str] = []
        self.const_bytes = 0
        self.calls: list[str] = []
        self.used: set[str] = set()
        # int8: an ELU whose only reader is an average pool without padding runs inside that pool
        readers: dict[int, list[Op]] = {}
        for op in g.ops:
            for t in op.inputs:
                readers.setdefault(t, []).append(op)
        self.fused: dict[int, Op] = {}  # pool output -> the ELU op it absorbs
        if self.int8:
            for op in g.ops:
                r = readers.get(op.output, [])
                if (op.kind == "elu" and len(r) == 1 and r[0].kind == "pool" and r[0].params["mode"] == "avg"
                        and not r[0].params["pad"] and not r[0].params["ceil"]):
                    self.fused[r[0].output] = op
        self.absorbed = {op.output for op in self.fused.values()}

    def const(self, ctype: str, name: str, values: np.ndarray) -> str:
        self.consts.append(_array(ctype, name, values))
        self.const_bytes += np.asarray(values).size * {"float": 4, "int8_t": 1, "int16_t": 2, "int32_t": 4, "uint8_t": 1}[ctype]
        return name

    def ptr(self, t: int, const: bool = True) -> str:
        if t == 0:
            return "x"
        if t == self.g.output:
            return "logits"
        return f"({'const ' if const else ''}{self.ctype} *)(arena.bytes + {self.offsets[t]})"

    def emit(self, i: int, op: Op) -> None:
        n = i + 1
        if op.output in self.absorbed:
            return
        p, (c_out, l_out) = op.params, op.shape
        c_in, l_in = self.g.shape(op.inputs[0])
        x, y = self.ptr(op.inputs[0]), self.ptr(op.output, const=False)
        self.used.add("elu_pool" if op.output in self.fused else op.kind)
        self.calls.append(f"  /* {op.name}: ({c_in}, {l_in}) -> ({c_out}, {l_out}) */")
        if op.kind == "conv":
            w = p["weight"]
            shape = (f"static const conv_shape s{n} = {{{c_in}, {c_out}, {l_in}, {l_out}, {w.shape[2]}, {p['stride']}, "
                     f"{p['dilation']}, {p['pad'][0]}, {p['groups']}, {int(p['relu'])}}};\n")
            self.consts.append(shape)
            if self.int8:
                qi, qo = self.qp[op.inputs[0]], self.qp[op.output]
                wq, bq, sw = quantize_layer(w, p["bias"], qi)
                mr = [fixed_point(qi.scale * s / qo.scale) for s in sw]
                self.const("int8_t", f"w{n}", wq)
                self.const("int32_t", f"b{n}", bq)
                self.const("int32_t", f"m{n}", np.array([a for a, _ in mr]))
                self.const("uint8_t", f"r{n}", np.array([b for _, b in mr]))
                self.calls.append(f"  conv({x}, {y}, &s{n}, w{n}, b{n}, m{n}, r{n}, {qi.zero_point}, {qo.zero_point});")
            else:
                self.const("float", f"w{n}", w)
                b = "NULL" if p["bias"] is None else self.const("float", f"b{n}", p["bias"])
                self.calls.append(f"  conv({x}, {y}, &s{n}, w{n}, {b});")
        elif op.kind == "elu":
            if self.int8:
                self.const("int8_t", f"t{n}", elu_table(self.qp[op.inputs[0]], self.qp[op.output]))
                self.calls.append(f"  lut({x}, {y}, {c_out * l_out}L, t{n});")
            else:
                self.calls.append(f"  elu({x}, {y}, {c_out * l_out}L);")
        elif op.kind == "pool" and op.output in self.fused:
            elu = self.fused[op.output]
            table, s16 = elu_table16(self.qp[elu.inputs[0]])
            m, r = fixed_point(s16 / (p["k"] * self.qp[op.output].scale))
            self.const("int16_t", f"t{n}", table)
            self.calls[-1] = f"  /* {elu.name} + {op.name}: ({c_in}, {l_in}) -> ({c_out}, {l_out}) */"
            self.calls.append(f"  elu_pool({self.ptr(elu.inputs[0])}, {y}, {c_in}, {l_in}, {l_out}, {p['k']}, {p['stride']}, "
                              f"t{n}, {m}, {r}, {self.qp[op.output].zero_point});")
        elif op.kind == "pool":
            is_max = int(p["mode"] == "max")
            if self.int8:
                qi, qo = self.qp[op.inputs[0]], self.qp[op.output]
                m, r = fixed_point(qi.scale / (qo.scale if is_max else qo.scale * p["k"]))
                self.calls.append(f"  pool({x}, {y}, {c_in}, {l_in}, {l_out}, {p['k']}, {p['stride']}, {p['pad']}, "
                                  f"{is_max}, {qi.zero_point}, {m}, {r}, {qo.zero_point});")
            else:
                self.calls.append(f"  pool({x}, {y}, {c_in}, {l_in}, {l_out}, {p['k']}, {p['stride']}, {p['pad']}, {is_max});")
        elif op.kind == "powlog":
            if self.int8:
                qi, qo = self.qp[op.inputs[0]], self.qp[op.output]
                self.calls.append(f"  powlog({x}, {y}, {c_in}, {l_in}, {l_out}, {p['k']}, {p['stride']}, {qi.zero_point}, "
                                  f"{qi.scale ** 2 / p['k']:.9g}f, {p['eps']:.9g}f, {1 / qo.scale:.9g}f, {qo.zero_point});")
            else:
                self.calls.append(f"  powlog({x}, {y}, {c_in}, {l_in}, {l_out}, {p['k']}, {p['stride']}, {p['eps']:.9g}f);")
        elif op.kind == "add":
            b = self.ptr(op.inputs[1])
            if self.int8:
                qa, qb, qo = self.qp[op.inputs[0]], self.qp[op.inputs[1]], self.qp[op.output]
                big = max(qa.scale, qb.scale) / qo.scale
                _, r = fixed_point(big)
                ma, mb = (int(round(q.scale / qo.scale * 2.0 ** r)) for q in (qa, qb))
                self.calls.append(f"  add({x}, {b}, {y}, {c_out * l_out}L, {qa.zero_point}, {qb.zero_point}, {ma}, {mb}, "
                                  f"{r}, {qo.zero_point}, {int(p['relu'])});")
            else:
                self.calls.append(f"  add({x}, {b}, {y}, {c_out * l_out}L, {int(p['relu'])});")
        elif op.kind == "last" and self.int8:
            qi, qo = self.qp[op.inputs[0]], self.qp[op.output]
            m, r = fixed_point(qi.scale / qo.scale)
            self.calls.append(f"  last({x}, {y}, {c_in}, {l_in}, {qi.zero_point}, {m}, {r}, {qo.zero_point});")
        elif op.kind in ("gpool", "last"):
            self.calls.append(f"  {op.kind}({x}, {y}, {c_in}, {l_in});")
        elif op.kind == "linear":
            if op.output != self.g.output:
                raise ConfigError(f"C export: layer {op.name}: a dense layer is only supported as the last layer")
            if self.int8:
                qi = self.qp[op.inputs[0]]
                wq, bq, sw = quantize_layer(p["weight"], p["bias"], qi)
                self.const("int8_t", f"w{n}", wq)
                self.const("int32_t", f"b{n}", bq)
                self.const("float", f"q{n}", qi.scale * sw)
                self.calls.append(f"  linear({x}, {y}, {c_in * l_in}, {c_out}, w{n}, b{n}, q{n}, {qi.zero_point});")
            else:
                self.const("float", f"w{n}", p["weight"])
                self.const("float", f"b{n}", p["bias"])
                self.calls.append(f"  linear({x}, {y}, {c_in * l_in}, {c_out}, w{n}, b{n});")
        else:
            raise ConfigError(f"C export: op {op.kind!r} ({op.name}) has no C kernel")


def _header(g: Graph, dtype: str, arena: int, classes: list[str], qin: QParams | None, meta_lines: list[str]) -> str:
    guard = "BIODECODE_MODEL_H"
    lines = [f"/* Generated by biodecode: {dtype} C99 inference for one window. */",
             *[f"/* {m} */" for m in meta_lines],
             f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
             f"#define MODEL_N_CHANNELS {g.n_channels}", f"#define MODEL_N_TIMES {g.n_times}",
             f"#define MODEL_N_CLASSES {g.n_classes}",
             f"/* bytes of the static arena holding every intermediate tensor */",
             f"#define MODEL_ARENA_BYTES {arena}", f"#define MODEL_DTYPE_{dtype.upper()} 1", ""]
    if qin is not None:
        lines += ["/* int8 input: q = round(x / MODEL_INPUT_SCALE) + MODEL_INPUT_ZERO_POINT, saturated */",
                  f"#define MODEL_INPUT_SCALE {qin.scale:.9g}f", f"#define MODEL_INPUT_ZERO_POINT {qin.zero_point}", ""]
    names = ", ".join('"' + c.replace('\\', '\\\\').replace('"', '\\"') + '"' for c in classes)
    lines += [f"/* class names in logit order: {names} */", "extern const char *const model_class_names[MODEL_N_CLASSES];", "",
              "/* x: one window, MODEL_N_CHANNELS rows of MODEL_N_TIMES samples (channel-major), in the units",
              "   the model was trained on; logits: MODEL_N_CLASSES values. Returns the number of non-finite",
              "   input values (0 when the window is clean; otherwise do not use the logits). Not reentrant. */",
              "int model_predict(const float *x, float *logits);"]
    if qin is not None:
        lines += ["", "/* the same on an already quantised window (e.g. straight from an ADC buffer) */",
                  "void model_predict_int8(const int8_t *x, float *logits);"]
    return "\n".join(lines + ["", f"#endif /* {guard} */", ""])


def generate_c(g: Graph, dtype: str = "int8", ranges: dict[int, tuple[float, float]] | None = None,
               classes: list[str] | None = None, meta_lines: list[str] | None = None) -> CSource:
    """C sources for ``g``; ``ranges`` (from :func:`~biodecode.deploy.cgraph.run_graph` on calibration
    windows) are needed for int8."""
    if dtype not in ("int8", "float32"):
        raise ConfigError(f"C export: dtype must be int8 or float32, got {dtype!r}")
    if dtype == "int8" and not ranges:
        raise ConfigError("C export: int8 needs calibration ranges (windows from the training side)")
    if g.ops[-1].kind != "linear":
        raise ConfigError(f"C export: the last layer must be dense, got {g.ops[-1].name}")
    classes = list(classes) if classes else [str(i) for i in range(g.n_classes)]
    e = _Emitter(g, dtype, ranges)
    for i, op in enumerate(g.ops):
        e.emit(i, op)
    kernels = _KERNELS_I8 if e.int8 else _KERNELS_F32
    needs = set(e.used) | ({"requant"} if e.used & {"conv", "add", "pool", "elu_pool", "last"} else set()) | (
        {"div_round"} if e.used & {"gpool"} else set())
    used = [k for k in kernels if k in needs]
    n_in = g.n_channels * g.n_times
    qin = e.qp[0] if e.int8 else None
    body = ["#include <math.h>", "#include <stddef.h>", "#include <stdint.h>", "", '#include "model.h"', "",
            "static union { int32_t align; float f; uint8_t bytes[MODEL_ARENA_BYTES]; } arena;", "",
            "const char *const model_class_names[MODEL_N_CLASSES] = {" + ", ".join(
                '"' + c.replace('\\', '\\\\').replace('"', '\\"') + '"' for c in classes) + "};"]
    if "conv" in e.used:
        body.append(_COMMON)
    body += [kernels[k] for k in used]
    body.append("\n".join(e.consts))
    count_bad = ["static int count_nonfinite(const float *x) {", "  long i;", "  int bad = 0;",
                 f"  for (i = 0; i < {n_in}L; i++) if (!isfinite(x[i])) bad++;", "  return bad;", "}", ""]
    if e.int8:
        body += [f"void model_predict_int8(const int8_t *x, float *logits) {{", *e.calls, "}", "",
                 f"static int8_t input_q[{n_in}];", "", *count_bad,
                 "int model_predict(const float *x, float *logits) {", "  long i;", "  int bad = count_nonfinite(x);",
                 f"  for (i = 0; i < {n_in}L; i++) {{",
                 "    float q = isfinite(x[i]) ? roundf(x[i] / MODEL_INPUT_SCALE) + (float)MODEL_INPUT_ZERO_POINT : (float)MODEL_INPUT_ZERO_POINT;",
                 "    input_q[i] = (int8_t)(q < -128.0f ? -128 : (q > 127.0f ? 127 : (int)q));", "  }",
                 "  model_predict_int8(input_q, logits);", "  return bad;", "}", ""]
    else:
        body += [*count_bad, "int model_predict(const float *x, float *logits) {", "  int bad = count_nonfinite(x);",
                 *e.calls, "  return bad;", "}", ""]
    files = {"model.h": _header(g, dtype, e.arena, classes, qin, meta_lines or []),
             "model.c": "/* Generated by biodecode; see model.h. */\n" + "\n".join(body),
             "main.c": _MAIN}
    return CSource(files, dtype, e.arena, n_in * (1 if e.int8 else 4), e.const_bytes, qin,
                   {"ops": len(g.ops), "kernels": sorted(e.used)})


_MAIN = r"""/* Generated by biodecode: run the model on windows read from standard input.

   Input: windows of MODEL_N_CHANNELS x MODEL_N_TIMES float32 values (channel-major, little-endian),
   one after another. Output: MODEL_N_CLASSES float32 logits (little-endian) per window.
   Build: gcc -std=c99 -O2 main.c model.c -lm -o model */
#include <stdio.h>
#include <string.h>
#include <stdint.h>

#include "model.h"

#define N_IN (MODEL_N_CHANNELS * MODEL_N_TIMES)

static unsigned char raw[4 * N_IN];
static float window[N_IN];

int main(void) {
  float logits[MODEL_N_CLASSES];
  unsigned char out[4 * MODEL_N_CLASSES];
  long n_windows = 0;
  size_t got;
  int i;
  for (;;) {
    got = fread(raw, 1, sizeof raw, stdin);
    if (got == 0) break;
    if (got != sizeof raw) {
      fprintf(stderr, "model: window %ld is cut short: %lu of %lu bytes (%d channels x %d samples of float32)\n",
              n_windows + 1, (unsigned long)got, (unsigned long)sizeof raw, MODEL_N_CHANNELS, MODEL_N_TIMES);
      return 1;
    }
    for (i = 0; i < N_IN; i++) {
      uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 | (uint32_t)raw[4 * i + 2] << 16 |
                   (uint32_t)raw[4 * i + 3] << 24;
      memcpy(&window[i], &u, 4);
    }
    i = model_predict(window, logits);
    if (i) {
      fprintf(stderr, "model: window %ld has %d non-finite values (NaN or infinite); no decision\n", n_windows + 1, i);
      return 2;
    }
    for (i = 0; i < MODEL_N_CLASSES; i++) {
      uint32_t u;
      memcpy(&u, &logits[i], 4);
      out[4 * i] = (unsigned char)u;
      out[4 * i + 1] = (unsigned char)(u >> 8);
      out[4 * i + 2] = (unsigned char)(u >> 16);
      out[4 * i + 3] = (unsigned char)(u >> 24);
    }
    fwrite(out, 1, sizeof out, stdout);
    n_windows++;
  }
  if (n_windows == 0) {
    fprintf(stderr, "model: no input (expected windows of %d x %d float32 values on standard input)\n",
            MODEL_N_CHANNELS, MODEL_N_TIMES);
    return 1;
  }
  return 0;
}
"""
