"""tools/accumulator_width.py on a small batch: the properties its report rests on.

At 32 bits nothing overflows and integer top-1 is the fake-quant top-1 (within one image); at
16 bits the accumulator overflows, the quantizer raises weight scales for the narrow width, and
saturate and wrap give different outputs (at 12 bits both collapse to one constant output); cost falls monotonically as the accumulator narrows
and does not depend on the overflow mode.
"""
import importlib.util
from pathlib import Path

import numpy as np

import accelsim

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("accumulator_width", REPO / "tools" / "accumulator_width.py")
aw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aw)

MODEL = "tiny_vgg"


def test_overflow_accuracy_and_cost_across_widths():
    x, y = aw.test_images(32)
    assert len(y) == 32 and len(np.unique(y)) == 10  # the stride keeps every class
    codes = {}
    rows = aw.measure_model(MODEL, x, y, widths=(16, 32), modes=aw.MODES, codes=codes)
    by = {(r["accumulator_bits"], r["overflow_mode"]): r for r in rows}
    assert set(by) == {(b, m) for b in (16, 32) for m in aw.MODES}

    for mode in aw.MODES:
        r = by[(32, mode)]
        assert r["fixed_overflow_events"] == 0 and r["fitted_overflow_events"] == 0
        assert r["fitted_same_as_32bit_model"]
        assert abs(r["int32_top1"] - r["fakequant32_top1"]) * len(y) <= 1
        assert r["fixed_top1"] == r["int32_top1"]
        assert r["energy_saved_uj"] == 0 and r["area_saved_mm2"] == 0
    np.testing.assert_array_equal(codes[("fixed", 32, "wrap")], codes[("fixed", 32, "saturate")])

    r16 = by[(16, "wrap")]
    assert r16["fixed_overflow_events"] > 0 and r16["fitted_overflow_events"] > 0
    assert r16["fixed_biases_not_fitting"] > 0  # the 32-bit model's folded biases do not fit 16 bits ...
    assert r16["fitted_channels_raised"] > 0 and not r16["fitted_same_as_32bit_model"]  # ... so it re-scales
    assert r16["acc_bits_needed_32"] > 16
    for variant in ("fixed", "fitted"):
        assert not np.array_equal(codes[(variant, 16, "wrap")], codes[(variant, 16, "saturate")]), variant
    assert r16["energy_saved_uj"] > 0 and r16["area_saved_mm2"] > 0

    # cost: strictly cheaper with every narrower width, the same for wrap and saturate
    graph = accelsim.load_model(MODEL)
    cost = aw.cost_rows(graph, accelsim.load_hw(aw.HW_NAME), widths=aw.WIDTHS, modes=aw.MODES)
    for mode in aw.MODES:
        c = sorted((r for r in cost if r["overflow_mode"] == mode), key=lambda r: r["accumulator_bits"])
        for key in ("energy_uj", "area_mm2", "energy_acc_add_uj"):
            values = [r[key] for r in c]
            assert all(a < b for a, b in zip(values, values[1:])), (mode, key, values)
        saved = [r["energy_saved_pct"] for r in c]
        assert all(a > b for a, b in zip(saved, saved[1:])) and saved[-1] == 0
    wrap = {r["accumulator_bits"]: r for r in cost if r["overflow_mode"] == "wrap"}
    for r in cost:
        if r["overflow_mode"] == "saturate":
            assert r["energy_uj"] == wrap[r["accumulator_bits"]]["energy_uj"]
            assert r["area_mm2"] == wrap[r["accumulator_bits"]]["area_mm2"]
