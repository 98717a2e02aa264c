"""Generate the small ONNX fixtures in tests/fixtures/onnx/ with torch (random, seeded weights).

Run in a separate venv that has torch (accelsim itself never needs it):

    python3 -m venv /work/torchvenv && /work/torchvenv/bin/pip install torch==2.13.0 onnx numpy
    /work/torchvenv/bin/python tools/make_onnx_fixtures.py

Each model is exported with the TorchScript exporter (dynamo=False) at opsets 13, 15, 17
and 18, with constant folding on and off, with a dynamic batch at opsets 13 and 17 and a
fixed batch at 15 and 18. `inputs.npz` holds, per model, an input `x` and torch's output
`y_torch` (a reference independent of onnxruntime).
"""
from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "onnx"
OPSETS = (13, 15, 17, 18)
BATCH = 4


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics, so that BN is not an identity in the fixtures."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)


class ConvNet(nn.Module):
    """Conv, BN, ReLU6, depthwise, residual adds, grouped + dilated conv, asymmetric pad, GAP, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU6()
        self.dw = nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = nn.ReLU()
        self.pw = nn.Conv2d(8, 16, 1)
        self.bn3 = nn.BatchNorm2d(16)
        self.short = nn.Conv2d(8, 16, 1, stride=2)
        self.relu = nn.ReLU()
        self.gconv = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4)
        self.pad = nn.ZeroPad2d((1, 0, 0, 2))  # left, right, top, bottom: exported as a Pad op
        self.down = nn.Conv2d(16, 24, 2, stride=2)
        self.dwm = nn.Conv2d(24, 48, 3, padding=1, groups=24)  # depth multiplier 2
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, 10)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        z = self.bn3(self.pw(self.act2(self.bn2(self.dw(y)))))
        y = self.relu(z + self.short(y))
        y = self.relu(self.gconv(y)) + y
        y = self.dwm(self.down(self.pad(y)))
        return self.fc(torch.flatten(self.gap(y), 1))


class ActNet(nn.Module):
    """SiLU and GELU (module and hand-written orders), constant add/mul/div, clamp, sigmoid, softmax."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.register_buffer("offset", torch.randn(1, 8, 1, 1))
        self.silu = nn.SiLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.gelu = nn.GELU()
        self.register_buffer("scale", torch.rand(8, 1, 1) + 0.5)
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.conv4 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.conv5 = nn.Conv2d(8, 6, 1)

    def forward(self, x):
        y = self.silu(self.conv1(x) + self.offset)  # Add of a constant: folded into conv1's bias
        y = self.gelu(self.conv2(y)) * self.scale
        y = y / 2.0
        y = y * torch.sigmoid(y)  # SiLU written by hand
        s = torch.sigmoid(self.conv3(y))  # sigmoid alone
        y = 0.5 * s * (1.0 + torch.erf(s / math.sqrt(2.0)))  # GELU, another order
        y = self.conv4(y)
        y = y * 0.5 * (1.0 + torch.erf(y * (1.0 / math.sqrt(2.0))))  # GELU with a Mul by 1/sqrt2
        y = torch.sigmoid(y) * y  # SiLU, operands swapped
        a = self.conv5(y)
        y = F.hardtanh(a, 0.0, 6.0) + torch.clamp(a, min=0.0)  # Clip [0, 6] and Clip [0, inf)
        y = torch.softmax(y, dim=1)
        return y.reshape(y.shape[0], -1)


class PoolNet(nn.Module):
    """Max and average pooling with padding, ceil_mode and count_include_pad; concat; view."""

    def __init__(self):
        super().__init__()
        self.maxp = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.avgp_inc = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=True)
        self.avgp_exc = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.conv = nn.Conv2d(3, 5, 2, stride=2, padding=1)
        self.avg2 = nn.AvgPool2d(2, 2, ceil_mode=True)
        self.avg3 = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.max2 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.fc = nn.Linear(14 * 3 * 3, 10)

    def forward(self, x):
        y = torch.cat([self.maxp(x), self.avgp_inc(x), self.avgp_exc(x), self.conv(x)], dim=1)  # 14x9x9
        y = self.avg3(self.avg2(y))  # 14x5x5
        y = self.max2(y)  # 14x3x3
        return self.fc(y.view(y.size(0), -1))


class MLP(nn.Module):
    """Gemm, MatMul with constant weights (+ bias), Dropout, GELU, 3-D linear, reshape."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(64, 48, bias=False)
        self.gelu = nn.GELU()
        self.tok = nn.Linear(8, 8)
        self.W = nn.Parameter(torch.randn(8, 4) * 0.3)
        self.b = nn.Parameter(torch.randn(4))
        self.fc3 = nn.Linear(24, 10)

    def forward(self, x):
        y = self.drop(torch.relu(self.fc1(x)))
        y = self.gelu(self.fc2(y))
        h = y.view(-1, 6, 8)
        h = torch.relu(self.tok(h))
        h = h @ self.W + self.b
        return self.fc3(h.flatten(1))


class Attention(nn.Module):
    """A tiny self-attention block: MatMul between activations, Softmax, Reshape/Transpose."""

    def __init__(self, d: int = 16, heads: int = 2):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj = nn.Linear(d, d)
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        b, s, d = x.shape
        q = self.q(x).view(b, s, self.h, self.dh).transpose(1, 2)
        k = self.k(x).view(b, s, self.h, self.dh).transpose(1, 2)
        v = self.v(x).view(b, s, self.h, self.dh).transpose(1, 2)
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(self.dh), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, s, d)
        y = self.proj(o) + x
        return self.fc(F.relu(y))


class LayerNormNet(nn.Module):
    """LayerNormalization (a single op from opset 17) after a linear, then GELU."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 16)
        self.ln = nn.LayerNorm(16)
        self.gelu = nn.GELU()
        self.out = nn.Linear(16, 5)

    def forward(self, x):
        return self.out(self.gelu(self.ln(self.fc(x))))


MODELS = {
    # name: (class, input shape without batch, opsets)
    "convnet": (ConvNet, (3, 16, 16), OPSETS),
    "actnet": (ActNet, (3, 10, 10), OPSETS),
    "poolnet": (PoolNet, (3, 16, 16), OPSETS),
    "mlp": (MLP, (32,), OPSETS),
    "attention": (Attention, (8, 16), OPSETS),
    "layernorm": (LayerNormNet, (7, 12), (17, 18, 20)),  # opset 20 exports GELU as the Gelu op
}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore")
    arrays: dict[str, np.ndarray] = {}
    for i, (name, (cls, shape, opsets)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + i)
        model = cls()
        _randomize_bn(model)
        model.eval()
        x = torch.from_numpy(np.random.default_rng(100 + i).standard_normal((BATCH, *shape)).astype(np.float32))
        with torch.no_grad():
            y = model(x)
        arrays[f"{name}/x"] = x.numpy()
        arrays[f"{name}/y_torch"] = y.numpy()
        for opset in opsets:
            for fold in (True, False):
                dynamic = opset in (13, 17, 20)
                path = OUT / f"{name}_op{opset}_{'fold' if fold else 'nofold'}.onnx"
                torch.onnx.export(
                    model, (x,), str(path), dynamo=False, opset_version=opset, do_constant_folding=fold,
                    input_names=["x"], output_names=["y"],
                    dynamic_axes={"x": {0: "N"}, "y": {0: "N"}} if dynamic else None,
                    training=torch.onnx.TrainingMode.EVAL,
                )
                print(f"{path.name}: {path.stat().st_size} bytes")
    np.savez_compressed(OUT / "inputs.npz", **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
