"""timing="scalesim" reproduces SCALE-Sim 3.0.0's per-layer "Total Cycles" to the cycle.

References: SCALE-Sim's own COMPUTE_REPORT.csv files, from reference/scalesim (Inception 5b,
AlexNet on 32x32) and tests/fixtures/scalesim (ResNet-50 layers and odd shapes on 32x32, 16x64
and 64x8 arrays in ws/os/is, and the GEMM topology form; see generate.sh there).
"""
import csv
from pathlib import Path

import pytest

from accelsim.config import load_hw
from accelsim.graph.builder import GraphBuilder
from accelsim.graph.zoo import load_model
from accelsim.sim.grid import simulate_grid
from accelsim.sim.timing import scalesim_ofmap_size

HERE = Path(__file__).resolve().parent
OWN = HERE / "fixtures" / "scalesim"


def _cases():
    shared = HERE / "fixtures" / "reference" / "scalesim"
    for run, topo in [("test_ws_calc", "test"), ("test_os_calc", "test"), ("test_is_calc", "test"),
                      ("alexnet_ws_calc", "alexnet")]:
        df = run.split("_")[1]
        yield pytest.param(shared / f"r32x32_{df}_calc.cfg", shared / f"{topo}.csv",
                           shared / "outputs" / run / "COMPUTE_REPORT.csv", id=run)
    for report in sorted(OWN.glob("outputs/*/*/COMPUTE_REPORT.csv")):
        topo, run = report.parts[-3], report.parts[-2]
        yield pytest.param(OWN / f"{run}.cfg", OWN / f"{topo}.csv", report, id=f"{topo}-{run}")


CASES = list(_cases())


def _total_cycles(report: Path) -> list[int]:
    with open(report) as f:
        rows = list(csv.reader(f))
    col = [h.strip() for h in rows[0]].index("Total Cycles")
    return [int(r[col]) for r in rows[1:] if r]


def test_the_reference_set_is_complete():
    assert len(CASES) >= 4 + 18  # shared references, plus 9 configs x (mix, gemm)


@pytest.mark.parametrize("cfg, topo, report", CASES)
def test_every_reference_layer_to_the_cycle(cfg, topo, report):
    expected = _total_cycles(report)
    result = simulate_grid(load_model(topo), load_hw(cfg), timing="scalesim")
    assert result.layers["total_cycles"].tolist() == expected


def test_readme_figures(reference_dir):
    cycles = {}
    for df in ("ws", "os", "is"):
        hw = load_hw(reference_dir / "scalesim" / f"r32x32_{df}_calc.cfg")
        cycles[df] = simulate_grid(load_model(reference_dir / "scalesim" / "test.csv"), hw, timing="scalesim").summary["total_cycles"]
    assert cycles == {"ws": 77_111, "os": 21_479, "is": 25_811}
    hw = load_hw("scalesim-32x32-ws")  # the YAML twin of r32x32_ws_calc.cfg
    r = simulate_grid(load_model(reference_dir / "scalesim" / "alexnet.csv"), hw, timing="scalesim")
    assert r.layers["total_cycles"].tolist() == [112_283, 373_799, 185_759, 278_639, 185_759]


def test_output_size_formula_is_scalesims():
    assert scalesim_ofmap_size(224, 11, 4) == 55  # floor((224 - 11) / 4) + 1 = 54
    assert scalesim_ofmap_size(56, 1, 2) == 29    # 28 in the usual formula
    assert scalesim_ofmap_size(7, 3, 1) == 5


def _conv_graph(**attrs):
    b = GraphBuilder("t", "test")
    b.input([attrs.pop("channels"), 14, 14], name="x")
    b.add("conv2d", "conv", **attrs)
    return b.build()


def test_padding_counts_as_a_larger_ifmap_and_groups_as_separate_layers():
    hw = load_hw("scalesim-32x32-ws")
    padded = _conv_graph(channels=64, out_channels=64, kernel=3, padding=1, stride=2)
    r = simulate_grid(padded, hw, timing="scalesim").layers.iloc[0]
    # ifmap 16x16 after padding: ceil((16 - 3 + 2) / 2) = 8 -> M = 64; K = 576, N = 64
    assert r["M"] == 64 and r["total_cycles"] == 18 * 2 * (2 * 32 + 32 + 64 - 2) - 1
    dw = _conv_graph(channels=64, out_channels=64, kernel=3, padding=1, groups=64)
    r = simulate_grid(dw, hw, timing="scalesim").layers.iloc[0]
    # one SCALE-Sim layer per channel: M = 196, K = 9, N = 1, one fold each, -1 each
    assert r["groups_per_fold"] == 1 and r["total_cycles"] == 64 * ((2 * 32 + 32 + 196 - 2) - 1)


def test_scalesim_mode_ignores_double_buffering_and_packing_native_mode_does_not():
    hw = load_hw("scalesim-32x32-ws")
    g = _conv_graph(channels=64, out_channels=64, kernel=3, padding=1, groups=64)
    db = hw.replace("pe_array.weight_preload", "double_buffered")
    one = hw.replace("pe_array.group_packing", "one_per_fold")
    ss = [simulate_grid(g, h, timing="scalesim").summary["total_cycles"] for h in (hw, db, one)]
    assert ss[0] == ss[1] == ss[2]
    native = [simulate_grid(g, h).summary["total_cycles"] for h in (hw, db, one)]
    assert native[1] < native[0] < native[2]
