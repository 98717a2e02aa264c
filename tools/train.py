"""Train the bundled tiny models on mnist5k and export them to workloads/ as ONNX.

Needs torch (the `train` extra; accelsim itself never imports torch):

    python tools/train.py                          # all models, default epochs
    python tools/train.py --models tiny_resnet --epochs 20

Each model is trained on the 4,000-image train split of `accelsim.data.load_dataset("mnist5k")`
(the same arrays, preprocessing included, that `accelsim evaluate` uses), evaluated by torch on
the 1,000 test images, exported with BatchNormalization nodes kept (the quantization pipeline
folds BN itself and reads its statistics), and recorded in workloads/models.json (the manifest)
and workloads/MODELS.md (a table generated from it).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from accelsim.data import load_dataset

REPO = Path(__file__).resolve().parents[1]
OPSET = 17
SEED = 0
NUM_CLASSES = 10


# ----------------------------------------------------------------------------- models
# Modules carry readable names: torch's ONNX exporter turns `block1.expand.conv` into the
# node name `/block1/expand/conv/Conv`, which accelsim keeps as the layer name.


class ConvBNAct(nn.Module):
    """conv -> BatchNorm -> activation (none for linear bottlenecks and shortcuts)."""

    def __init__(self, c_in, c_out, kernel, stride=1, groups=1, act: type[nn.Module] | None = nn.ReLU):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = act() if act is not None else None

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear project; add when shapes match."""

    def __init__(self, c_in, c_out, stride, expand_ratio):
        super().__init__()
        hidden = c_in * expand_ratio
        self.expand = ConvBNAct(c_in, hidden, 1, act=nn.ReLU6)
        self.dw = ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)
        self.project = ConvBNAct(hidden, c_out, 1, act=None)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        return x + y if self.residual else y


class TinyMobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBNAct(1, 16, 3, stride=2, act=nn.ReLU6)  # 28 -> 14
        self.block1 = InvertedResidual(16, 16, 1, 3)
        self.block2 = InvertedResidual(16, 24, 2, 4)  # 14 -> 7
        self.block3 = InvertedResidual(24, 24, 1, 4)
        self.block4 = InvertedResidual(24, 32, 2, 4)  # 7 -> 4
        self.block5 = InvertedResidual(32, 32, 1, 4)
        self.head = ConvBNAct(32, 96, 1, act=nn.ReLU6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(96, NUM_CLASSES)

    def forward(self, x):
        x = self.stem(x)
        for block in (self.block1, self.block2, self.block3, self.block4, self.block5):
            x = block(x)
        x = self.pool(self.head(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 conv + BN projection shortcut where the shape changes."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (
            ConvBNAct(c_in, c_out, 1, stride, act=None) if stride != 1 or c_in != c_out else None
        )
        self.relu2 = nn.ReLU()

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        skip = self.shortcut(x) if self.shortcut is not None else x
        return self.relu2(y + skip)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBNAct(1, 16, 3)  # 28x28
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)  # 14x14, projection shortcut
        self.layer3 = BasicBlock(32, 64, 2)  # 7x7, projection shortcut
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1_1 = ConvBNAct(1, 16, 3)
        self.conv1_2 = ConvBNAct(16, 16, 3)
        self.pool1 = nn.MaxPool2d(2)  # 28 -> 14
        self.conv2_1 = ConvBNAct(16, 32, 3)
        self.conv2_2 = ConvBNAct(32, 32, 3)
        self.pool2 = nn.MaxPool2d(2)  # 14 -> 7
        self.conv3_1 = ConvBNAct(32, 64, 3)
        self.pool3 = nn.MaxPool2d(2)  # 7 -> 3
        self.fc1 = nn.Linear(64 * 3 * 3, 64)
        self.relu_fc1 = nn.ReLU()
        self.fc2 = nn.Linear(64, NUM_CLASSES)

    def forward(self, x):
        x = self.pool1(self.conv1_2(self.conv1_1(x)))
        x = self.pool2(self.conv2_2(self.conv2_1(x)))
        x = self.pool3(self.conv3_1(x))
        return self.fc2(self.relu_fc1(self.fc1(torch.flatten(x, 1))))


# name -> (module class, description, default epochs: each model trains in under 5 min on 2 cores)
MODELS = {
    "tiny_mobilenet_v2": (
        TinyMobileNetV2,
        "stem conv3x3/2 (16) + BN + ReLU6; 5 inverted residual blocks (1x1 expand, depthwise 3x3, "
        "1x1 linear project, BN, ReLU6; residual add where shapes match) 16-16-24-24-32-32; "
        "1x1 head conv (96) + BN + ReLU6; global average pool; linear 96->10",
        20,
    ),
    "tiny_resnet": (
        TinyResNet,
        "stem conv3x3 (16) + BN + ReLU; 3 basic residual blocks 16, 32/2, 64/2 (conv3x3-BN-ReLU-"
        "conv3x3-BN, add, ReLU; 1x1 conv + BN projection shortcut at stride 2); global average pool; "
        "linear 64->10",
        15,
    ),
    "tiny_vgg": (
        TinyVGG,
        "conv3x3-BN-ReLU stacks 16,16 / 32,32 / 64, each stack followed by maxpool 2x2; "
        "linear 576->64, ReLU, linear 64->10",
        20,
    ),
}


# ----------------------------------------------------------------------------- training


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)


