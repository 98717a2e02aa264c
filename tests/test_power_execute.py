"""PowerQuant on the integer datapath: each realisation against the fake-quant reference, the
order-aware table kernel against the cycle-stepped array kernels and the plain accumulation
reference, one layer against the paper's formula written here, and the ablation's failure."""
import warnings

import numpy as np
import pytest

import accelsim
from accelsim.graph.builder import GraphBuilder
from accelsim.sim.accumulator import reference_gemm
from accelsim.sim.execute import _table_gemm
from accelsim.sim.kernels import run_grouped_gemm

MODELS = ("tiny_mobilenet_v2", "tiny_resnet", "tiny_vgg")


def power_hw(products="product_lut", **fields):
    hw = accelsim.load_hw("edge-npu-16x16").replace("quantization.power_unit", "lut")
    hw = hw.replace("quantization.power_products", products)
    for path, value in fields.items():
        hw = hw.replace(path.replace("__", "."), value)
    return hw


@pytest.fixture(scope="module")
def images():
    x, y = accelsim.load_dataset("mnist5k").split("test")
    idx = np.linspace(0, len(y) - 1, 60).astype(int)
    return x[idx], y[idx]


@pytest.mark.parametrize("products", ["product_lut", "decode_lut"])
@pytest.mark.parametrize("model", MODELS)
def test_each_realisation_matches_fake_quant(images, products, model):
    x, y = images
    hw = power_hw(products)
    g = accelsim.load_model(model)
    for wb, ab in ((8, 8), (4, 8)):
        qg = accelsim.quantize(g, {"method": "dfq+powerquant", "weight_bits": wb, "activation_bits": ab}, hw=hw)
        assert 0.1 < qg.info["power_exponent"] < 1.0
        r = accelsim.execute(qg, hw, x, progress=False)
        fq = qg.run(x)
        grid = qg.activations[g.outputs[0]]
        diff = np.abs(r.output_codes.astype(np.int64) - grid.quantize(fq))
        assert (diff <= 1).mean() >= 0.999, (model, products, wb, ab)
        assert abs(float((r.output.argmax(1) == y).mean()) - float((fq.argmax(1) == y).mean())) <= 1 / len(y) + 1e-9
        assert set(r.layers["power_products"]) == {products}


def test_the_sum_power_ablation_fails(images):
    """Raising only the accumulated sum to 1/a is not the paper's arithmetic: far off fake-quant."""
    x, y = images
    hw = power_hw("sum_power")
    g = accelsim.load_model("tiny_resnet")
    qg = accelsim.quantize(g, {"method": "dfq+powerquant"}, hw=hw)
    r = accelsim.execute(qg, hw, x, progress=False)
    fq = qg.run(x)
    diff = np.abs(r.output_codes.astype(np.int64) - qg.activations[g.outputs[0]].quantize(fq))
    assert (diff > 1).mean() > 0.5
    assert float((r.output.argmax(1) == y).mean()) < float((fq.argmax(1) == y).mean()) - 0.2


def _power_linear(rng, k=12, n=3):
    w = rng.normal(0, 0.5, (n, k)).astype(np.float32)
    b = GraphBuilder("plin")
    b.input((k,))
    b.add("linear", "fc", out_features=n, params={"weight": w, "bias": rng.normal(0, 0.2, n).astype(np.float32)})
    b.add("relu", "r")
    return b.build()


