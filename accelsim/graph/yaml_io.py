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


def _describe(value: Any) -> str:
    from ..config.validate import describe

    return describe(value)


def _name(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or len(value) > 200:
        raise GraphError(f"{where}: {field}: expected a name (a non-empty one-line string of at most "
                         f"200 characters); found {_describe(value)}")
    return value


def _names(value: Any, where: str, field: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise GraphError(f"{where}: {field}: expected a list of layer names; found {_describe(value)}")
    return [_name(v, where, f"{field}[{i}]") for i, v in enumerate(value)]


def graph_from_dict(doc: Any, where: str) -> Graph:
    """A Graph from a YAML-shaped dict; every error names `where` (the file) and the field."""
    if not isinstance(doc, dict):
        found = "an empty document" if doc is None else _describe(doc)
        raise GraphError(f"{where}: (top level): expected a mapping with keys name, inputs, layers; found {found}")
    for key in doc:
        if key not in _TOP_KEYS:
            raise GraphError(f"{where}: {key}: expected one of the keys {', '.join(sorted(_TOP_KEYS))}; "
                             f"found unknown key {key!r}")
    for key in ("name", "inputs", "layers"):
        if key not in doc:
            raise GraphError(f"{where}: {key}: expected {key} (required); found nothing: the key is missing")
    _name(doc["name"], where, "name")
    for key in ("description", "source"):
        if key in doc and not isinstance(doc[key], str):
            raise GraphError(f"{where}: {key}: expected a string; found {_describe(doc[key])}")
    for key in ("inputs", "layers"):
        if not isinstance(doc[key], list):
            raise GraphError(f"{where}: {key}: expected a list; found {_describe(doc[key])}")
    nodes: list[Node] = []
    defined: dict[str, str] = {}

    def define(name: str, field: str) -> None:
        if name in defined:
            raise GraphError(f"{where}: {field}: expected a unique layer name; found {name!r}, "
                             f"already the name of {defined[name]}")
        defined[name] = field

    for i, inp in enumerate(doc["inputs"]):
        field = f"inputs[{i}]"
        if not isinstance(inp, dict) or set(inp) != {"name", "shape"}:
            raise GraphError(f"{where}: {field}: expected a mapping {{name: ..., shape: [C, H, W]}}; "
                             f"found {_describe(inp)}")
        name = _name(inp["name"], where, f"{field}.name")
        define(name, field)
        nodes.append(make_node(where, name, "input", (), {"shape": inp["shape"]}))
    if not nodes:
        raise GraphError(f"{where}: inputs: expected at least one input; found an empty list")
    for i, layer in enumerate(doc["layers"]):
        field = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise GraphError(f"{where}: {field}: expected a mapping with 'name' and 'op'; found {_describe(layer)}")
        for key in ("name", "op"):
            if key not in layer:
                raise GraphError(f"{where}: {field}.{key}: expected {key} (required); found nothing: the key is missing")
        raw = dict(layer)
        for key in raw:
            if not isinstance(key, str):
                raise GraphError(f"{where}: {field}: expected attribute names (strings) as keys; "
                                 f"found key {_describe(key)}")
        name = _name(raw.pop("name"), where, f"{field}.name")
        op = raw.pop("op")
        if not isinstance(op, str):
            raise GraphError(f"{where}: layer '{name}'.op: expected an op name; found {_describe(op)}")
        define(name, f"{field} ('{name}')")
        inputs = raw.pop("inputs", None)
        inputs = [nodes[-1].name] if inputs is None else _names(inputs, where, f"layer '{name}'.inputs")
        for j, inp in enumerate(inputs):
            if inp not in defined or inp == name:
                raise GraphError(f"{where}: layer '{name}'.inputs[{j}]: expected the name of a layer "
                                 f"defined before it; found {inp!r}")
        nodes.append(make_node(where, name, op, inputs, raw))
    outputs = doc.get("outputs")
    if outputs is not None:
        outputs = _names(outputs, where, "outputs")
        for j, out in enumerate(outputs):
            if out not in defined:
                raise GraphError(f"{where}: outputs[{j}]: expected the name of a layer; found {out!r}")
    return Graph(doc["name"], nodes, outputs, source=where)


def load_graph_yaml(path: str | Path) -> Graph:
    """A graph YAML file -> Graph, read by accelsim's one strict YAML loader (duplicate keys,
    alias bombs, control characters and huge files are errors); shapes and counts are
    checked at load, so a bad dimension is reported with its layer before any work."""
    from ..config.load import load_yaml_file
    from ..errors import ConfigError

    path = Path(path)
    try:
        doc = load_yaml_file(path)
    except ConfigError as exc:
        raise GraphError(str(exc)) from None
    graph = graph_from_dict(doc, str(path))
    graph.layers(1)  # shapes, element and MAC counts at batch 1
    return graph


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
