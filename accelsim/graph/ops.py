"""Operator specifications: attributes, shape inference and the GEMM view, each in one place.

Tensors are batch-first. Convolution and pooling ops use NCHW; Linear acts on the last
axis (so a BERT token tensor (N, S, D) and a flattened image (N, D) both work).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import GraphError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class GemmView:
    """A layer as `groups` independent GEMMs of (M x K) @ (K x N).

    For a conv: M = output pixels x batch, K = C/groups x Fh x Fw, N = filters per group.
    """

    M: int
    K: int
    N: int
    groups: int = 1

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N * self.groups


# ----------------------------------------------------------------------------- attribute parsing
#
# Every parser names the field (`what`: "<file>: layer 'x'.<attr>") and describes what it found
# the one way accelsim does (`config.validate.describe`): "expected ...; found ...".

#: the largest dimension, size or attribute a graph may state (products are checked separately)
MAX_DIM = 2**31 - 1
#: the largest element or MAC count of one layer: the cost model counts in int64 and prices in
#: float64, exact below 2^53
MAX_COUNT = 2**53


def _describe(value: Any) -> str:
    from ..config.validate import describe

    return describe(value)


def _is_int(v: Any) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def _fail(what: str, expected: str, value: Any) -> GraphError:
    return GraphError(f"{what}: expected {expected}; found {_describe(value)}")


def _bounded(v: Any, what: str, expected: str, value: Any, lo: int = -MAX_DIM) -> int:
    v = int(v)
    if not lo <= v <= MAX_DIM:
        raise _fail(what, f"{expected} (each in {lo}..{MAX_DIM})", value)
    return v


def _pair(value: Any, what: str) -> tuple[int, int]:
    expected = "an integer or a pair of integers"
    if _is_int(value):
        v = _bounded(value, what, expected, value)
        return (v, v)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        return (_bounded(value[0], what, expected, value), _bounded(value[1], what, expected, value))
    raise _fail(what, expected, value)


def _pads(value: Any, what: str) -> tuple[int, int, int, int]:
    """Padding as (top, left, bottom, right). Accepts p, [ph, pw] or [top, left, bottom, right]."""
    expected = "padding >= 0: p, [ph, pw] or [top, left, bottom, right]"
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(_is_int(v) for v in value):
        pads = tuple(_bounded(v, what, expected, value, lo=0) for v in value)
    elif _is_int(value) or isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        ph, pw = _pair(value, what)
        pads = (ph, pw, ph, pw)
    else:
        raise _fail(what, expected, value)
    if min(pads) < 0:
        raise _fail(what, expected, value)
    return pads  # type: ignore[return-value]


def _positive_pair(value: Any, what: str) -> tuple[int, int]:
    pair = _pair(value, what)
    if min(pair) < 1:
        raise _fail(what, "an integer >= 1 or a pair of them", value)
    return pair


def _positive_int(value: Any, what: str) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_DIM:
        raise _fail(what, f"a positive integer (at most {MAX_DIM})", value)
    return int(value)


def _int_list(value: Any, what: str) -> tuple[int, ...]:
    expected = "a list of integers"
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value) or len(value) > 64:
        raise _fail(what, expected + " (at most 64)", value)
    return tuple(_bounded(v, what, expected, value) for v in value)


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or not value or len(value) > 8
            or not all(_is_int(v) and 1 <= v <= MAX_DIM for v in value)):
        raise _fail(what, f"a list of 1 to 8 positive integers (each at most {MAX_DIM}), e.g. [3, 224, 224]", value)
    total = math.prod(int(v) for v in value)
    if total > MAX_COUNT:
        raise GraphError(f"{what}: expected at most {MAX_COUNT:,} elements per sample; found "
                         f"{'x'.join(map(str, value))} = {total:.3g}")
    return tuple(int(v) for v in value)


def _int(value: Any, what: str) -> int:
    if not _is_int(value) or not -64 <= value <= 64:
        raise _fail(what, "an integer in -64..64", value)
    return int(value)


def _number(value: Any, what: str) -> float:
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise _fail(what, "a positive finite number", value)
    return float(value)


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(what, "true or false", value)
    return value


def _ident(value: Any, what: str) -> Any:
    return value


def check_count(count: int, what: str) -> int:
    """A layer's element or MAC count, checked against what the cost model can count."""
    if count > MAX_COUNT:
        raise GraphError(f"{what}: expected at most {MAX_COUNT:,} (2^53, what the cost model counts "
                         f"exactly); found {count:.3g}")
    return count