def augment(x: torch.Tensor, gen: torch.Generator, background: float) -> torch.Tensor:
    """Random affine: rotation +-10 degrees, scale 0.9..1.1, shift +-2 px (28 px image)."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.9 + torch.rand(n, generator=gen) * 0.2
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)  # grid units: 14 px = 1.0
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with zeros: shift so the padding is the (normalised) black background
    return F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background


def evaluate_torch(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[int, np.ndarray]:
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.tensor(x[i : i + 500])) for i in range(0, len(x), 500)])
    pred = logits.argmax(1).numpy()
    return int((pred == y).sum()), pred


def train_one(name: str, epochs: int, batch_size: int, lr: float, seed: int) -> tuple[nn.Module, dict]:
    seed_everything(seed)
    data = load_dataset("mnist5k")
    x_train, y_train = torch.tensor(data.x_train), torch.tensor(data.y_train)
    background = float((0.0 - data.mean) / data.std)
    model = MODELS[name][0]()
    params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        total_loss = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            xb = augment(x_train[idx], gen, background)
            loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
        if (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            correct, _ = evaluate_torch(model, data.x_test, data.y_test)
            print(f"  {name} epoch {epoch + 1}/{epochs}: loss {total_loss / len(order):.4f}, "
                  f"test {correct}/{len(data.y_test)}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_time_s = time.perf_counter() - t0
    train_cpu_s = time.process_time() - cpu0  # all threads: about 2x wall time on an idle 2-core machine
    correct, _ = evaluate_torch(model, data.x_test, data.y_test)
    info = {
        "description": MODELS[name][1],
        "dataset": data.name,
        "split": "train: 4,000 images (400 per class); test: 1,000 images (100 per class)",
        "preprocessing": data.preprocessing,
        "input_shape": [1, *data.input_shape],
        "num_classes": NUM_CLASSES,
        "fp32_test_top1": round(correct / len(data.y_test), 4),
        "fp32_test_correct": correct,
        "test_images": int(len(data.y_test)),
        "params": int(params),
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": f"AdamW(weight_decay=5e-4), OneCycleLR(max_lr={lr})",
        "augmentation": "random affine: rotation +-10 deg, scale 0.9..1.1, shift +-2 px",
        "seed": seed,
        "train_time_s": round(train_time_s, 1),
        "train_cpu_s": round(train_cpu_s, 1),
        "train_threads": torch.get_num_threads(),
        "torch_version": str(torch.__version__),
        "opset": OPSET,
    }
    return model, info


def export(model: nn.Module, path: Path) -> None:
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=False,  # keep BatchNormalization nodes and their statistics
        training=torch.onnx.TrainingMode.EVAL,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )


ABOUT = (
    "Bundled trained models: written by tools/train.py, read by accelsim.graph.manifest and the tests. "
    "fp32_test_correct is torch's count of correct top-1 predictions on the mnist5k test split; "
    "accelsim's FP32 interpreter must reproduce it exactly. Training is deterministic: rerunning a "
    "model's command on CPU with the same torch version gives a byte-identical ONNX file (sha256). "
    "train_time_s is wall time on a shared 2-core machine (other jobs may have been running)."
)


def update_manifest(folder: Path, name: str, entry: dict) -> None:
    """Merge one model's entry into models.json (JSON: not a zoo suffix) and regenerate MODELS.md."""
    path = folder / "models.json"
    doc = json.loads(path.read_text()) if path.is_file() else {}
    models = doc.get("models", {})
    models[name] = entry
    doc = {"about": ABOUT, "models": dict(sorted(models.items()))}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (folder / "MODELS.md").write_text(models_markdown(doc["models"]))


def models_markdown(models: dict) -> str:
    lines = [
        "# Bundled trained models",
        "",
        "Generated by `tools/train.py` from `models.json` (the machine-readable manifest); do not edit.",
        "FP32 top-1 is torch's, on the 1,000-image mnist5k test split; `accelsim evaluate NAME`",
        "reproduces it with accelsim's own FP32 interpreter.",
        "",
        "| model | params | file bytes | FP32 top-1 | correct | epochs | train time (s) | torch |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in models.items():
        lines.append(
            f"| {name} | {m['params']:,} | {m['file_bytes']:,} | {m['fp32_test_top1']:.4f} | "
            f"{m['fp32_test_correct']} / {m['test_images']} | {m['epochs']} | {m['train_time_s']:.0f} | "
            f"{m['torch_version']} |"
        )
    lines.append("")
    for name, m in models.items():
        lines += [
            f"## {name}",
            "",
            f"- architecture: {m['description']}",
            f"- data: {m['dataset']}, {m['split']}",
            f"- preprocessing: {m['preprocessing']}",
            f"- training: {m['optimizer']}, batch {m['batch_size']}, {m['epochs']} epochs, "
            f"augmentation: {m['augmentation']}, seed {m['seed']}",
            f"- command: `{m['command']}`",
            f"- ONNX opset {m['opset']}, BatchNormalization kept; sha256 `{m['sha256']}`",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="default: per model (20, 15, 20)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", type=Path, default=REPO / "workloads", help="folder for the .onnx files, models.json and MODELS.md")
    args = p.parse_args(argv)
    command = "python tools/train.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    for name in args.models:
        print(f"training {name}", flush=True)
        epochs = args.epochs or MODELS[name][2]
        model, info = train_one(name, epochs, args.batch_size, args.lr, args.seed)
        path = args.out / f"{name}.onnx"
        export(model, path)
        blob = path.read_bytes()
        entry = {
            "file": path.name,
            **info,
            "file_bytes": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest(),
            "command": command.strip(),
        }
        update_manifest(args.out, name, entry)
        print(f"  {name}: test top-1 {info['fp32_test_top1']:.4f} ({info['fp32_test_correct']}/"
              f"{info['test_images']}), {info['params']:,} params, {len(blob):,} bytes, "
              f"{info['train_time_s']:.0f} s -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
