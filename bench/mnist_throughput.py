"""Images per second, training and inference, of the two MNIST milestone models:
tinytorch (reference) vs the same architecture in PyTorch CPU, measured in one run.

Random inputs of MNIST's shape (throughput does not depend on the pixels), batch 128 for
training and 1000 for inference, median over repeated batches after a warm-up.

    .venv/bin/python bench/mnist_throughput.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TITO_SOURCE", "solutions")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "milestones"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tinytorch.autograd  # noqa: E402,F401
from cnn_1998 import build_lenet  # noqa: E402
from mlp_1986 import build_mlp  # noqa: E402
from tinytorch.autograd import no_grad  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import Adam  # noqa: E402
from tinytorch.tensor import Tensor  # noqa: E402
from timing import median_seconds  # noqa: E402

TRAIN_BATCH, INFER_BATCH = 128, 1000


def torch_mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 10))


def torch_lenet() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(800, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
                               torch.nn.Linear(84, 10))


def measure(name: str, ours, theirs, input_shape: tuple[int, ...], repeats: int) -> list[tuple]:
    rng = np.random.default_rng(0)
    x_train = rng.standard_normal((TRAIN_BATCH, *input_shape)).astype(np.float32)
    y_train = rng.integers(0, 10, TRAIN_BATCH)
    x_infer = rng.standard_normal((INFER_BATCH, *input_shape)).astype(np.float32)
    ours_opt, ours_loss = Adam(ours.parameters()), CrossEntropyLoss()
    theirs_opt, theirs_loss = torch.optim.Adam(theirs.parameters()), torch.nn.CrossEntropyLoss()

    def ours_train() -> None:
        loss = ours_loss(ours(Tensor(x_train)), Tensor(y_train))
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()

    def theirs_train() -> None:
        loss = theirs_loss(theirs(torch.from_numpy(x_train)), torch.from_numpy(y_train))
        theirs_opt.zero_grad()
        loss.backward()
        theirs_opt.step()

    def ours_infer() -> None:
        ours.eval()
        with no_grad():
            ours(Tensor(x_infer))

    def theirs_infer() -> None:
        theirs.eval()
        with torch.no_grad():
            theirs(torch.from_numpy(x_infer))

    rows = []
    for phase, batch, ours_step, theirs_step in (("train", TRAIN_BATCH, ours_train, theirs_train),
                                                 ("inference", INFER_BATCH, ours_infer, theirs_infer)):
        t_ours, t_theirs = median_seconds(ours_step, repeats), median_seconds(theirs_step, repeats)
        rows.append((name, phase, batch / t_ours, batch / t_theirs, t_ours / t_theirs))
    return rows


def main() -> None:
    print(f"torch threads: {torch.get_num_threads()}")
    rows = measure("MLP 784-512-256-10", build_mlp([512, 256], 0.2), torch_mlp(), (784,), repeats=30)
    rows += measure("LeNet 16/32 channels", build_lenet((16, 32), (120, 84)), torch_lenet(), (1, 28, 28), repeats=10)
    print(f"{'model':22} {'phase':10} {'tinytorch img/s':>16} {'pytorch img/s':>14} {'time ratio':>11}")
    for name, phase, ours, theirs, ratio in rows:
        print(f"{name:22} {phase:10} {ours:16.0f} {theirs:14.0f} {ratio:10.2f}x")


if __name__ == "__main__":
    main()
