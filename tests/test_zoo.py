"""Zoo MAC totals against published figures (each within a small multiple of its measured
deviation), exact hand counts where the layer tables make them easy, and basic zoo integrity."""
import pytest

import accelsim
from accelsim.graph.zoo import zoo_names

# (name, published MACs at batch 1, tolerance, source). The tolerance is about twice the
# deviation measured when it was set (in brackets): the published figures are rounded to 3
# digits, so a model can sit up to ~0.3% off, but a lost layer must not hide in the slack.
PUBLISHED_MACS = [
    ("resnet50", 4.09e9, 4e-4, "torchvision model docs, ResNet50_Weights.IMAGENET1K_V1: 4.09 GFLOPS (= GMACs) [-0.020%]"),
    ("resnet18", 1.81e9, 3e-3, "torchvision model docs, ResNet18_Weights.IMAGENET1K_V1: 1.81 GFLOPS (= GMACs) [+0.225%]"),
    ("mobilenet_v2", 300e6, 3.5e-3, "Sandler et al., CVPR 2018, Table 4: 300M multiply-adds [+0.258%]"),
    ("mobilenet_v1", 569e6, 1e-3, "Howard et al., arXiv:1704.04861, Table 8: 569M mult-adds [-0.046%]"),
    ("vgg16", 15.5e9, 2.5e-3, "Sze et al., Proc. IEEE 2017, Table 4: VGG-16 15.5G MACs [-0.192%]"),
    ("alexnet", 724e6, 1e-3, "Sze et al., Proc. IEEE 2017, Table 4: AlexNet 724M MACs [+0.056%]"),
]


@pytest.mark.parametrize("name, published, tol, source", PUBLISHED_MACS, ids=[p[0] for p in PUBLISHED_MACS])
def test_zoo_macs_match_published_figures(name, published, tol, source):
    macs = accelsim.load_model(name).total_macs()
    assert abs(macs - published) / published < tol, f"{name}: {macs:,} MACs vs {published:,.0f} ({source})"


def test_alexnet_macs_by_hand():
    # Sze et al.'s AlexNet (two-GPU groups in conv2, conv4, conv5), MACs = outputs x window:
    conv = [
        96 * 55 * 55 * (11 * 11 * 3),        # conv1: 105,415,200
        256 * 27 * 27 * (5 * 5 * 48),        # conv2, 2 groups: 223,948,800
        384 * 13 * 13 * (3 * 3 * 256),       # conv3: 149,520,384
        384 * 13 * 13 * (3 * 3 * 192),       # conv4, 2 groups: 112,140,288
        256 * 13 * 13 * (3 * 3 * 192),       # conv5, 2 groups: 74,760,192
    ]
    fc = [256 * 6 * 6 * 4096, 4096 * 4096, 4096 * 1000]   # fc6, fc7, fc8
    assert accelsim.load_model("alexnet").total_macs() == sum(conv) + sum(fc)   # 724,406,816


def test_bert_base_macs_by_hand():
    # BERT-base encoder at sequence length n = 128, d = 768, 12 layers, d_ff = 4d. Per token and
    # layer: Q, K, V and output projections 4 d^2, the MLP 8 d^2, and two n x d attention
    # matmuls (QK^T and softmax(.) V). Kaplan et al. 2020 (Table 1) count N = 12 n_layer d^2
    # plus one n_layer n_ctx d term (the QK logits): 1.37% less than this.
    n, d, layers = 128, 768, 12
    exact = n * layers * (12 * d**2 + 2 * n * d)                  # 11,173,625,856
    assert accelsim.load_model("bert_base").total_macs() == exact


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
