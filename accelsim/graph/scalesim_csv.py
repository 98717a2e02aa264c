"""SCALE-Sim topology CSV: import (conv and M,N,K GEMM forms) and export.

Conv form:  Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
GEMM form:  Layer, M, N, K,
The trailing comma is optional. SCALE-Sim layers are independent (no padding, batch 1), so
each imported layer reads its own input tensor `<layer>.ifmap`. A GEMM row becomes a linear
layer on an (M, K) input, so its GEMM view is exactly M x K x N.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import GraphError
from .builder import GraphBuilder
from .ir import Graph

CONV_HEADER = ["Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
               "Channels", "Num Filter", "Strides"]
GEMM_HEADER = ["Layer", "M", "N", "K"]


def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.strip().split(",")]
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def parse_scalesim_csv(text: str, where: str, name: str = "topology") -> Graph:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise GraphError(f"{where}: empty topology file")
    header = _fields(lines[0][1])
    is_gemm = [h.lower() for h in header] == [h.lower() for h in GEMM_HEADER]
    if not is_gemm and len(header) != len(CONV_HEADER):
        raise GraphError(
            f"{where}: line {lines[0][0]}: expected a header of {len(CONV_HEADER)} conv columns "
            f"({', '.join(CONV_HEADER)}) or the GEMM form ({', '.join(GEMM_HEADER)}); found {len(header)} columns"
        )
    b = GraphBuilder(name, where)
    ncols = len(GEMM_HEADER) if is_gemm else len(CONV_HEADER)
    for lineno, line in lines[1:]:
        cols = _fields(line)
        if len(cols) != ncols:
            raise GraphError(f"{where}: line {lineno}: expected {ncols} fields, found {len(cols)}: {line.strip()!r}")
        layer = cols[0]
        try:
            values = [int(v) for v in cols[1:]]
        except ValueError:
            raise GraphError(f"{where}: line {lineno}: expected integers after the layer name, found {cols[1:]}") from None
        if min(values) < 1:
            raise GraphError(f"{where}: line {lineno}: sizes must be >= 1, found {values}")
        if is_gemm:
            m, n, k = values
            b.input([m, k], name=f"{layer}.ifmap")
            b.add("linear", layer, out_features=n, bias=False)
        else:
            h, w, fh, fw, c, nf, s = values
            if fh > h or fw > w:
                raise GraphError(f"{where}: line {lineno}: filter {fh}x{fw} is larger than the ifmap {h}x{w}")
            b.input([c, h, w], name=f"{layer}.ifmap")
            b.add("conv2d", layer, out_channels=nf, kernel=[fh, fw], stride=s, bias=False)
    if not b.nodes:
        raise GraphError(f"{where}: no layers after the header")
    return b.build()


def load_scalesim_csv(path: str | Path) -> Graph:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"{path}: cannot read: {exc}") from None
    return parse_scalesim_csv(text, str(path), path.stem)


def to_scalesim_csv(graph: Graph) -> str:
    """Conv-form CSV of the graph's conv and linear layers (batch 1).

    Padding is written as a larger ifmap (SCALE-Sim has none); a grouped conv becomes one
    row per group, as SCALE-Sim users split depthwise layers; a linear layer uses
    SCALE-Sim's own GEMM-to-conv mapping (ifmap M x K, filter 1 x K, 1 channel, N filters),
    and a batched matmul (attention heads) one such row per head.
    """
    rows = [", ".join(CONV_HEADER) + ","]
    shapes = graph.shapes(1)
    for node in graph.nodes:
        if node.op == "conv2d":
            a = node.attrs
            if a["dilation"] != (1, 1) or a["stride"][0] != a["stride"][1]:
                raise GraphError(
                    f"layer '{node.name}': SCALE-Sim CSV has one stride and no dilation; "
                    f"found stride {a['stride']}, dilation {a['dilation']}"
                )
            _, c, h, w = shapes[node.inputs[0]]
            top, left, bottom, right = a["padding"]
            fh, fw = a["kernel"]
            g = a["groups"]
            vals = [h + top + bottom, w + left + right, fh, fw, c // g, a["out_channels"] // g, a["stride"][0]]
            names = [node.name] if g == 1 else [f"{node.name}_g{i}" for i in range(g)]
            rows += [", ".join([n] + [str(v) for v in vals]) + "," for n in names]
        elif node.op in ("linear", "matmul"):
            gemm = graph.layer(node.name, 1).gemm
            vals = [gemm.M, gemm.K, 1, gemm.K, 1, gemm.N, 1]
            names = [node.name] if gemm.groups == 1 else [f"{node.name}_g{i}" for i in range(gemm.groups)]
            rows += [", ".join([n] + [str(v) for v in vals]) + "," for n in names]
    return "\n".join(rows) + "\n"
