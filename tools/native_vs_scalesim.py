"""Per-layer table for reports/native-vs-scalesim.md: SCALE-Sim mode vs native timing.

    /work/venv/bin/python tools/native_vs_scalesim.py > /tmp/table.md
"""
import accelsim
from accelsim.paths import REPO_ROOT

REF = REPO_ROOT / "tests" / "fixtures" / "reference" / "scalesim"

# (workload, layer, why it is in the table)
LAYERS = [
    (REF / "test.csv", "Inc5b_3x3", "reference layer"),
    (REF / "alexnet.csv", "Conv1", "stride 4 does not divide 224 - 11"),
    ("resnet50", "conv1.conv", "padding 3, stride 2"),
    ("resnet50", "layer1.0.conv1.conv", "1x1, tiles exactly"),
    ("resnet50", "layer4.0.conv2.conv", "3x3 stride 2, padding 1"),
    ("resnet50", "fc", "N = 1000: partial last column fold"),
    ("mobilenet_v2", "features.1.dw.conv", "depthwise, 32 channels"),
    ("mobilenet_v2", "features.14.dw.conv", "depthwise, 576 channels, stride 2"),
    ("bert_base", "encoder.0.attn.scores", "attention: 12 heads as groups"),
    ("bert_base", "encoder.0.ffn.output", "K = 3072: many K folds"),
]


def main():
    base = accelsim.load_hw("scalesim-32x32-ws")
    hws = {df: base.replace("pe_array.dataflow", df) for df in ("weight_stationary", "output_stationary")}
    cache = {}

    def run(workload, hw, timing):
        key = (str(workload), hw.pe_array.dataflow, hw.pe_array.weight_preload, timing)
        if key not in cache:
            g = accelsim.load_model(workload)
            cache[key] = accelsim.simulate(g, hw, timing=timing).layers.set_index("layer")
        return cache[key]

    print("| layer | why | M x K x N (groups) | ws SCALE-Sim | ws native serial | ws native double-buffered "
          "| os SCALE-Sim | os native serial |")
    print("|---|---|---|---|---|---|---|---|")
    for workload, layer, why in LAYERS:
        ws = hws["weight_stationary"]
        os_ = hws["output_stationary"]
        name = getattr(workload, "stem", workload)
        ss = run(workload, ws, "scalesim").loc[layer]
        nat = run(workload, ws, "native").loc[layer]
        db = run(workload, ws.replace("pe_array.weight_preload", "double_buffered"), "native").loc[layer]
        oss = run(workload, os_, "scalesim").loc[layer]
        osn = run(workload, os_, "native").loc[layer]
        shape = f"{nat.M} x {nat.K} x {nat.N}" + (f" ({nat.groups})" if nat.groups > 1 else "")
        if ss.M != nat.M:
            shape += f"; SCALE-Sim M = {ss.M}"
        print(f"| {name}:{layer} | {why} | {shape} | {ss.total_cycles:,} | {nat.total_cycles:,} | "
              f"{db.total_cycles:,} | {oss.total_cycles:,} | {osn.total_cycles:,} |")


if __name__ == "__main__":
    main()
