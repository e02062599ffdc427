"""One training step of a 784-256-10 MLP on a batch of 128: tinytorch (reference) vs PyTorch CPU.

A step is forward, cross-entropy, backward and an SGD update. Both frameworks get the same
weights and the same batch; the median of many steps is taken for each, in the same run, and
the ratio is what to read (absolute times depend on the machine and its load).

    .venv/bin/python bench/mlp_step.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TITO_SOURCE", "solutions")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tinytorch.autograd  # noqa: E402,F401
from tinytorch.activations import ReLU  # noqa: E402
from tinytorch.layers import Linear, Sequential  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import SGD  # noqa: E402
from tinytorch.tensor import Tensor  # noqa: E402
from timing import median_seconds  # noqa: E402

BATCH, SIZES, STEPS, WARMUP = 128, (784, 256, 10), 50, 5


def main() -> None:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[2], BATCH)

    ours = Sequential(Linear(SIZES[0], SIZES[1]), ReLU(), Linear(SIZES[1], SIZES[2]))
    theirs = torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(), torch.nn.Linear(SIZES[1], SIZES[2]))
    with torch.no_grad():  # same starting weights
        for (_, ours_p), theirs_p in zip(ours.named_parameters(), theirs.parameters()):
            theirs_p.copy_(torch.from_numpy(ours_p.data))

    ours_opt, ours_loss = SGD(ours.parameters(), lr=0.01), CrossEntropyLoss()
    theirs_opt, theirs_loss = torch.optim.SGD(theirs.parameters(), lr=0.01), torch.nn.CrossEntropyLoss()
    x_ours, y_ours = Tensor(images), Tensor(labels)
    x_theirs, y_theirs = torch.from_numpy(images), torch.from_numpy(labels)

    def ours_step() -> None:
        loss = ours_loss(ours(x_ours), y_ours)
        ours_opt.zero_grad()
        loss.backward()
        ours_opt.step()

    def theirs_step() -> None:
        loss = theirs_loss(theirs(x_theirs), y_theirs)
        theirs_opt.zero_grad()
        loss.backward()
        theirs_opt.step()

    print(f"784-256-10 MLP, batch {BATCH}, median of {STEPS} steps, torch threads {torch.get_num_threads()}")
    t_ours, t_theirs = median_seconds(ours_step, STEPS, WARMUP), median_seconds(theirs_step, STEPS, WARMUP)
    print(f"{'framework':12} {'ms/step':>8} {'images/s':>10}")
    print(f"{'tinytorch':12} {t_ours * 1e3:8.2f} {BATCH / t_ours:10.0f}")
    print(f"{'pytorch':12} {t_theirs * 1e3:8.2f} {BATCH / t_theirs:10.0f}")
    print(f"tinytorch / pytorch time ratio: {t_ours / t_theirs:.2f}x")


if __name__ == "__main__":
    main()
