"""Zoo MAC totals against published figures (within 2%), and basic zoo integrity."""
import pytest

import accelsim
from accelsim.graph.zoo import zoo_names

# (name, published MACs at batch 1, source)
PUBLISHED_MACS = [
    ("resnet50", 4.09e9, "torchvision model docs, ResNet50_Weights.IMAGENET1K_V1: 4.09 GFLOPS (= GMACs)"),
    ("resnet18", 1.81e9, "torchvision model docs, ResNet18_Weights.IMAGENET1K_V1: 1.81 GFLOPS (= GMACs)"),
    ("mobilenet_v2", 300e6, "Sandler et al., CVPR 2018, Table 4: 300M multiply-adds"),
    ("mobilenet_v1", 569e6, "Howard et al., arXiv:1704.04861, Table 8: 569M mult-adds"),
    ("vgg16", 15.5e9, "Sze et al., Proc. IEEE 2017, Table 4: VGG-16 15.5G MACs"),
    ("alexnet", 724e6, "Sze et al., Proc. IEEE 2017, Table 4: AlexNet 724M MACs"),
    # Kaplan et al. 2020, Table 1: forward MACs per token = N + n_layer * n_ctx * d_model with
    # N = 12 * n_layer * d_model^2 (d_ff = 4 d_model); BERT-base: 12 layers, d_model 768, n_ctx 128.
    ("bert_base", 128 * (12 * 12 * 768**2 + 12 * 128 * 768), "Kaplan et al. 2020, Table 1 formula"),
]


@pytest.mark.parametrize("name, published, source", PUBLISHED_MACS, ids=[p[0] for p in PUBLISHED_MACS])
def test_zoo_macs_match_published_figures(name, published, source):
    macs = accelsim.load_model(name).total_macs()
    assert abs(macs - published) / published < 0.02, f"{name}: {macs:,} MACs vs {published:,.0f} ({source})"


def test_every_issue_network_is_bundled():
    assert {"alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "bert_base"} <= set(zoo_names())


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "vgg16", "alexnet", "resnet18", "mobilenet_v1"])
def test_imagenet_classifiers_end_in_1000_logits(name):
    g = accelsim.load_model(name)
    (out,) = g.outputs
    assert g.shapes(batch=3)[out] == (3, 1000)


def test_macs_scale_linearly_with_batch():
    g = accelsim.load_model("mobilenet_v2")
    assert g.total_macs(batch=4) == 4 * g.total_macs(batch=1)


def test_mobilenet_v2_depthwise_layers_are_grouped_gemms():
    g = accelsim.load_model("mobilenet_v2")
    dw = g.layer("features.2.dw.conv")
    assert dw.gemm.groups == 96 and dw.gemm.K == 9 and dw.gemm.N == 1
    assert dw.output_shape == (1, 96, 56, 56)


def test_bert_attention_is_a_per_head_matmul():
    g = accelsim.load_model("bert_base")
    scores = g.layer("encoder.0.attn.scores", batch=2)
    assert (scores.gemm.M, scores.gemm.K, scores.gemm.N, scores.gemm.groups) == (128, 64, 128, 24)
    assert scores.weight_elems == 0  # activation x activation: nothing stationary to preload from DRAM


def test_parameter_counts_match_published():
    # torchvision docs: ResNet-50 25,557,032 params; ResNet-18 11,689,512 (weights + biases, BN excluded
    # here, so subtract BN affine params: 2 per channel of every BN).
    for name, published in [("resnet50", 25_557_032), ("resnet18", 11_689_512)]:
        g = accelsim.load_model(name)
        bn_params = sum(2 * g.shapes()[n.name][1] for n in g if n.op == "batchnorm")
        df = g.table()
        assert int(df.weight_elems.sum() + df.bias_elems.sum()) + bn_params == published
