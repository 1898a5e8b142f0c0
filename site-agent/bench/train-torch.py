"""Reference PyTorch step for `pnpm bench:train`: conv4 SimCLR at 64x64, the same step the agent
computes (four 3x3 stride-2 conv blocks without bias, batch norm eps 1e-3 in training mode, ReLU,
global mean pool, 256-512-128 projection head, NT-Xent at temperature 0.2), forward and backward
for two views of each image, gradients only (no optimiser step, as the agent's GradientPool.step).
The views are fixed tensors: the agent's JavaScript augmentation is not counted here.

Usage: python3 train-torch.py --threads N --batch 32 --steps 6 [--size 64]
Prints one JSON line: {"torch": version, "threads": N, "imagesPerSecond": ...}.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--steps", type=int, default=6)
parser.add_argument("--size", type=int, default=64)
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(0)


class Conv4(nn.Module):
    def __init__(self):
        super().__init__()
        layers, channels = [], 1
        for out in (32, 64, 128, 256):
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out, eps=1e-3, momentum=0.1),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(256, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))

    def forward(self, x):
        return self.head(self.encoder(x).mean(dim=(2, 3)))


def nt_xent(z, temperature=0.2):
    z = F.normalize(z, dim=1)
    rows = z.shape[0]
    half = rows // 2
    similarity = z @ z.t() / temperature
    similarity = similarity.masked_fill(torch.eye(rows, dtype=torch.bool), -1e9)
    targets = torch.cat([torch.arange(half, rows), torch.arange(0, half)])
    return F.cross_entropy(similarity, targets)


model = Conv4().train()
first = torch.randn(args.batch, 1, args.size, args.size)
second = torch.randn(args.batch, 1, args.size, args.size)


def step():
    model.zero_grad(set_to_none=True)
    loss = nt_xent(model(torch.cat([first, second])))
    loss.backward()
    return loss.item()


step()  # warm-up: oneDNN primitive creation
started = time.perf_counter()
for _ in range(args.steps):
    step()
seconds = time.perf_counter() - started
print(
    json.dumps(
        {
            "torch": torch.__version__,
            "threads": args.threads,
            "imagesPerSecond": args.steps * args.batch / seconds,
        }
    )
)
