# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 07: Training
#
# You have every part of learning: a model (module 03), a loss (04), gradients (05) and an
# optimizer (06). This module puts them together into the loop that trains every network, from
# the XOR milestone to TinyGPT, and adds the four things that separate a loop that works on a
# toy from one you can leave running overnight:
#
# - a **learning-rate schedule** (`CosineWarmupSchedule`): a gentle start, then a slow landing,
# - **gradient clipping** (`clip_grad_norm`): one bad batch must not throw the model away,
# - **evaluation** (`accuracy`, `Trainer.evaluate`): measuring without learning,
# - **checkpoints** (`Trainer.save_checkpoint` / `load_checkpoint`): stop, and later carry on
#   exactly as if you never had.
#
# The `Trainer` class ties them together, so a milestone script reads
#
# ```python
# trainer = Trainer(model, Adam(model.parameters(), lr=1e-3), CrossEntropyLoss(),
#                   schedule=..., clip_norm=1.0)
# history = trainer.fit(train_batches, epochs=10, val_batches=val_batches)
# ```
#
# Names follow PyTorch where it has the concept (`clip_grad_norm` is
# `torch.nn.utils.clip_grad_norm_`; the schedule is what `torch.optim.lr_scheduler` would give
# with a linear warm-up followed by cosine annealing).

# %%
from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from tinytorch.autograd import no_grad
from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. The five lines of every training loop
#
# Strip any training script down and you find the same five lines, repeated for every batch:
#
# ```python
# outputs = model(inputs)           # 1. forward: predictions, and (module 05) the graph behind them
# loss = loss_fn(outputs, targets)  # 2. one number that says how wrong they are
# optimizer.zero_grad()             # 3. forget the previous batch's gradients
# loss.backward()                   # 4. d loss / d parameter, into every p.grad
# optimizer.step()                  # 5. move every parameter a little downhill
# ```
#
# Each line is there for a reason:
#
# - **forward** records how the loss was computed, so that **backward** can walk the record in
#   reverse and send gradients to every parameter.
# - **zero_grad before backward.** `backward()` *adds* into `.grad`: that is what makes a
#   parameter used twice receive both contributions (module 05). The price is that gradients of
#   the previous batch are still there, and without `zero_grad` the second step would follow
#   the sum of two batches' gradients, the third the sum of three, and so on: the steps grow
#   and the direction stops being the current batch's. (Sometimes this is what you want:
#   *gradient accumulation* sums several small batches on purpose before one step, to imitate
#   a batch too big for memory.)
# - **step** reads `p.grad` and changes `p.data` in place. It must come after backward and
#   before the next forward.
#
# Two more lines wrap the five once you add the rest of this module: clip the gradients
# between backward and step, and advance the learning-rate schedule after the step.
#
# **Training mode and evaluation mode.** Some layers behave differently while learning:
# `Dropout` (module 03) zeroes random elements in training and does nothing in evaluation.
# `model.train()` and `model.eval()` switch every layer inside a model. Forgetting `eval()`
# makes validation numbers noisy and worse than the model really is; forgetting to switch
# back to `train()` silently turns dropout off for the rest of training.
#
# **Evaluation without a graph.** During evaluation we never call `backward()`, so recording
# the graph is wasted work and, worse, wasted memory: every intermediate result stays alive as
# long as the graph does. `with no_grad():` (module 05) turns the recording off.

# %% [markdown]
# ## 2. Learning-rate schedules: warm-up, then cosine decay
#
# The learning rate is the most important number in training, and the best value is not the
# same at the start as at the end.
#
# **Warm-up.** At step 0 the weights are random and Adam knows nothing about the gradients:
# its second-moment estimate `v` is built from one or two batches, so the size of its first
# steps is a noisy guess, and a large learning rate multiplies that noise. A bad first few
# steps can push a network (a transformer especially) into a region it never recovers from.
# The cure is to start small and grow the learning rate linearly over the first
# `warmup_steps` steps, while the optimizer's statistics settle.
#
# **Cosine decay.** Late in training, a large learning rate makes the parameters bounce around
# the bottom of the valley instead of settling into it. Lowering it lets them settle. A cosine
# curve is the popular shape: it stays near the peak for a while, falls fastest in the middle,
# and flattens out gently at the end.
#
# `CosineWarmupSchedule(optimizer, base_lr, warmup_steps, total_steps, min_lr=0.0)` gives the
# learning rate for step `s` (counting from 0), with `W = warmup_steps`, `T = total_steps`:
#
# - warm-up, `s < W`: `base_lr * (s + 1) / W`, so the first step already learns
#   (`base_lr / W`) and step `W - 1` reaches `base_lr`;
# - decay, `W <= s <= T`: with `progress = (s - W) / (T - W)` going from 0 to 1,
#   `min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2`, which is `base_lr` at
#   `s = W`, the midpoint `(base_lr + min_lr) / 2` halfway, and `min_lr` at `s = T`;
# - after the end, `s > T`: `min_lr`.
#
# With `base_lr = 0.1, W = 4, T = 20, min_lr = 0.01` that is
#
# | step | 0 | 1 | 2 | 3 | 4 | 8 | 12 | 16 | 20 | 25 |
# | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
# | lr | 0.025 | 0.05 | 0.075 | 0.1 | 0.1 | 0.0868 | 0.055 | 0.0232 | 0.01 | 0.01 |
#
# `lr_at(step)` is that formula, a pure function of the step. The schedule object also keeps
# a position, `current_step`, and writes the learning rate into the optimizer: `optimizer.lr`
# is a plain attribute that the optimizer reads at every `step()` (module 06), so a schedule
# just overwrites it. Constructing the schedule sets the learning rate of step 0;
# `step()`, called once after every `optimizer.step()`, advances one step and writes the new
# learning rate. This is how `torch.optim.lr_scheduler` works too: the same curve comes out of
# torch's `LinearLR` followed by `CosineAnnealingLR`.
#
# Arguments that make no sense (`warmup_steps < 0`, `total_steps <= warmup_steps`,
# `base_lr <= 0`, `min_lr` outside `[0, base_lr]`) are a `ValueError` naming the value; so is a
# negative step.
#
# A schedule is part of the training state: resuming from a checkpoint with the schedule back
# at step 0 would warm up all over again. `state_dict()` returns its settings and position as
# plain numbers; `load_state_dict()` restores them and writes the learning rate for the
# restored position into the optimizer.

