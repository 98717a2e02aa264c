"""The cycle-stepped kernels: integer outputs against independent numpy paths, accumulators."""
import numpy as np
import pytest

from accelsim.config import AccumulatorWarning, load_hw
from accelsim.errors import AccelsimError
from accelsim.graph.ops import GemmView
from accelsim.sim.accumulator import accumulate, reference_gemm
from accelsim.sim.kernels import run_gemm, run_grouped_gemm, run_layer

DATAFLOWS = ("ws", "os", "is")


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("preload", ("serial", "double_buffered"))
def test_outputs_equal_numpy_int64_gemm_with_negative_values(dataflow, preload):
    rng = np.random.default_rng(1)
    a = rng.integers(-(1 << 20), 1 << 20, (23, 19))
    b = rng.integers(-(1 << 20), 1 << 20, (19, 13))
    r = run_gemm(a, b, 5, 4, dataflow, preload, acc_bits=62)
    assert r.overflow_events == 0
    assert np.array_equal(r.out, a @ b)
    assert (r.out < 0).any() and np.abs(r.out).max() > 1 << 40  # wide values survive


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("packing", ("packed", "one_per_fold"))
def test_grouped_and_depthwise_outputs_equal_per_group_gemms(dataflow, packing):
    rng = np.random.default_rng(2)
    for groups, m, k, n in [(7, 11, 9, 1), (4, 6, 5, 3)]:
        a = rng.integers(-128, 128, (groups, m, k))
        b = rng.integers(-128, 128, (groups, k, n))
        r = run_grouped_gemm(a, b, 8, 8, dataflow, group_packing=packing)
        assert np.array_equal(r.out, np.einsum("gmk,gkn->gmn", a, b))


def _im2col(x, kh, kw, pad, stride):
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = np.empty((oh * ow, c * kh * kw), np.int64)
    for i in range(oh):
        for j in range(ow):
            cols[i * ow + j] = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw].reshape(-1)
    return cols


def _direct_conv(x, wt, pad):
    """Plain loops, no GEMM: an independent path to the conv's integer outputs."""
    c, h, w = x.shape
    f, _, kh, kw = wt.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((h, w, f), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + h, j:j + w]  # (c, h, w)
            out += np.einsum("chw,fc->hwf", patch, wt[:, :, i, j])
    return out.reshape(h * w, f)


@pytest.fixture(scope="module")
def resnet_3x3_slice():
    """ResNet-50 layer2 3x3 conv (128 -> 128 channels, pad 1) on int8 data; 2 rows of output
    pixels (M = 2 x 28) and 16 filters keep the kernel fast. K = 1152 products per output."""
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (128, 4, 28))       # 4 input rows -> 2 output rows with pad 1
    wt = rng.integers(-128, 128, (16, 128, 3, 3))
    a = _im2col(x, 3, 3, 1, 1)[28:84]              # output rows 1..2 (fully inside the input slab)
    b = wt.reshape(16, -1).T
    ref = _direct_conv(x, wt, 1)[28:84]
    return a, b, ref


def test_real_conv_layer_matches_a_direct_convolution(resnet_3x3_slice):
    a, b, ref = resnet_3x3_slice
    r = run_gemm(a, b, 32, 32, "ws", acc_bits=32)
    assert r.overflow_events == 0
    assert np.array_equal(r.out, ref)


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_16_bit_accumulator_overflows_and_wrap_and_saturate_match_the_reference(resnet_3x3_slice, dataflow):
    a, b, exact = resnet_3x3_slice
    outs = {}
    for mode in ("wrap", "saturate"):
        r = run_gemm(a, b, 32, 32, dataflow, acc_bits=16, overflow=mode)
        ref, events = reference_gemm(a, b, 32, dataflow, 16, mode)
        assert np.array_equal(r.out, ref)
        assert r.overflow_events == events > 0
        assert r.out.min() >= -(1 << 15) and r.out.max() < 1 << 15
        outs[mode] = r.out
    assert not np.array_equal(outs["wrap"], outs["saturate"])
    # wrap is the exact sum modulo 2^16, whatever the order
    assert np.array_equal(outs["wrap"], ((exact + (1 << 15)) % (1 << 16)) - (1 << 15))
    # saturation depends on the order: the final clamp of the exact sum differs somewhere
    assert not np.array_equal(outs["saturate"], np.clip(exact, -(1 << 15), (1 << 15) - 1))


