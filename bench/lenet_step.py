"""One LeNet training step, tinytorch vs PyTorch CPU, in one run: module 09's reference layers,
the same model after module 18's `accelerate` (with its fused cross-entropy), and torch.

Two phases, because `accelerate` also changes a setting of the whole process (it asks glibc's
malloc to keep freed memory, so big arrays stop costing page faults every step): first the
reference and torch as they run today, then all three after `accelerate`. Each ratio is
against torch measured in the same phase.

The model is the 1998 milestone's default preset (milestones/cnn_1998.yaml: conv 1->16 and
16->32, 5x5, max-pool 2, Linear 800-120-84-10), batch 64 of MNIST's shape; a step is forward,
cross-entropy, zero_grad, backward and an Adam step. Median over repeated steps after a
warm-up, the three frameworks interleaved in one process, the same number of threads for
numpy's BLAS and for torch (`--threads`, default 1: on a machine whose cores are shared, BLAS
threads waiting on each other make small products slower, and the ratio meaningless).
Before timing, the accelerated model's loss and gradients are checked against the reference's.

Then a per-operation breakdown of the three steps: for tinytorch, each layer's forward, the
loss, every Function's backward (by class) and the optimizer; for torch, its profiler's
operators by self CPU time.

    TITO_SOURCE=solutions .venv/bin/python bench/lenet_step.py [--threads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path


def threads_from_argv() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for numpy and torch (default 1)")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per framework (default 30)")
    return parser.parse_args()


ARGS = threads_from_argv()
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)  # before numpy loads its BLAS
os.environ.setdefault("TITO_SOURCE", "solutions")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "milestones"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import tinytorch.autograd  # noqa: E402,F401
from cnn_1998 import build_lenet  # noqa: E402
from tinytorch.acceleration import accelerate, cross_entropy_fast  # noqa: E402
from tinytorch.autograd import Function  # noqa: E402
from tinytorch.losses import CrossEntropyLoss  # noqa: E402
from tinytorch.optimizers import Adam  # noqa: E402
from tinytorch.tensor import Tensor, manual_seed  # noqa: E402
from timing import median_seconds  # noqa: E402

BATCH, CHANNELS, HIDDEN = 64, (16, 32), (120, 84)


def torch_lenet() -> torch.nn.Module:
    (c1, c2), (h1, h2) = CHANNELS, HIDDEN
    return torch.nn.Sequential(torch.nn.Conv2d(1, c1, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(c1, c2, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                               torch.nn.Linear(c2 * 25, h1), torch.nn.ReLU(), torch.nn.Linear(h1, h2), torch.nn.ReLU(),
                               torch.nn.Linear(h2, 10))


class TinyStep:
    """One training step of a tinytorch model, with optional per-operation timing."""

    def __init__(self, model, loss_fn, images: np.ndarray, labels: np.ndarray) -> None:
        self.model, self.loss_fn = model, loss_fn
        self.optimizer = Adam(model.parameters())
        self.images, self.labels = Tensor(images), Tensor(labels)
        self.times: dict[str, float] | None = None

    def _timed(self, name: str, action):
        if self.times is None:
            return action()
        start = time.perf_counter()
        result = action()
        self.times[name] += time.perf_counter() - start
        return result

    def __call__(self) -> float:
        x = self.images
        for index, layer in enumerate(self.model):
            x = self._timed(f"forward {index:2d} {type(layer).__name__}", lambda layer=layer, x=x: layer(x))
        loss = self._timed("forward loss", lambda: self.loss_fn(x, self.labels))
        self.optimizer.zero_grad()
        loss.backward()
        self._timed("optimizer step", self.optimizer.step)
        return loss.item()

    def breakdown(self, repeats: int) -> dict[str, float]:
        """Mean milliseconds per step of each operation: forwards by layer, backwards by Function."""
        self.times = defaultdict(float)
        originals = {cls: cls.backward for cls in _function_classes()}

        def timing(cls, backward):
            def timed(function, grad):
                start = time.perf_counter()
                result = backward(function, grad)
                self.times[f"backward {cls.__name__}"] += time.perf_counter() - start
                return result
            return timed

        for cls, backward in originals.items():
            cls.backward = timing(cls, backward)
        try:
            start = time.perf_counter()
            for _ in range(repeats):
                self()
            total = time.perf_counter() - start
        finally:
            for cls, backward in originals.items():
                cls.backward = backward
        times = {name: seconds / repeats * 1e3 for name, seconds in self.times.items()}
        times["(autograd walk, zero_grad, overhead)"] = total / repeats * 1e3 - sum(times.values())
        self.times = None
        return times


def _function_classes() -> list[type]:
    found, stack = [], [Function]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if "backward" in sub.__dict__:
                found.append(sub)
            stack.append(sub)
    return found


def torch_breakdown(step, repeats: int) -> dict[str, float]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            step()
    rows = sorted(prof.key_averages(), key=lambda event: -event.self_cpu_time_total)
    return {event.key: event.self_cpu_time_total / repeats / 1e3 for event in rows[:14]}


def print_breakdown(title: str, times: dict[str, float], order_by_time: bool = True) -> None:
    print(f"\n{title}")
    items = sorted(times.items(), key=lambda item: -item[1]) if order_by_time else list(times.items())
    for name, ms in items:
        print(f"  {name:44} {ms:8.2f} ms")
    print(f"  {'total':44} {sum(times.values()):8.2f} ms")


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)

    manual_seed(1998)
    reference = build_lenet(CHANNELS, HIDDEN)
    fast_model = build_lenet(CHANNELS, HIDDEN)
    theirs = torch_lenet()
    with torch.no_grad():
        for p, q in zip(theirs.parameters(), reference.parameters()):
            p.copy_(torch.from_numpy(q.data))
    optimizer, loss_fn = torch.optim.Adam(theirs.parameters()), torch.nn.CrossEntropyLoss()
    x_t, y_t = torch.from_numpy(images), torch.from_numpy(labels)

    def torch_step() -> float:
        loss = loss_fn(theirs(x_t), y_t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    slow = TinyStep(reference, CrossEntropyLoss(), images, labels)
    breakdown_steps = max(5, ARGS.repeats // 3)

    # phase 1, before accelerate(): numpy's memory comes and goes with malloc's defaults
    before = interleaved({"reference": slow, "torch": torch_step})
    slow_breakdown = slow.breakdown(breakdown_steps)

    # phase 2: accelerate() swaps the layers and keeps freed memory (a setting of the whole process)
    fast_model.load_state_dict(reference.state_dict())  # the parameters phase 1 trained to
    accelerate(fast_model)
    fast = TinyStep(fast_model, cross_entropy_fast, images, labels)
    slow(), fast()  # gradients at the same parameters (each step's update comes after them)
    worst = max(float(np.abs(a.grad.data - b.grad.data).max() / (np.abs(a.grad.data).max() + 1e-12))
                for a, b in zip(reference.parameters(), fast_model.parameters()))
    if worst > 1e-4:
        raise SystemExit(f"accelerated LeNet disagrees with the reference (relative gradient difference "
                         f"{worst:.2e}): fix module 18 first")
    after = interleaved({"reference": slow, "accelerated": fast, "torch": torch_step})

    print(f"LeNet {CHANNELS[0]}/{CHANNELS[1]} channels, hidden {HIDDEN}, batch {BATCH}, float32: one training step "
          f"(forward, cross-entropy, backward, Adam); threads: numpy BLAS {ARGS.threads}, torch {torch.get_num_threads()}")
    print(f"{'':44} {'ms/step':>9} {'images/s':>9} {'vs torch':>9}")
    rows = (("tinytorch reference (09), malloc defaults", before["reference"], before["torch"]),
            ("pytorch (same phase)", before["torch"], before["torch"]),
            ("tinytorch reference (09), freed memory kept", after["reference"], after["torch"]),
            ("tinytorch accelerated (18)", after["accelerated"], after["torch"]),
            ("pytorch (same phase)", after["torch"], after["torch"]))
    for name, seconds, torch_seconds in rows:
        print(f"{name:44} {seconds * 1e3:9.2f} {BATCH / seconds:9.0f} {seconds / torch_seconds:8.2f}x")
    print(f"speed-up of accelerate() over the reference as it runs today: {before['reference'] / after['accelerated']:.2f}x "
          f"(keeping freed memory alone: {before['reference'] / after['reference']:.2f}x)")

    print_breakdown("per operation, tinytorch reference, malloc defaults (ms per step)", slow_breakdown)
    print_breakdown("per operation, tinytorch accelerated (ms per step)", fast.breakdown(breakdown_steps))
    print_breakdown("per operation, pytorch (profiler, self CPU time, top 14; ms per step)",
                    torch_breakdown(torch_step, breakdown_steps))


def interleaved(steps: dict) -> dict[str, float]:
    """Median seconds per step of each action, measured in alternating rounds, so that a noisy
    neighbour slows all of them alike."""
    rounds, per_round = 3, max(1, ARGS.repeats // 3)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, action in steps.items():
            samples[name].append(median_seconds(action, per_round, warmup=2))
    return {name: float(np.median(values)) for name, values in samples.items()}


if __name__ == "__main__":
    main()