def test_one_layer_against_the_papers_formula():
    """acc = start + sum_k sign(q_w) round(2^F ((|q_w| q_x) / (qw qx))^(1/a)), written here with
    Python numbers, and C_n acc = sum_k w_hat x_hat (+ bias) up to the table's rounding."""
    rng = np.random.default_rng(1)
    g = _power_linear(rng)
    x = np.abs(rng.normal(0.5, 0.6, (5, 12))).astype(np.float32)
    hw = power_hw("product_lut", quantization__power_product_frac_bits=12)
    qg = accelsim.quantize(g, {"method": "powerquant", "power_exponent": 0.6, "activation_range": "minmax"}, hw=hw,
                           calibration=x)
    lq = qg.layers["fc"]
    from accelsim.sim.program import lower

    step = next(s for s in lower(qg, hw).steps if s.name == "fc")
    qw, qx, f, a = lq.weight_q.qmax, lq.input_q.qmax, 12, 0.6
    xq = qg.activations["input"].quantize(x)
    assert lq.input_q.offset == 0.0  # a non-negative input: no offset
    for n_img in range(5):
        for o in range(3):
            acc = int(step.accumulator_bias[o])
            exact = 0.0
            for k in range(12):
                qwk, qxk = int(lq.weight_int[o, k]), int(xq[n_img, k])
                acc += (1 if qwk > 0 else -1 if qwk < 0 else 0) * int(
                    np.floor(2**f * (abs(qwk) * qxk / (qw * qx)) ** (1 / a) + 0.5))
                exact += float(lq.weight_q.dequantize(np.array([[qwk]]))[0, 0] if lq.weight_q.axis is None
                               else lq.weight_dequant[o, k]) * float(lq.input_q.dequantize(np.array([qxk]))[0])
            c = float(step.channel_scale[o])
            y = exact + float(lq.bias_float[o])
            assert c * acc == pytest.approx(y, abs=c * (12 / 2 + 1))  # 12 table roundings and the start's
    r = accelsim.execute(qg, hw, x, progress=False)
    fq = qg.run(x)
    out = qg.activations["r"]
    assert np.abs(r.output_codes.astype(np.int64) - out.quantize(fq)).max() <= 1


@pytest.mark.parametrize("dataflow", ["weight_stationary", "output_stationary", "input_stationary"])
@pytest.mark.parametrize("mode", ["wrap", "saturate"])
def test_table_kernel_keeps_the_arrays_accumulation_order(dataflow, mode):
    """With decode tables V = outer(Dw, Dx) the table kernel's sums are an ordinary GEMM of the
    decoded operands: it must equal the cycle-stepped array kernels (packed groups included) and
    the plain accumulation-order reference, overflow events and all, on a narrow accumulator."""
    rng = np.random.default_rng(4)
    G, K, M, og, R, C = 3, 9, 20, 2, 8, 4
    dw = rng.integers(0, 1024, 8)           # decoded |q_w| values (a 3-bit weight grid)
    dx = rng.integers(0, 1024, 16)          # decoded activation codes (4 bits)
    table = np.outer(dw, dx).astype(np.int64)
    cols = rng.integers(0, 16, (G, K, M)).astype(np.int64)
    w = rng.integers(-7, 8, (G, og, K)).astype(np.int64)
    bias = rng.integers(-5000, 5000, (G, og)).astype(np.int64)
    bits = 20
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    A = dx[cols].transpose(0, 2, 1)                  # (G, M, K)
    B = (np.sign(w) * dw[np.abs(w)]).transpose(0, 2, 1)  # (G, K, og)
    from accelsim.graph.ops import GemmView
    from accelsim.sim.mapping import groups_per_fold

    q = groups_per_fold(dataflow, GemmView(M, K, og, G), R, C, "packed")
    offsets = np.array([(g % q) * K for g in range(G)], np.int64)
    out = np.empty((G, og, M), np.int64)
    events = _table_gemm(cols, np.abs(w), np.sign(w), table, bias, R, offsets, dataflow == "output_stationary",
                         lo, hi, mode == "saturate", out)
    init = np.broadcast_to(bias[:, None, :], (G, M, og)).copy()
    arr = run_grouped_gemm(A, B, R, C, dataflow, acc_bits=bits, overflow=mode, acc_init=init)
    np.testing.assert_array_equal(out.transpose(0, 2, 1), arr.out)
    assert events == arr.overflow_events > 0
    if q == 1:  # unpacked: the plain reference applies group by group
        for g in range(G):
            ref, ev = reference_gemm(A[g], B[g], R, dataflow, bits, mode, init=init[g])
            np.testing.assert_array_equal(out[g].T, ref)


def test_power_recipes_need_the_power_unit_and_save_round_trip(tmp_path, images):
    x, _ = images
    hw = power_hw("decode_lut")
    qg = accelsim.quantize(accelsim.load_model("tiny_vgg"), {"method": "powerquant", "weight_bits": 4}, hw=hw)
    with pytest.raises(accelsim.ConfigError, match="power unit"):
        accelsim.execute(qg, accelsim.load_hw("edge-npu-16x16"), x[:2], progress=False)
    path = tmp_path / "pq.npz"
    qg.save(path)
    back = accelsim.load_qgraph(path)
    np.testing.assert_array_equal(back.run(x[:8]), qg.run(x[:8]))
    np.testing.assert_array_equal(accelsim.execute(back, hw, x[:8], progress=False).output_codes,
                                  accelsim.execute(qg, hw, x[:8], progress=False).output_codes)