# %% nbgrader={"grade": false, "grade_id": "cosine-warmup-schedule", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CosineWarmupSchedule:
    """Linear warm-up to base_lr over warmup_steps, then cosine decay to min_lr at total_steps."""

    def __init__(self, optimizer: Any, base_lr: float, warmup_steps: int, total_steps: int,
                 min_lr: float = 0.0) -> None:
        """Check the arguments (ValueError), store them, start at step 0 and set optimizer.lr = lr_at(0)."""
        ### BEGIN SOLUTION
        if warmup_steps < 0:
            raise ValueError(f"CosineWarmupSchedule: warmup_steps must be >= 0, got {warmup_steps}")
        if total_steps <= warmup_steps:
            raise ValueError(f"CosineWarmupSchedule: total_steps ({total_steps}) must be larger than "
                             f"warmup_steps ({warmup_steps}) to leave room for the decay")
        if base_lr <= 0:
            raise ValueError(f"CosineWarmupSchedule: base_lr must be positive, got {base_lr}")
        if not 0 <= min_lr <= base_lr:
            raise ValueError(f"CosineWarmupSchedule: min_lr must be in [0, base_lr={base_lr}], got {min_lr}")
        self.optimizer = optimizer
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr = float(min_lr)
        self.current_step = 0
        self.optimizer.lr = self.lr_at(0)
        ### END SOLUTION

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` (0-based), as a Python float."""
        ### BEGIN SOLUTION
        if step < 0:
            raise ValueError(f"CosineWarmupSchedule.lr_at: step must be >= 0, got {step}")
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        ### END SOLUTION

    def step(self) -> float:
        """Advance one step, write the new learning rate into optimizer.lr, and return it."""
        ### BEGIN SOLUTION
        self.current_step += 1
        self.optimizer.lr = self.lr_at(self.current_step)
        return self.optimizer.lr
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """base_lr, warmup_steps, total_steps, min_lr and current_step, as plain Python numbers."""
        ### BEGIN SOLUTION
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps, "min_lr": self.min_lr,
                "current_step": self.current_step}
        ### END SOLUTION

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the settings and position, and write lr_at(current_step) into the optimizer."""
        ### BEGIN SOLUTION
        self.base_lr = float(state["base_lr"])
        self.warmup_steps = int(state["warmup_steps"])
        self.total_steps = int(state["total_steps"])
        self.min_lr = float(state["min_lr"])
        self.current_step = int(state["current_step"])
        self.optimizer.lr = self.lr_at(self.current_step)
        ### END SOLUTION


# %% [markdown]
# Here is the curve, printed as bars: a short ramp, a plateau of two steps at the peak
# (steps `W - 1` and `W`), the cosine's slow-fast-slow descent, and the floor.

# %%
if __name__ == "__main__":
    from types import SimpleNamespace

    demo_optimizer = SimpleNamespace(lr=None)  # a schedule only needs an object with `lr`
    schedule = CosineWarmupSchedule(demo_optimizer, base_lr=0.1, warmup_steps=4, total_steps=20, min_lr=0.01)
    for s in range(23):
        lr = demo_optimizer.lr
        print(f"step {s:2d}  lr {lr:.4f}  " + "#" * round(lr * 400))
        schedule.step()

# %% [markdown]
# ## 3. Exploding gradients, and clipping by the global norm
#
# Now and then one batch produces a huge gradient: an unusual example, a division by a tiny
# variance, a recurrent product of many factors above 1, a loss near a cliff. One optimizer
# step with that gradient can undo hours of training (and with Adam, poison its running
# averages for many steps after). The symptom is a loss curve with sudden spikes, or a loss
# that becomes `nan`.
#
# **Clipping** bounds the size of every step. Treat all gradients of the model as one long
# vector `g` (every `p.grad`, flattened and concatenated) and measure its length, the
# **global L2 norm** `||g|| = sqrt(sum over all parameters of sum(p.grad ** 2))`. If it is
# larger than `max_norm`, scale *every* gradient by the same factor `max_norm / ||g||`, so the
# whole vector gets length `max_norm`.
#
# **Why global, not per tensor?** The gradient is a direction in the space of all parameters:
# the steepest way down. Scaling all of it by one number keeps that direction and only
# shortens the step. Clipping each tensor separately would shrink the large ones more than the
# small ones, turning the step into a different direction, one that the loss never asked for.
# The demo below measures the angle.
#
# `clip_grad_norm(parameters, max_norm)` follows `torch.nn.utils.clip_grad_norm_` exactly:
#
# - parameters whose `grad` is `None` (unused in this forward pass) are skipped;
# - the norm is computed before clipping and returned as a Python float: it is worth logging,
#   since a rising gradient norm is an early warning;
# - the scale is `max_norm / (norm + 1e-6)` (the `1e-6` guards against dividing by zero), and
#   the gradients are multiplied by it only when it is below 1: a gradient that is already
#   small enough is left exactly as it was;
# - the gradients are changed in place, keeping their dtype: each `p.grad` stays the same
#   Tensor object, holding the scaled numbers;
# - `parameters` may be any iterable, `model.parameters()` or a generator: go through it once.
#
# Clipping works on the numbers inside the gradients (`p.grad.data`); it is not part of any
# graph, so plain numpy is the right tool here.

# %% nbgrader={"grade": false, "grade_id": "clip-grad-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm before."""
    ### BEGIN SOLUTION
    grads = [p.grad for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(np.sum(np.square(g.data, dtype=np.float64))) for g in grads))
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g.data = (g.data * scale).astype(g.data.dtype, copy=False)
    return total
    ### END SOLUTION


# %% [markdown]
# Clipping globally keeps the direction; clipping each tensor on its own does not. Two
# gradients, one large and one small, clipped to a total length of 1: the angle to the
# original gradient is 0 degrees for global clipping, and far from 0 for per-tensor clipping.

# %%
if __name__ == "__main__":
    big = Tensor(np.zeros(3), requires_grad=True)
    small = Tensor(np.zeros(2), requires_grad=True)
    big.grad, small.grad = Tensor(np.array([30.0, -40.0, 0.0])), Tensor(np.array([0.3, 0.4]))
    original = np.concatenate([big.grad.data, small.grad.data])
    norm = clip_grad_norm([big, small], max_norm=1.0)
    global_clip = np.concatenate([big.grad.data, small.grad.data])
    per_tensor = np.concatenate([g / max(1.0, np.linalg.norm(g)) for g in (original[:3], original[3:])])

    def angle(a: np.ndarray, b: np.ndarray) -> float:
        cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))

    print(f"norm before: {norm:.3f}, after global clipping: {np.linalg.norm(global_clip):.6f}")
    print(f"angle to the true gradient: global {angle(original, global_clip):.2f} deg, "
          f"per tensor {angle(original, per_tensor):.2f} deg")

# %% [markdown]
# ## 4. Accuracy
#
# The loss is what we optimise; accuracy is what we report: the fraction of examples whose
# predicted class is the true one. `accuracy(logits, targets)` takes the model's raw outputs
# (a Tensor or numpy array) and the targets:
#
# - **several classes**, logits `(N, C)`: the prediction is `argmax` over the last axis (the
#   largest logit is the largest probability, so there is no need for a softmax). Targets are
#   class indices `(N,)`; targets of the same shape as the logits (one-hot or probabilities)
#   are turned into indices by their own argmax.
# - **one output column**, logits `(N, 1)` or `(N,)`, as a binary classifier with
#   `BCEWithLogitsLoss` produces: the prediction is 1 where the logit is `> 0` (a probability
#   above 0.5) and 0 otherwise; targets are 0/1 labels of `N` elements in any shape. (A model
#   that ends in a `Sigmoid` outputs probabilities, not logits: pass `probabilities - 0.5`, or
#   better, drop the final `Sigmoid` and train with `BCEWithLogitsLoss`, as module 04 advises.)
#
# It returns a Python float in `[0, 1]`. Targets that do not give one label per example are a
# `ValueError` naming both shapes; so is an empty batch.

# %% nbgrader={"grade": false, "grade_id": "accuracy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _numbers(value: Any) -> np.ndarray:
    """The numpy array inside a Tensor, or `value` as an array."""
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def accuracy(logits: Any, targets: Any) -> float:
    """Fraction of examples whose predicted class (argmax, or logit > 0 for one column) is the target."""
    ### BEGIN SOLUTION
    scores, labels = _numbers(logits), _numbers(targets)
    if scores.ndim == 0 or scores.size == 0:
        raise ValueError(f"accuracy: need a batch of logits, got shape {scores.shape}")
    if scores.ndim == 1 or scores.shape[-1] == 1:
        predicted = (scores.reshape(-1) > 0).astype(np.int64)
        if labels.size != predicted.size:
            raise ValueError(f"accuracy: logits of shape {scores.shape} need {predicted.size} 0/1 labels, "
                             f"got targets of shape {labels.shape}")
        truth = (labels.reshape(-1) > 0.5).astype(np.int64)
    else:
        predicted = scores.argmax(axis=-1)
        if labels.shape == scores.shape:
            truth = labels.argmax(axis=-1)  # one-hot or probability targets
        elif labels.size == predicted.size:
            truth = labels.reshape(predicted.shape)
        else:
            raise ValueError(f"accuracy: logits of shape {scores.shape} need class indices of shape "
                             f"{predicted.shape}, got targets of shape {labels.shape}")
    return float(np.mean(predicted == truth))
    ### END SOLUTION


# %%
if __name__ == "__main__":
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    print("3 classes:", accuracy(logits, np.array([0, 1, 1, 2])))            # rows 0 and 1 right: 0.5
    print("1 column:", accuracy(np.array([[-1.0], [2.0], [0.5], [-3.0]]), np.array([0, 1, 0, 0])))  # 0.75

# %% [markdown]
# ## 5. Checkpoint files: what to save, and how
#
# A long training run will be interrupted: a time limit on a shared machine, a crash, a laptop
# lid. A **checkpoint** saves enough to carry on. What is "enough"? To resume *exactly*, so that
# the continued run produces the very same numbers as a run that was never interrupted, you need
# everything the next step reads:
#
# | state | why the next step needs it |
# | --- | --- |
# | the model's parameters | obviously |
# | the optimizer's state | Adam's moments `m` and `v` and its step count `t`: without them the next steps are warm-up steps of a new Adam, with a bias correction for `t = 1` |
# | the schedule's position | otherwise the learning rate jumps back to the start of warm-up |
# | the counters (epoch, step) | the schedule, logging and "train for 10 epochs" depend on them |
# | the random generator's state | every dropout mask (and, in module 08, the shuffling order) is drawn from `generator()`; a fresh seed draws different masks |
#
# Leave any one out and training still runs, and still looks fine, but it is no longer the run
# you interrupted. The `Trainer` below gathers all of it in `state_dict()`.
#
# **The file format, and why never pickle.** Python's `pickle` can store any object, and that
# is exactly the problem: loading a pickle runs code chosen by whoever wrote the file. A
# checkpoint downloaded from the internet, or received from a classmate, must not be able to
# do that. (PyTorch moved `torch.load` to `weights_only=True` for this reason.) We store
# numbers as numbers:
#
# - every numpy array goes into a `.npz` file (numpy's zip of `.npy` arrays) under a key that
#   says where it came from, such as `"model/0.weight"` or `"optimizer/state/0/m"`;
# - everything else (the nesting of dicts and lists, the plain numbers, strings and `None`)
#   becomes one JSON text, stored in the same file as a string array under `"__structure__"`,
#   in which each array is replaced by a reference to its key.
#
# Reading needs only `np.load(path, allow_pickle=False)` and `json.loads`: no code from the
# file ever runs.
#
# JSON knows dicts with *string* keys, lists, numbers, strings, booleans and `null`. A state
# dict can hold a little more, so a few values are written as a one-key JSON object, a *tag*:
#
# | value | JSON | and back |
# | --- | --- | --- |
# | `None`, `bool`, `int`, `float`, `str` | itself | itself |
# | `list` | a list, items encoded | a list |
# | numpy array (`np.ndarray`) | `{"__array__": key}`, the array stored under `key` | the array |
# | numpy number (`np.float64(0.9)`, `np.int64(3)`) | `{"__scalar__": key}`, stored as a 0-d array | `array[()]`, the same numpy number |
# | `Tensor` | `{"__tensor__": key}`, its `.data` stored under `key` | `Tensor(array)` |
# | `tuple` | `{"__tuple__": [items]}` | a tuple |
# | `dict` whose keys are all strings not starting with `"__"` | a JSON object, values encoded | a dict |
# | any other `dict` (integer keys, say) | `{"__dict__": [[key, value], ...]}`, keys and values encoded | a dict |
#
# Anything else (a function, an arbitrary object) cannot be saved without pickle: a `TypeError`
# naming where in the state it was found. So can an array of Python objects (`dtype=object`):
# pass every array through the helper `_check_array`, which refuses those. Check numpy scalars
# before plain numbers: `np.float64` is a subclass of `float`, and would otherwise come back as
# a plain float. Because a plain dict never has a key starting with `"__"`, a one-key object
# whose key is a tag can only be a tag.
#
# The array keys come from the path to the value, joined by `/` (`encode(value, path)` is
# called with the path so far; the top level is `""`). The helper `_array_key(path, arrays)`
# gives a key that is not taken yet (a path could repeat, as `{"a/b": x, "a": {"b": y}}`
# shows) and is not one of `np.savez`'s own argument names. `unflatten_state` checks the format
# tag and leaves you `decode`, the reverse of `encode`.
#
# **Atomic writes.** Saving a checkpoint takes a moment, and the process can be killed in the
# middle of it. If we wrote straight into `run.npz`, a kill halfway would leave a truncated
# file where the last good checkpoint used to be: we would have lost both. So we write to a
# temporary file *in the same folder*, make sure it is on disk (`flush`, `os.fsync`), and then
# `os.replace` it onto the real name. A rename within one file system is atomic: anyone looking
# sees either the old complete file or the new complete file, never half of one. If anything
# fails before the rename, delete the temporary file and let the error propagate. Tools:
# `tempfile.mkstemp(dir=path.parent)` creates the temporary file and returns an open OS handle
# and its name; `os.fdopen(handle, "wb")` turns the handle into a file object; and
# `np.savez(file_object, allow_pickle=False, **arrays)` writes the arrays into it (given a file
# *name* instead, `np.savez` would append `.npz` to a name that lacks it, and
# `allow_pickle=False` makes it refuse anything that would need pickle).
#
# A truncated or corrupt file (from a full disk, an interrupted copy) must not surface as a
# puzzling `zipfile.BadZipFile` from deep inside numpy: `load_state` turns any failure to read
# the file into a `ValueError` that names the file. A missing file stays a `FileNotFoundError`.

# %% nbgrader={"grade": false, "grade_id": "state-files", "locked": false, "schema_version": 3, "solution": true, "task": false}
STRUCTURE_KEY = "__structure__"
FORMAT_NAME = "tinytorch-checkpoint"
FORMAT_VERSION = 1
TAGS = ("__array__", "__scalar__", "__tensor__", "__tuple__", "__dict__")
_SAVEZ_ARGUMENTS = ("file", "allow_pickle")  # np.savez(file, allow_pickle=..., **arrays)


def _check_array(array: np.ndarray, path: str) -> np.ndarray:
    """`array` itself, or a TypeError if it holds Python objects (only pickle could store those)."""
    if array.dtype.hasobject:
        raise TypeError(f"cannot save the array at {path or 'the top level'!r}: it holds Python objects "
                        "(dtype object), which only pickle can store")
    return array


def _array_key(path: str, arrays: dict[str, np.ndarray]) -> str:
    """`path` (or "value" at the top level) as an npz key that is not taken yet."""
    base = path.strip("/") or "value"
    key, count = base, 1
    while key in arrays or key == STRUCTURE_KEY or key in _SAVEZ_ARGUMENTS:
        count += 1
        key = f"{base}#{count}"
    return key


def flatten_state(state: Any) -> tuple[dict[str, np.ndarray], str]:
    """Split a state into ({key: numpy array}, JSON text of everything else), as tabled above.

    The JSON text is an object {"format": FORMAT_NAME, "version": FORMAT_VERSION, "state": ...}.
    """
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any, path: str) -> Any:
        """`value` (found at `path`) as JSON-ready data; arrays go into `arrays` under _array_key(path, arrays)."""
        ### BEGIN SOLUTION
        if isinstance(value, Tensor):
            key = _array_key(path, arrays)
            arrays[key] = _check_array(value.data, path)
            return {"__tensor__": key}
        if isinstance(value, np.ndarray):
            key = _array_key(path, arrays)
            arrays[key] = _check_array(value, path)
            return {"__array__": key}
        if isinstance(value, np.generic):  # before float: np.float64 is a float
            key = _array_key(path, arrays)
            arrays[key] = _check_array(np.asarray(value), path)
            return {"__scalar__": key}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [encode(item, f"{path}/{index}") for index, item in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [encode(item, f"{path}/{index}") for index, item in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(key, str) and not key.startswith("__") for key in value):
                return {key: encode(item, f"{path}/{key}") for key, item in value.items()}
            return {"__dict__": [[encode(key, f"{path}/{key}.key"), encode(item, f"{path}/{key}")]
                                 for key, item in value.items()]}
        raise TypeError(f"cannot save a {type(value).__name__} at {path or 'the top level'!r} of the state: "
                        "a checkpoint holds dicts, lists, tuples, numbers, strings, None, Tensors and "
                        "numpy arrays, never pickled objects")
        ### END SOLUTION

    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "state": encode(state, "")}
    return arrays, json.dumps(document)


def unflatten_state(arrays: dict[str, np.ndarray], structure: str) -> Any:
    """The state that flatten_state split into `arrays` and `structure` (ValueError if not ours)."""
    document = json.loads(structure)
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ValueError("not a tinytorch checkpoint: the structure has no format tag "
                         f"{FORMAT_NAME!r}")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format version {document.get('version')!r}, "
                         f"this code reads version {FORMAT_VERSION}")

    def decode(node: Any) -> Any:
        """The value a JSON node stands for: tags become arrays, numpy numbers, Tensors, tuples, dicts."""
        ### BEGIN SOLUTION
        if isinstance(node, list):
            return [decode(item) for item in node]
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)) in TAGS:
                (tag, content), = node.items()
                if tag == "__array__":
                    return arrays[content]
                if tag == "__scalar__":
                    return arrays[content][()]
                if tag == "__tensor__":
                    return Tensor(arrays[content])
                if tag == "__tuple__":
                    return tuple(decode(item) for item in content)
                return {decode(key): decode(item) for key, item in content}  # "__dict__"
            return {key: decode(item) for key, item in node.items()}
        return node
        ### END SOLUTION

    return decode(document["state"])


def save_state(path: str | os.PathLike, state: Any) -> Path:
    """Write `state` to one .npz file at `path` (arrays + "__structure__" JSON), atomically; return the path."""
    ### BEGIN SOLUTION
    path = Path(path)
    arrays, structure = flatten_state(state)  # an unsaveable state fails before the disk is touched
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **{STRUCTURE_KEY: np.array(structure)}, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
    ### END SOLUTION


def load_state(path: str | os.PathLike) -> Any:
    """Read a state written by save_state, without pickle; a bad file is a ValueError naming it."""
    ### BEGIN SOLUTION
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if STRUCTURE_KEY not in npz.files:
                raise ValueError(f"it has no {STRUCTURE_KEY!r} entry, so it was not written by save_state")
            structure = str(npz[STRUCTURE_KEY])
            arrays = {key: npz[key] for key in npz.files if key != STRUCTURE_KEY}
        return unflatten_state(arrays, structure)
    except Exception as error:  # noqa: BLE001 - whatever broke, the message must name the file
        raise ValueError(f"cannot load checkpoint {path}: the file is corrupt, truncated or not a "
                         f"tinytorch checkpoint ({type(error).__name__}: {error})") from error
    ### END SOLUTION


# %%
if __name__ == "__main__":
    demo_dir = Path(tempfile.mkdtemp())
    state = {"model": {"0.weight": np.eye(2, dtype=np.float32)}, "step": 7, "betas": (0.9, 0.999),
             "moments": {0: np.zeros(3)}, "t": np.int64(7)}
    save_state(demo_dir / "demo.npz", state)
    with np.load(demo_dir / "demo.npz", allow_pickle=False) as npz:
        print("arrays in the file:", npz.files)
        print("structure:", npz[STRUCTURE_KEY])
    print("read back:", load_state(demo_dir / "demo.npz"))

# %% [markdown]
# ## 6. The Trainer
#
# `Trainer(model, optimizer, loss_fn, schedule=None, clip_norm=None)` owns the loop. Its
# counters `epoch` (epochs finished) and `step` (optimizer steps taken) start at 0, and
# `history` is the list of records `fit` has produced.
#
# - `train_step(inputs, targets)`: the five lines, plus clipping (when `clip_norm` is set,
#   `clip_grad_norm` over `model.parameters()` between backward and step) and the schedule's
#   `step()` after the optimizer's; count the step; return the loss as a Python float. Inputs
#   and targets may be Tensors or numpy arrays (wrap arrays with `Tensor(...)`, which keeps
#   their dtype: integer class labels stay integers).
# - `train_epoch(batches)`: put the model in training mode, `train_step` every
#   `(inputs, targets)` pair of `batches`, count the epoch, and return the mean of the step
#   losses. `batches` is anything you can loop over once per epoch: a list of pairs today, the
#   `DataLoader` of module 08 later. No batches at all is a `ValueError`.
# - `evaluate(batches)`: the model in evaluation mode, under `no_grad()`, no optimizer step,
#   and the model's previous mode restored afterwards (even if something fails: `try`/`finally`).
#   Returns `{"loss": ..., "accuracy": ...}` over *all examples*: each batch's (mean) loss and
#   accuracy weighted by its number of examples (the length of its targets), so a smaller last
#   batch counts less. For a regression model the "accuracy" is meaningless; ignore it.
# - `fit(train_batches, epochs, val_batches=None, on_epoch=None)`: `epochs` more epochs. After
#   each, a record `{"epoch", "step", "train_loss", "lr"}` (plus `"val_loss"` and
#   `"val_accuracy"` when there are validation batches) is appended to `history` and passed to
#   `on_epoch(epoch, record)` if given (a progress bar, a log line, early stopping in your own
#   code). Returns the records of this call.
# - `state_dict()`: everything "resume exactly" needs, in one dict:
#   `{"model", "optimizer", "schedule" (None without one), "epoch", "step", "history", "rng"}`,
#   where `"rng"` is `generator().bit_generator.state`, the complete state of tinytorch's random
#   generator (a dict of plain integers). It must be a snapshot: later training must not change
#   it. The model's `state_dict` already copies; copy the optimizer's (`copy.deepcopy`), in case
#   it hands out its live arrays.
# - `load_state_dict(state)`: the reverse. The model and optimizer load their parts *into* the
#   existing objects (the optimizer holds references to the model's parameter tensors); load
#   the schedule after the optimizer, because it writes `optimizer.lr`; restore counters and
#   history; and put the generator back with `generator().bit_generator.state = state["rng"]`.
# - `save_checkpoint(path)` / `load_checkpoint(path)`: `save_state` of `state_dict()`, and
#   `load_state_dict` of `load_state`.

# %% nbgrader={"grade": false, "grade_id": "trainer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _as_tensor(value: Any) -> Tensor:
    """A batch's inputs or targets as a Tensor (numpy arrays keep their dtype)."""
    return value if isinstance(value, Tensor) else Tensor(value)


class Trainer:
    """The training loop: steps, epochs, evaluation, and checkpoints that resume exactly."""

    def __init__(self, model: Any, optimizer: Any, loss_fn: Callable[[Tensor, Tensor], Tensor],
                 schedule: CosineWarmupSchedule | None = None, clip_norm: float | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.schedule = schedule
        self.clip_norm = clip_norm
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []

    def train_step(self, inputs: Any, targets: Any) -> float:
        """Forward, loss, zero_grad, backward, clip, optimizer step, schedule step; return the loss."""
        ### BEGIN SOLUTION
        inputs, targets = _as_tensor(inputs), _as_tensor(targets)
        loss = self.loss_fn(self.model(inputs), targets)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip_norm is not None:
            clip_grad_norm(self.model.parameters(), self.clip_norm)
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        return float(loss.item())
        ### END SOLUTION

    def train_epoch(self, batches: Iterable[tuple[Any, Any]]) -> float:
        """Training mode, one train_step per (inputs, targets) pair, epoch += 1; the mean step loss."""
        ### BEGIN SOLUTION
        self.model.train()
        losses = [self.train_step(inputs, targets) for inputs, targets in batches]
        if not losses:
            raise ValueError("train_epoch: the batches gave no (inputs, targets) pair to train on")
        self.epoch += 1
        return float(np.mean(losses))
        ### END SOLUTION

    def evaluate(self, batches: Iterable[tuple[Any, Any]]) -> dict[str, float]:
        """{"loss", "accuracy"} over all examples, in eval mode under no_grad; the mode is restored."""
        ### BEGIN SOLUTION
        was_training = self.model.training
        self.model.eval()
        total_loss, correct, count = 0.0, 0, 0
        try:
            with no_grad():
                for inputs, targets in batches:
                    inputs, targets = _as_tensor(inputs), _as_tensor(targets)
                    outputs = self.model(inputs)
                    n = targets.shape[0] if targets.ndim else 1
                    total_loss += float(self.loss_fn(outputs, targets).item()) * n
                    correct += round(accuracy(outputs, targets) * n)
                    count += n
        finally:
            self.model.train(was_training)
        if count == 0:
            raise ValueError("evaluate: the batches gave no examples to evaluate")
        return {"loss": total_loss / count, "accuracy": correct / count}
        ### END SOLUTION

    def fit(self, train_batches: Iterable[tuple[Any, Any]], epochs: int,
            val_batches: Iterable[tuple[Any, Any]] | None = None,
            on_epoch: Callable[[int, dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
        """Train `epochs` more epochs; one record per epoch, appended to history; return this call's records."""
        ### BEGIN SOLUTION
        records = []
        for _ in range(epochs):
            train_loss = self.train_epoch(train_batches)
            record = {"epoch": self.epoch, "step": self.step, "train_loss": train_loss,
                      "lr": float(self.optimizer.lr)}
            if val_batches is not None:
                metrics = self.evaluate(val_batches)
                record["val_loss"], record["val_accuracy"] = metrics["loss"], metrics["accuracy"]
            self.history.append(record)
            records.append(record)
            if on_epoch is not None:
                on_epoch(self.epoch, record)
        return records
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """A snapshot of model, optimizer, schedule, counters, history and the random generator."""
        ### BEGIN SOLUTION
        return {
            "model": self.model.state_dict(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "history": copy.deepcopy(self.history),
            "rng": generator().bit_generator.state,
        }
        ### END SOLUTION

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put everything state_dict() saved back into this trainer's objects and the generator."""
        ### BEGIN SOLUTION
        missing = [key for key in ("model", "optimizer", "epoch", "step", "rng") if key not in state]
        if missing:
            raise KeyError(f"Trainer.load_state_dict: the state has no {missing}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None:
            if state.get("schedule") is None:
                raise ValueError("Trainer.load_state_dict: this trainer has a schedule, the state has none")
            self.schedule.load_state_dict(state["schedule"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.history = copy.deepcopy(list(state.get("history", [])))
        generator().bit_generator.state = state["rng"]
        ### END SOLUTION

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write state_dict() to one .npz file with save_state; return the path."""
        ### BEGIN SOLUTION
        return save_state(path, self.state_dict())
        ### END SOLUTION

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore this trainer from a file written by save_checkpoint."""
        ### BEGIN SOLUTION
        self.load_state_dict(load_state(path))
        ### END SOLUTION


# %% [markdown]
# ## Try it: learn three clusters
#
# Three clouds of 2-D points, one per class; a small MLP with dropout, Adam with warm-up and
# cosine decay, clipping at norm 1. The loss should fall and the validation accuracy rise to
# nearly 100%.

# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.layers import Dropout, Linear, Sequential
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.optimizers import Adam
    from tinytorch.tensor import manual_seed

    def make_blobs(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Three Gaussian clouds of 2-D points around the corners of a triangle, labels 0, 1, 2."""
        rng = np.random.default_rng(seed)
        centers = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])
        points = np.concatenate([rng.normal(center, 0.6, size=(n_per_class, 2)) for center in centers])
        labels = np.repeat(np.arange(3), n_per_class)
        order = rng.permutation(len(labels))
        return points[order].astype(np.float32), labels[order]

    def batches_of(points: np.ndarray, labels: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(points[i:i + size], labels[i:i + size]) for i in range(0, len(labels), size)]

    def build(seed: int = 0) -> Trainer:
        manual_seed(seed)
        model = Sequential(Linear(2, 32), ReLU(), Dropout(0.2), Linear(32, 3))
        optimizer = Adam(model.parameters(), lr=0.01)
        schedule = CosineWarmupSchedule(optimizer, base_lr=0.01, warmup_steps=10, total_steps=200)
        return Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=1.0)

    train_batches = batches_of(*make_blobs(100, seed=1), size=30)
    val_batches = batches_of(*make_blobs(50, seed=2), size=50)
    trainer = build()
    print("before:", trainer.evaluate(val_batches))

    def report(epoch: int, r: dict) -> None:
        if epoch % 5 == 0:
            print(f"epoch {epoch:2d}  step {r['step']:3d}  lr {r['lr']:.5f}  train loss {r['train_loss']:.4f}  "
                  f"val loss {r['val_loss']:.4f}  val accuracy {r['val_accuracy']:.3f}")

    trainer.fit(train_batches, epochs=20, val_batches=val_batches, on_epoch=report)

# %% [markdown]
# ## Resuming exactly
#
# The test of a checkpoint: train 5 steps, save, train 5 more, call the result A. Then build a
# *fresh* trainer (new model, new Adam, new schedule), load the checkpoint, train the same 5
# steps: B. With dropout, Adam, a schedule and clipping all in play, A and B are equal to the
# last bit only if every piece of state came back. Then the same experiment once more, but
# after loading we disturb the random generator (as a trainer that forgot to save it would
# leave it): the dropout masks differ, and so does everything after.

# %%
if __name__ == "__main__":
    checkpoint = demo_dir / "blobs.npz"
    batch_stream = train_batches * 2

    def continue_training(t: Trainer) -> np.ndarray:
        for inputs, targets in batch_stream[5:10]:
            t.train_step(inputs, targets)
        return np.concatenate([p.data.ravel() for p in t.model.parameters()])

    first = build()
    for inputs, targets in batch_stream[:5]:
        first.train_step(inputs, targets)
    first.save_checkpoint(checkpoint)
    a = continue_training(first)

    resumed = build(seed=123)  # different starting weights: the checkpoint must overwrite them
    resumed.load_checkpoint(checkpoint)
    b = continue_training(resumed)
    print("resumed with everything:   identical =", np.array_equal(a, b))

    forgetful = build(seed=123)
    forgetful.load_checkpoint(checkpoint)
    manual_seed(2024)  # what a checkpoint without the generator's state amounts to
    c = continue_training(forgetful)
    print("resumed without the RNG:   identical =", np.array_equal(a, c),
          f"(largest difference {np.max(np.abs(a - c)):.2e})")

# %% [markdown]
# ## Systems insight: what a checkpoint weighs, and what evaluation saves
#
# **A checkpoint is about three models.** Adam keeps two numbers per parameter, the moments
# `m` and `v`, in the parameter's dtype. A checkpoint that can resume Adam therefore holds the
# parameters plus twice as much again: about 3x the size of the model alone (SGD with momentum:
# 2x; plain SGD: 1x). For the 1986 milestone's MLP, 784 -> 256 -> 10, that is 0.8 MB of
# weights and about 2.4 MB of checkpoint; for a 124M-parameter GPT-2 in float32, 0.5 GB of
# weights and 1.5 GB per checkpoint. Keeping the last five checkpoints of that run costs 7.5 GB
# of disk. (Once training is over, you ship only the model's `state_dict`: a third of the size.)
#
# **Evaluation under `no_grad()` keeps nothing alive.** With recording on, the output of a
# forward pass holds the graph, and the graph holds every intermediate activation that backward
# would need. The cell below measures the peak memory of one forward pass of a wide MLP while
# its output is alive, with and without `no_grad()`, with Python's `tracemalloc` (numpy reports
# its allocations to it).

# %%
if __name__ == "__main__":
    import tracemalloc

    manual_seed(0)
    mlp = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
    optimizer = Adam(mlp.parameters(), lr=1e-3)
    mlp_trainer = Trainer(mlp, optimizer, CrossEntropyLoss())
    digits = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    mlp_trainer.train_step(digits, np.zeros(64, dtype=np.int64))  # one step, so Adam has its moments
    model_bytes = sum(p.data.nbytes for p in mlp.parameters())
    path = mlp_trainer.save_checkpoint(demo_dir / "mlp.npz")
    print(f"parameters: {model_bytes / 1e6:.2f} MB, checkpoint with Adam: {path.stat().st_size / 1e6:.2f} MB "
          f"({path.stat().st_size / model_bytes:.2f}x)")

    batch = Tensor(np.random.default_rng(1).random((4096, 784), dtype=np.float32))
    for label, recording in (("with the graph", True), ("under no_grad()", False)):
        tracemalloc.start()
        if recording:
            out = mlp(batch)
        else:
            with no_grad():
                out = mlp(batch)
        alive = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del out
        print(f"forward pass of 4096 examples {label}: {alive / 1e6:6.1f} MB still allocated")

    import shutil

    shutil.rmtree(demo_dir)  # the demo checkpoints

# %% [markdown]
# ## Checkpoint
#
# `tito check 07` runs `tests/checkpoints/test_07_training.py`. It compares
# `CosineWarmupSchedule` with the closed form at chosen steps and with PyTorch's `LinearLR`
# followed by `CosineAnnealingLR` over a whole run, and checks the learning rate it writes into
# the optimizer and its state dict; compares `clip_grad_norm` with
# `torch.nn.utils.clip_grad_norm_` in float64 (the returned norm and the clipped gradients,
# several parameters, some without a gradient, a generator of parameters, and a case below the
# threshold that must stay untouched); checks `accuracy` on known logits; round-trips states
# through `save_state` / `load_state` (arrays, numpy numbers, tuples, integer keys), reads a
# file written by hand in the format tabled above, opens files with `allow_pickle=False`,
# expects a failed save to leave the previous file intact, and expects a truncated, corrupt or
# pickled file to raise a `ValueError` naming it; and checks the `Trainer`: one `train_step`
# equals the five lines written out by hand exactly (and, with clipping and a schedule, within
# float32 rounding), `fit` lowers the loss of a small classifier and keeps its counters and
# history, `evaluate` changes no parameter, records no graph, runs in evaluation mode and
# restores the mode the model was in, `state_dict()` is a snapshot that later training does not
# change, and a run resumed from `save_checkpoint` (dropout, Adam, a schedule and clipping
# included) continues bit for bit like the run that was never interrupted.
