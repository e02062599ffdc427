"""What does wrapping numpy in a Tensor cost? Reference Tensor vs raw numpy vs PyTorch CPU.

For each operation and size, the median time of many repeats, and the ratio to numpy measured
in the same run. Small tensors show the per-call overhead of Python (the Tensor's checks and
object creation); large ones show that the arithmetic itself is numpy's.

    TITO_SOURCE=solutions .venv/bin/python bench/tensor_overhead.py
"""

from __future__ import annotations

import os

os.environ.setdefault("TITO_SOURCE", "solutions")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tinytorch.tensor import Tensor  # noqa: E402
from timing import median_seconds  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for size in (16, 256, 2048):
        a_np = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
        b_np = np.random.default_rng(1).standard_normal((size,)).astype(np.float32)
        a_tt, b_tt = Tensor(a_np), Tensor(b_np)
        a_th, b_th = torch.from_numpy(a_np), torch.from_numpy(b_np)
        repeats = 2000 if size <= 256 else 20
        cases = {
            "a + row": (lambda: a_np + b_np, lambda: a_tt + b_tt, lambda: a_th + b_th),
            "a @ a": (lambda: a_np @ a_np, lambda: a_tt @ a_tt, lambda: a_th @ a_th),
            "a.sum(axis=0)": (lambda: a_np.sum(axis=0), lambda: a_tt.sum(axis=0), lambda: a_th.sum(dim=0)),
        }
        for name, (numpy_op, tinytorch_op, torch_op) in cases.items():
            if name == "a @ a" and size > 256:
                repeats_here = 5
            else:
                repeats_here = repeats
            t_np = median_seconds(numpy_op, repeats_here)
            t_tt = median_seconds(tinytorch_op, repeats_here)
            t_th = median_seconds(torch_op, repeats_here)
            rows.append((f"{name} ({size}x{size})", t_np, t_tt, t_th))
    print(f"{'operation':28} {'numpy':>10} {'tinytorch':>10} {'torch':>10} {'tinytorch/numpy':>16}")
    for name, t_np, t_tt, t_th in rows:
        print(f"{name:28} {t_np * 1e6:9.1f}µ {t_tt * 1e6:9.1f}µ {t_th * 1e6:9.1f}µ {t_tt / t_np:15.2f}x")


if __name__ == "__main__":
    main()