def test_saturation_order_differs_between_dataflows(resnet_3x3_slice):
    a, b, _ = resnet_3x3_slice
    ws = run_gemm(a, b, 32, 32, "ws", acc_bits=16, overflow="saturate").out
    os_ = run_gemm(a, b, 32, 32, "os", acc_bits=16, overflow="saturate").out
    assert not np.array_equal(ws, os_)  # per-fold partial sums vs one running sum


def test_packing_never_changes_the_numbers():
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (9, 12, 9))
    b = rng.integers(-128, 128, (9, 9, 2))
    for df in DATAFLOWS:
        for mode in ("wrap", "saturate"):
            p = run_grouped_gemm(a, b, 20, 20, df, acc_bits=15, overflow=mode, group_packing="packed")
            o = run_grouped_gemm(a, b, 20, 20, df, acc_bits=15, overflow=mode, group_packing="one_per_fold")
            assert np.array_equal(p.out, o.out) and p.overflow_events == o.overflow_events
            assert p.cycles != o.cycles


def test_accumulate_wraps_twos_complement_and_clamps():
    x = np.array([127, 128, -129, 300, -300])
    assert accumulate(x, 8, "wrap")[0].tolist() == [127, -128, 127, 44, -44]
    assert accumulate(x, 8, "saturate")[0].tolist() == [127, 127, -128, 127, -128]
    assert accumulate(x, 8, "wrap")[1] == 4


def test_run_layer_uses_the_hardware_config():
    with pytest.warns(AccumulatorWarning):
        hw = load_hw("edge-npu-16x16").replace("precision.accumulator_bits", 12).replace(
            "precision.accumulator_overflow", "saturate")
    rng = np.random.default_rng(5)
    gemm = GemmView(M=20, K=40, N=5, groups=2)
    a = rng.integers(-128, 128, (2, 20, 40))
    b = rng.integers(-128, 128, (2, 40, 5))
    with pytest.warns(AccumulatorWarning):
        hw_alone = hw.replace("pe_array.group_packing", "one_per_fold")
    alone = run_layer(gemm, hw_alone, a, b)
    for g in range(2):
        ref, _ = reference_gemm(a[g], b[g], 16, "ws", 12, "saturate")
        assert np.array_equal(alone.out[g], ref)
    # packed (the default): both groups share folds as one block-diagonal GEMM of K = 80 rows, so
    # the K-fold boundaries, and with them the saturation order, follow the packed rows
    packed = run_layer(gemm, hw, a, b)
    a_packed = np.concatenate([a[0], a[1]], axis=1)
    b_packed = np.zeros((80, 10), dtype=np.int64)
    b_packed[:40, :5], b_packed[40:, 5:] = b[0], b[1]
    ref, _ = reference_gemm(a_packed, b_packed, 16, "ws", 12, "saturate")
    assert np.array_equal(packed.out[0], ref[:, :5]) and np.array_equal(packed.out[1], ref[:, 5:])
    assert not np.array_equal(packed.out, alone.out)  # the order is visible under saturation
    with pytest.raises(AccelsimError, match="do not match the GEMM view"):
        run_layer(gemm, hw, a[:, :, :39], b)


def test_kernel_rejects_operands_that_could_overflow_int64():
    with pytest.raises(AccelsimError, match="too large"):
        run_gemm(np.array([[1 << 40]]), np.array([[1 << 30]]), 2, 2, "ws")
    with pytest.raises(AccelsimError, match="accumulator_bits"):
        run_gemm(np.ones((2, 2)), np.ones((2, 2)), 2, 2, "ws", acc_bits=63)


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_whole_resnet50_layer_with_16_bit_accumulators(dataflow):
    """ResNet-50 layer2 3x3 conv as a GEMM (784 x 1152 x 128) on 16x16, int8 operands."""
    rng = np.random.default_rng(6)
    a = rng.integers(-128, 128, (784, 1152))
    b = rng.integers(-128, 128, (1152, 128))
    for mode in ("wrap", "saturate"):
        r = run_gemm(a, b, 16, 16, dataflow, "double_buffered", acc_bits=16, overflow=mode)
        ref, events = reference_gemm(a, b, 16, dataflow, 16, mode)
        assert np.array_equal(r.out, ref) and r.overflow_events == events > 0