# ----------------------------------------------------------------------------- op specs


@dataclass(frozen=True)
class OpSpec:
    """What an op needs: its attributes (parser, default), its input count and its shape rule."""

    name: str
    attrs: dict[str, tuple[Callable[[Any, str], Any], Any]]  # attr -> (parser, default; ... = required)
    n_inputs: int | None  # None: one or more
    infer: Callable[[dict, list[Shape]], Shape]
    gemm: Callable[[dict, list[Shape], Shape], GemmView | None] = lambda a, i, o: None
    params: tuple[str, ...] = ()  # parameter arrays a node of this op may carry


REQUIRED = ...


def _conv_out_hw(attrs: dict, h: int, w: int, kernel: tuple[int, int], ceil_mode: bool = False) -> tuple[int, int]:
    top, left, bottom, right = attrs["padding"]
    sh, sw = attrs["stride"]
    dh, dw = attrs.get("dilation", (1, 1))
    rounding = math.ceil if ceil_mode else math.floor
    eff_h = dh * (kernel[0] - 1) + 1
    eff_w = dw * (kernel[1] - 1) + 1
    ho = rounding((h + top + bottom - eff_h) / sh) + 1
    wo = rounding((w + left + right - eff_w) / sw) + 1
    if ceil_mode:  # the last window must start inside the (left-padded) input, as in ONNX/torch
        if (ho - 1) * sh >= h + top:
            ho -= 1
        if (wo - 1) * sw >= w + left:
            wo -= 1
    if ho < 1 or wo < 1:
        raise GraphError(
            f"expected a kernel that fits the padded {h}x{w} input (padding {attrs['padding']}); found kernel "
            f"{kernel} (dilation {(dh, dw)}), which does not fit"
        )
    return ho, wo


def _expect_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise GraphError(f"expected a rank-{rank} input ({what}); found shape {shape}")


def _conv_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    _expect_rank(shape, 4, "conv2d")
    n, c, h, w = shape
    groups = attrs["groups"]
    if c % groups or attrs["out_channels"] % groups:
        raise GraphError(
            f"expected groups dividing both the input channels ({c}) and out_channels "
            f"({attrs['out_channels']}); found groups={groups}"
        )
    ho, wo = _conv_out_hw(attrs, h, w, attrs["kernel"])
    return (n, attrs["out_channels"], ho, wo)


