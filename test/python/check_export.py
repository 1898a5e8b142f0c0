"""Loads RadFed exports strictly into PyTorch (torchvision for the ResNets) and compares features.

Usage: check_export.py FIXTURE_DIR (written by make_fixture.ts). Exits 1 if any architecture's
features differ from RadFed's by more than 1e-4 relative (max abs error / max abs feature).
"""
import json
import sys

import numpy as np
import safetensors.torch
import timm  # noqa: F401  (the ViT exports load through timm; importing checks the install)
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

TOLERANCE = 1e-4


class Conv4(nn.Module):
    """RadFed's conv4: four 3x3 stride-2 convs with TensorFlow 'same' padding, BN (eps 1e-3), ReLU."""

    def __init__(self):
        super().__init__()
        channels = [1, 32, 64, 128, 256]
        for k in range(1, 5):
            setattr(self, f"conv{k}", nn.Conv2d(channels[k - 1], channels[k], 3, 2, 0, bias=False))
            setattr(self, f"bn{k}", nn.BatchNorm2d(channels[k], eps=1e-3))

    def forward(self, x):
        for k in range(1, 5):
            x = F.pad(x, (0, 1, 0, 1))  # even side, stride 2, kernel 3: 0 before, 1 after
            x = F.relu(getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(x)))
        return x.mean(dim=(2, 3))


def build(architecture):
    if architecture == "conv4":
        return Conv4()
    m = getattr(torchvision.models, architecture)()
    m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    m.fc = nn.Identity()
    return m


def main(directory):
    meta = json.load(open(f"{directory}/meta.json"))
    size, count = meta["size"], meta["count"]
    x = torch.from_numpy(np.fromfile(f"{directory}/inputs.bin", dtype="<f4").reshape(count, 1, size, size))
    results, ok = [], True
    for model in meta["models"]:
        net = build(model["architecture"])
        net.load_state_dict(safetensors.torch.load_file(f"{directory}/{model['file']}"), strict=True)
        net.eval()
        with torch.no_grad():
            y = net(x).numpy().astype(np.float64)
        ref = np.fromfile(f"{directory}/{model['features']}", dtype="<f4").reshape(count, -1).astype(np.float64)
        rel = float(np.abs(y - ref).max() / np.abs(ref).max()) if y.shape == ref.shape else float("inf")
        passed = rel <= TOLERANCE
        ok = ok and passed
        results.append({"architecture": model["architecture"], "shape": list(y.shape), "relative_error": rel, "ok": passed})
    print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__, "results": results}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
