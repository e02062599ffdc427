"""Scaled dot-product attention, forward and backward: tinytorch (reference) vs PyTorch CPU.

Causal self-attention on (batch, heads, T, head_dim) float32 inputs at three sequence
lengths; each framework computes the attention output, sums it and backpropagates into q, k
and v. The median of many steps is taken for each in the same run; the time ratio is what to
read. The (T x T) score matrix is why time and memory grow with the square of T.

    .venv/bin/python bench/attention_step.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TITO_SOURCE", "solutions")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tinytorch.autograd  # noqa: E402,F401
from tinytorch.attention import scaled_dot_product_attention  # noqa: E402
from tinytorch.tensor import Tensor  # noqa: E402
from timing import median_seconds  # noqa: E402

BATCH, HEADS, HEAD_DIM = 8, 4, 32
LENGTHS = (32, 128, 256)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"causal attention forward+backward, batch {BATCH}, {HEADS} heads of {HEAD_DIM}, float32, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'T':>5} {'tinytorch ms':>13} {'pytorch ms':>11} {'time ratio':>11} {'scores MB':>10}")
    for length in LENGTHS:
        q, k, v = (rng.standard_normal((BATCH, HEADS, length, HEAD_DIM)).astype(np.float32) for _ in range(3))
        ours = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]

        def ours_step() -> None:
            for t in ours:
                t.grad = None
            scaled_dot_product_attention(*ours, is_causal=True).sum().backward()

        def theirs_step() -> None:
            for t in theirs:
                t.grad = None
            F.scaled_dot_product_attention(*theirs, is_causal=True).sum().backward()

        ours_step()
        theirs_step()
        if not np.allclose(ours[0].grad.data, theirs[0].grad.numpy(), rtol=1e-3, atol=1e-4):
            raise SystemExit(f"gradients disagree at T={length}: fix module 12 first")
        repeats = max(5, 2000 // length)
        t_ours, t_theirs = median_seconds(ours_step, repeats), median_seconds(theirs_step, repeats)
        scores_mb = BATCH * HEADS * length * length * 4 / 1e6
        print(f"{length:5d} {t_ours * 1e3:13.2f} {t_theirs * 1e3:11.2f} {t_ours / t_theirs:10.1f}x {scores_mb:10.1f}")


if __name__ == "__main__":
    main()