def _conv_gemm(attrs: dict, shapes: list[Shape], out: Shape) -> GemmView:
    n, c, _, _ = shapes[0]
    g = attrs["groups"]
    kh, kw = attrs["kernel"]
    return GemmView(M=n * out[2] * out[3], K=(c // g) * kh * kw, N=attrs["out_channels"] // g, groups=g)


def _linear_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    if len(shape) < 2:
        raise GraphError(f"expected an input of rank >= 2 (linear); found shape {shape}")
    return shape[:-1] + (attrs["out_features"],)


def _linear_gemm(attrs: dict, shapes: list[Shape], out: Shape) -> GemmView:
    shape = shapes[0]
    return GemmView(M=math.prod(shape[:-1]), K=shape[-1], N=attrs["out_features"])


def _matmul_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    a, b = shapes
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise GraphError(f"expected shapes (..., M, K) @ (..., K, N); found {a} and {b}, which do not multiply")
    try:
        batch = _broadcast(a[:-2], b[:-2])
    except GraphError:
        raise GraphError(f"matmul: batch dims of {a} and {b} do not broadcast") from None
    return batch + (a[-2], b[-1])


def _matmul_gemm(attrs: dict, shapes: list[Shape], out: Shape) -> GemmView:
    a, b = shapes
    return GemmView(M=a[-2], K=a[-1], N=b[-1], groups=math.prod(out[:-2]))


def _broadcast(a: Shape, b: Shape) -> Shape:
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise GraphError(f"shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return tuple(out)


def _same(attrs: dict, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _elementwise(attrs: dict, shapes: list[Shape]) -> Shape:
    out = shapes[0]
    for s in shapes[1:]:
        out = _broadcast(out, s)
    return out


def _bn_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    if len(shape) < 2:
        raise GraphError(f"expected a rank >= 2 input (N, C, ...); found shape {shape}")
    return shape


def _concat_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    rank = len(shapes[0])
    axis = attrs["axis"] % rank if -rank <= attrs["axis"] < rank else None
    if axis is None or axis == 0:
        raise GraphError(f"expected a non-batch axis of rank-{rank} inputs; found axis {attrs['axis']}")
    for s in shapes[1:]:
        if len(s) != rank or any(s[i] != shapes[0][i] for i in range(rank) if i != axis):
            raise GraphError(f"expected shapes equal off axis {axis}; found {shapes}")
    return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1 :]


def _pool_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    _expect_rank(shape, 4, "pooling")
    n, c, h, w = shape
    ho, wo = _conv_out_hw(attrs, h, w, attrs["kernel"], attrs["ceil_mode"])
    return (n, c, ho, wo)


def _gap_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    _expect_rank(shape, 4, "globalavgpool")
    return shape[:2] + (1, 1)


def _flatten_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    axis = attrs["axis"]
    if not 1 <= axis <= len(shape):
        raise GraphError(f"expected an axis in 1..{len(shape)}; found axis {axis} for shape {shape}")
    return (math.prod(shape[:axis]), math.prod(shape[axis:]))


def _reshape_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    """ONNX semantics: 0 copies the input dim at that position, -1 is inferred."""
    (shape,) = shapes
    target = list(attrs["shape"])
    for i, v in enumerate(target):
        if v == 0:
            if i >= len(shape):
                raise GraphError(f"reshape: 0 at position {i} but the input {shape} has rank {len(shape)}")
            target[i] = shape[i]
    total = math.prod(shape)
    if target.count(-1) > 1 or any(v < -1 for v in target):
        raise GraphError(f"expected a target shape with at most one -1 and no value below -1; found {attrs['shape']}")
    if -1 in target:
        known = math.prod(v for v in target if v != -1)
        if known == 0 or total % known:
            raise GraphError(f"expected a target shape of {total} elements; found {attrs['shape']}: cannot reshape {shape}")
        target[target.index(-1)] = total // known
    if math.prod(target) != total:
        raise GraphError(f"expected a target shape of {total} elements; found {attrs['shape']}: cannot reshape {shape}")
    return tuple(target)


def _transpose_infer(attrs: dict, shapes: list[Shape]) -> Shape:
    (shape,) = shapes
    perm = attrs["perm"]
    if sorted(perm) != list(range(len(shape))):
        raise GraphError(f"expected a permutation of the axes of {shape}; found perm {perm}")
    return tuple(shape[p] for p in perm)


def _input_infer(attrs: dict, shapes: list[Shape]) -> Shape:  # batch is prepended by the graph
    return tuple(attrs["shape"])


_CONV_ATTRS = {
    "out_channels": (_positive_int, REQUIRED),
    "kernel": (_positive_pair, REQUIRED),
    "stride": (_positive_pair, (1, 1)),
    "padding": (_pads, (0, 0, 0, 0)),
    "dilation": (_positive_pair, (1, 1)),
    "groups": (_positive_int, 1),
    "bias": (_bool, True),
}
_POOL_ATTRS = {
    "kernel": (_positive_pair, REQUIRED),
    "stride": (_positive_pair, None),  # None: equal to the kernel
    "padding": (_pads, (0, 0, 0, 0)),
    "ceil_mode": (_bool, False),
}

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("input", {"shape": (_shape, REQUIRED)}, 0, _input_infer),
        OpSpec("conv2d", _CONV_ATTRS, 1, _conv_infer, _conv_gemm, ("weight", "bias")),
        OpSpec(
            "linear",
            {"out_features": (_positive_int, REQUIRED), "bias": (_bool, True)},
            1,
            _linear_infer,
            _linear_gemm,
            ("weight", "bias"),
        ),
        OpSpec("matmul", {}, 2, _matmul_infer, _matmul_gemm),
        OpSpec(
            "batchnorm",
            {"eps": (_number, 1e-5)},
            1,
            _bn_infer,
            params=("gamma", "beta", "mean", "var"),
        ),
        OpSpec("layernorm", {"eps": (_number, 1e-5)}, 1, _same, params=("gamma", "beta")),
        OpSpec("relu", {}, 1, _same),
        OpSpec("relu6", {}, 1, _same),
        OpSpec("silu", {}, 1, _same),
        OpSpec("gelu", {}, 1, _same),
        OpSpec("sigmoid", {}, 1, _same),
        OpSpec("softmax", {"axis": (_int, -1)}, 1, _same),
        OpSpec("identity", {}, 1, _same),
        OpSpec("add", {}, None, _elementwise),
        # multiplication by a constant tensor (ONNX Mul with an initializer), broadcast
        OpSpec("mul", {}, 1, _same, params=("value",)),
        OpSpec("concat", {"axis": (_int, 1)}, None, _concat_infer),
        OpSpec("maxpool", _POOL_ATTRS, 1, _pool_infer),
        OpSpec("avgpool", {**_POOL_ATTRS, "count_include_pad": (_bool, True)}, 1, _pool_infer),
        OpSpec("globalavgpool", {}, 1, _gap_infer),
        OpSpec("flatten", {"axis": (_int, 1)}, 1, _flatten_infer),
        OpSpec("reshape", {"shape": (_int_list, REQUIRED)}, 1, _reshape_infer),
        OpSpec("transpose", {"perm": (_int_list, REQUIRED)}, 1, _transpose_infer),
    ]
}

#: ops that are GEMMs on the PE grid (they have a GemmView and count MACs)
GEMM_OPS = frozenset(name for name, spec in OPS.items() if spec.gemm is not OpSpec.gemm)


def parse_attrs(op: str, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and normalise the attributes of an op; `where` prefixes error messages."""
    spec = OPS.get(op)
    if spec is None:
        import difflib

        near = difflib.get_close_matches(op, OPS, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise GraphError(f"{where}: unknown op {op!r}{hint}; expected one of: {', '.join(sorted(OPS))}")
    unknown = set(raw) - set(spec.attrs)
    if unknown:
        import difflib

        key = sorted(unknown)[0]
        near = difflib.get_close_matches(key, spec.attrs, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        allowed = ", ".join(spec.attrs) or "none"
        raise GraphError(f"{where}.{key}: expected an attribute of op '{op}' ({allowed}); found unknown "
                         f"attribute {key!r}{hint} (op '{op}' has no attribute '{key}')")
    attrs: dict[str, Any] = {}
    for key, (parse, default) in spec.attrs.items():
        if key in raw:
            attrs[key] = parse(raw[key], f"{where}.{key}")
        elif default is REQUIRED:
            raise GraphError(f"{where}.{key}: expected {key} (op '{op}' needs attribute '{key}'); "
                             "found nothing: the key is missing")
        else:
            attrs[key] = default
    if op in ("maxpool", "avgpool") and attrs["stride"] is None:
        attrs["stride"] = attrs["kernel"]
    return attrs
