"""Generate the shape-only zoo YAML files in workloads/ (run: python tools/gen_zoo.py).

Each network follows the paper that introduced it (layer shapes as in torchvision where
the paper leaves a choice open); the MAC totals are checked in tests/test_zoo.py against
the published figures.
"""
from __future__ import annotations

from pathlib import Path

from accelsim.graph.builder import GraphBuilder
from accelsim.graph.yaml_io import dump_graph_yaml

ROOT = Path(__file__).resolve().parents[1]


def conv_bn_act(b: GraphBuilder, prefix: str, out_ch: int, k: int, s: int = 1, groups: int = 1,
                act: str | None = "relu", inputs=None) -> str:
    b.add("conv2d", f"{prefix}.conv", inputs, out_channels=out_ch, kernel=k, stride=s,
          padding=k // 2, groups=groups, bias=False)
    b.add("batchnorm", f"{prefix}.bn")
    if act:
        b.add(act, f"{prefix}.{act}")
    return b.last


def alexnet() -> GraphBuilder:
    """Krizhevsky et al. 2012: two-tower convs expressed as groups=2; LRN omitted (no MACs)."""
    b = GraphBuilder("alexnet", "Krizhevsky, Sutskever, Hinton, NeurIPS 2012 (groups=2 in conv2/4/5)")
    b.input([3, 224, 224])
    for i, (ch, k, s, p, g, pool) in enumerate(
        [(96, 11, 4, 2, 1, True), (256, 5, 1, 2, 2, True), (384, 3, 1, 1, 1, False),
         (384, 3, 1, 1, 2, False), (256, 3, 1, 1, 2, True)], start=1):
        b.add("conv2d", f"conv{i}", out_channels=ch, kernel=k, stride=s, padding=p, groups=g)
        b.add("relu", f"relu{i}")
        if pool:
            b.add("maxpool", f"pool{i}", kernel=3, stride=2)
    b.add("flatten", "flatten")
    for i, n in enumerate([4096, 4096, 1000], start=6):
        b.add("linear", f"fc{i}", out_features=n)
        if n != 1000:
            b.add("relu", f"relu{i}")
    return b


def vgg16() -> GraphBuilder:
    b = GraphBuilder("vgg16", "Simonyan & Zisserman, ICLR 2015, configuration D")
    b.input([3, 224, 224])
    cfg = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    for stage, widths in enumerate(cfg, start=1):
        for j, ch in enumerate(widths, start=1):
            b.add("conv2d", f"conv{stage}_{j}", out_channels=ch, kernel=3, padding=1)
            b.add("relu", f"relu{stage}_{j}")
        b.add("maxpool", f"pool{stage}", kernel=2)
    b.add("flatten", "flatten")
    b.add("linear", "fc6", out_features=4096)
    b.add("relu", "relu6")
    b.add("linear", "fc7", out_features=4096)
    b.add("relu", "relu7")
    b.add("linear", "fc8", out_features=1000)
    return b


def _resnet(name: str, blocks: list[int], bottleneck: bool) -> GraphBuilder:
    b = GraphBuilder(name, "He et al., CVPR 2016 (torchvision v1.5: stride on the 3x3 conv)")
    b.input([3, 224, 224])
    conv_bn_act(b, "conv1", 64, 7, 2)
    b.add("maxpool", "maxpool", kernel=3, stride=2, padding=1)
    in_ch = 64
    for stage, (n, width) in enumerate(zip(blocks, [64, 128, 256, 512]), start=1):
        out_ch = width * 4 if bottleneck else width
        for i in range(n):
            p = f"layer{stage}.{i}"
            stride = 2 if (i == 0 and stage > 1) else 1
            x = b.last
            if bottleneck:
                conv_bn_act(b, f"{p}.conv1", width, 1)
                conv_bn_act(b, f"{p}.conv2", width, 3, stride)
                conv_bn_act(b, f"{p}.conv3", out_ch, 1, act=None)
            else:
                conv_bn_act(b, f"{p}.conv1", width, 3, stride)
                conv_bn_act(b, f"{p}.conv2", width, 3, act=None)
            main = b.last
            shortcut = x
            if stride != 1 or in_ch != out_ch:
                shortcut = conv_bn_act(b, f"{p}.downsample", out_ch, 1, stride, act=None, inputs=x)
            b.add("add", f"{p}.add", inputs=[main, shortcut])
            b.add("relu", f"{p}.relu")
            in_ch = out_ch
    b.add("globalavgpool", "avgpool")
    b.add("flatten", "flatten")
    b.add("linear", "fc", out_features=1000)
    return b


def mobilenet_v1() -> GraphBuilder:
    b = GraphBuilder("mobilenet_v1", "Howard et al. 2017, width 1.0, 224x224 (569M mult-adds, Table 8)")
    b.input([3, 224, 224])
    conv_bn_act(b, "conv0", 32, 3, 2)
    in_ch = 32
    spec = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (ch, s) in enumerate(spec, start=1):
        conv_bn_act(b, f"block{i}.dw", in_ch, 3, s, groups=in_ch)
        conv_bn_act(b, f"block{i}.pw", ch, 1)
        in_ch = ch
    b.add("globalavgpool", "avgpool")
    b.add("flatten", "flatten")
    b.add("linear", "fc", out_features=1000)
    return b


def mobilenet_v2() -> GraphBuilder:
    b = GraphBuilder("mobilenet_v2", "Sandler et al., CVPR 2018, width 1.0, 224x224 (300M mult-adds, Table 4)")
    b.input([3, 224, 224])
    conv_bn_act(b, "features.0", 32, 3, 2, act="relu6")
    in_ch = 32
    idx = 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{idx}"
            x = b.last
            hidden = in_ch * t
            if t != 1:
                conv_bn_act(b, f"{p}.expand", hidden, 1, act="relu6")
            conv_bn_act(b, f"{p}.dw", hidden, 3, stride, groups=hidden, act="relu6")
            conv_bn_act(b, f"{p}.project", c, 1, act=None)
            if stride == 1 and in_ch == c:
                b.add("add", f"{p}.add", inputs=[b.last, x])
            in_ch = c
            idx += 1
    conv_bn_act(b, f"features.{idx}", 1280, 1, act="relu6")
    b.add("globalavgpool", "avgpool")
    b.add("flatten", "flatten")
    b.add("linear", "classifier", out_features=1000)
    return b


def bert_base(seq: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072, layers: int = 12) -> GraphBuilder:
    """The encoder of Devlin et al. 2019 at sequence length 128; embeddings and pooler omitted."""
    b = GraphBuilder("bert_base", "Devlin et al., NAACL 2019, BERT-base encoder (12 layers) at sequence length 128")
    b.input([seq, hidden], name="embeddings")
    head_dim = hidden // heads
    for i in range(layers):
        p = f"encoder.{i}"
        x = b.last
        split = {}
        for proj in ("query", "key", "value"):
            b.add("linear", f"{p}.attn.{proj}", inputs=x, out_features=hidden)
            b.add("reshape", f"{p}.attn.{proj}.split", shape=[0, seq, heads, head_dim])
            perm = [0, 2, 3, 1] if proj == "key" else [0, 2, 1, 3]
            split[proj] = b.add("transpose", f"{p}.attn.{proj}.heads", perm=perm)
        b.add("matmul", f"{p}.attn.scores", inputs=[split["query"], split["key"]])
        b.add("softmax", f"{p}.attn.softmax")
        b.add("matmul", f"{p}.attn.context", inputs=[b.last, split["value"]])
        b.add("transpose", f"{p}.attn.merge", perm=[0, 2, 1, 3])
        b.add("reshape", f"{p}.attn.merge.reshape", shape=[0, seq, hidden])
        b.add("linear", f"{p}.attn.output", out_features=hidden)
        b.add("add", f"{p}.attn.residual", inputs=[b.last, x])
        b.add("layernorm", f"{p}.attn.norm")
        y = b.last
        b.add("linear", f"{p}.ffn.intermediate", out_features=ffn)
        b.add("gelu", f"{p}.ffn.gelu")
        b.add("linear", f"{p}.ffn.output", out_features=hidden)
        b.add("add", f"{p}.ffn.residual", inputs=[b.last, y])
        b.add("layernorm", f"{p}.ffn.norm")
    return b


ZOO = {
    "alexnet": alexnet,
    "vgg16": vgg16,
    "resnet18": lambda: _resnet("resnet18", [2, 2, 2, 2], bottleneck=False),
    "resnet50": lambda: _resnet("resnet50", [3, 4, 6, 3], bottleneck=True),
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "bert_base": bert_base,
}


def main() -> None:
    for name, make in ZOO.items():
        builder = make()
        graph = builder.build()
        header = (
            f"# {name}: shape-only workload, generated by tools/gen_zoo.py; do not edit by hand.\n"
            f"# Source: {builder.source}\n"
            f"# Total MACs at batch 1: {graph.total_macs():,}\n"
        )
        out = ROOT / "workloads" / f"{name}.yaml"
        out.write_text(dump_graph_yaml(graph, header), encoding="utf-8")
        print(f"{out.relative_to(ROOT)}: {len(graph)} nodes, {graph.total_macs() / 1e6:,.1f} MMAC")


if __name__ == "__main__":
    main()
