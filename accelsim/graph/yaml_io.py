"""Shape-only graph YAML: the zoo format in `workloads/`.

    name: resnet18
    inputs: [{name: input, shape: [3, 224, 224]}]     # C, H, W (batch excluded)
    layers:
      - {name: conv1, op: conv2d, out_channels: 64, kernel: 7, stride: 2, padding: 3, bias: false}
      - {name: bn1, op: batchnorm}                     # reads the previous layer by default
      - {name: add1, op: add, inputs: [bn2, conv1]}
    outputs: [fc]                                      # optional: unconsumed layers by default
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import GraphError
from .ir import Graph, Node, make_node
from .ops import OPS, REQUIRED, _pads

_TOP_KEYS = {"name", "description", "source", "inputs", "layers", "outputs"}


def graph_from_dict(doc: Any, where: str) -> Graph:
    if not isinstance(doc, dict):
        raise GraphError(f"{where}: expected a mapping with 'name', 'inputs' and 'layers', found {type(doc).__name__}")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise GraphError(f"{where}: unknown key '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(_TOP_KEYS))}")
    for key in ("name", "inputs", "layers"):
        if key not in doc:
            raise GraphError(f"{where}: missing key '{key}'")
    if not isinstance(doc["inputs"], list) or not isinstance(doc["layers"], list):
        raise GraphError(f"{where}: 'inputs' and 'layers' must be lists")
    nodes: list[Node] = []
    for i, inp in enumerate(doc["inputs"]):
        if not isinstance(inp, dict) or set(inp) != {"name", "shape"}:
            raise GraphError(f"{where}: inputs[{i}]: expected {{name: ..., shape: [C, H, W]}}, found {inp!r}")
        nodes.append(make_node(where, str(inp["name"]), "input", (), {"shape": inp["shape"]}))
    for i, layer in enumerate(doc["layers"]):
        if not isinstance(layer, dict) or "name" not in layer or "op" not in layer:
            raise GraphError(f"{where}: layers[{i}]: expected a mapping with 'name' and 'op', found {layer!r}")
        raw = dict(layer)
        name, op = str(raw.pop("name")), str(raw.pop("op"))
        inputs = raw.pop("inputs", None)
        if inputs is None:
            inputs = [nodes[-1].name]
        elif isinstance(inputs, str):
            inputs = [inputs]
        nodes.append(make_node(where, name, op, inputs, raw))
    return Graph(str(doc["name"]), nodes, doc.get("outputs"), source=where)


def load_graph_yaml(path: str | Path) -> Graph:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"{path}: cannot read: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise GraphError(f"{path}: YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}") from None
    return graph_from_dict(doc, str(path))


def _compact(op: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes that differ from their defaults, written in their shortest form."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        default = OPS[op].attrs[key][1]
        if key == "padding":
            default = _pads(default, key) if default is not REQUIRED else default
        if op in ("maxpool", "avgpool") and key == "stride" and value == attrs["kernel"]:
            continue
        if default is not REQUIRED and value == default:
            continue
        if isinstance(value, tuple):
            if key == "padding" and value[:2] == value[2:]:
                value = value[:2]
            value = value[0] if len(set(value)) == 1 else list(value)
        out[key] = value
    return out


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    layers = []
    prev = None
    inputs = []
    for node in graph.nodes:
        if node.op == "input":
            inputs.append({"name": node.name, "shape": list(node.attrs["shape"])})
        else:
            entry: dict[str, Any] = {"name": node.name, "op": node.op}
            if list(node.inputs) != [prev]:
                entry["inputs"] = list(node.inputs)
            entry.update(_compact(node.op, node.attrs))
            layers.append(entry)
        prev = node.name
    doc: dict[str, Any] = {"name": graph.name, "inputs": inputs, "layers": layers}
    consumed = {i for n in graph.nodes for i in n.inputs}
    default_outputs = [n.name for n in graph.nodes if n.name not in consumed and n.op != "input"]
    if graph.outputs != default_outputs:
        doc["outputs"] = list(graph.outputs)
    return doc


class _FlowLayers(yaml.SafeDumper):
    pass


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    flow = "op" in data or set(data) == {"name", "shape"}  # one line per layer
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


_FlowLayers.add_representer(dict, _represent_dict)


def dump_graph_yaml(graph: Graph, header: str = "") -> str:
    body = yaml.dump(graph_to_dict(graph), Dumper=_FlowLayers, sort_keys=False, width=200)
    return (header + body) if header else body
