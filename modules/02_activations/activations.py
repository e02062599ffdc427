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
# # Module 02: Activations
#
# A neural network is mostly matrix multiplications. Between them sit small elementwise
# functions, the *activations*, and without them all the depth of a network would be for
# nothing. In this module you build the six that the rest of the course uses:
#
# | class | formula | where we meet it again |
# | --- | --- | --- |
# | `ReLU()` | `max(x, 0)` | the MLP of 1986 and the CNN of 1998 |
# | `Sigmoid()` | `1 / (1 + exp(-x))` | binary classification (module 04's BCE), gates |
# | `Tanh()` | `(exp(x) - exp(-x)) / (exp(x) + exp(-x))` | zero-centred squashing, inside GELU |
# | `GELU()` | `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` | the MLP of every GPT block (module 13) |
# | `Softmax(dim, temperature)` | `exp(x_i) / sum_j exp(x_j)` | attention (12), sampling text (13) |
# | `LogSoftmax(dim, temperature)` | `x_i - log sum_j exp(x_j)` | cross-entropy (module 04) |
#
# The formulas are one line each. The lesson is in what they do at the edges: where they
# saturate, and where the obvious formula overflows to `inf` or `nan` while the right one
# stays exact. Names and behaviour follow PyTorch (`torch.nn.ReLU`, `torch.nn.Softmax(dim=)`,
# ...), and the checkpoint compares your values with PyTorch's in float64.
#
# **The shape of each class.** Every activation is a small object with a `forward(x)` method
# that takes a `Tensor` and returns a new `Tensor` of the same shape and dtype, and a
# `__call__` that simply calls `forward`, so you write `relu(x)` as in PyTorch. Keep all the
# work in `forward`: in module 05 autograd wraps each class's `forward` to record it in the
# computation graph. Inside `forward`, compute with numpy on `x.data` and wrap the result in
# a `Tensor`; float32 in gives float32 out, float64 in gives float64 out.

# %%
from __future__ import annotations

import math

import numpy as np

from tinytorch.tensor import Tensor

# %% [markdown]
# ## 1. Why a network needs non-linearities
#
# A linear layer computes `x @ W + b`. Stack two of them:
#
# `(x @ W1 + b1) @ W2 + b2  =  x @ (W1 @ W2) + (b1 @ W2 + b2)`
#
# which is *one* linear layer with weight `W1 @ W2` and bias `b1 @ W2 + b2`. A hundred linear
# layers are still one: depth buys nothing, and a linear model cannot even compute XOR (the
# 1969 milestone is exactly this failure). Put a non-linear function between the layers and
# the collapse stops: `relu(x @ W1 + b1) @ W2 + b2` bends space, and with enough hidden
# units such networks can approximate any continuous function. The "Try it" cell at the end
# checks the collapse with real matrices.
#
# What we ask of an activation is therefore modest: non-linear, cheap, and with a useful
# slope (its derivative is what carries the learning signal back through the network in
# module 05). Where the slope is zero or nearly zero, a function **saturates**, and the
# neurons living there stop learning. Keep an eye on where each function below saturates.

# %% [markdown]
# ## 2. ReLU: the default
#
# `relu(x) = max(x, 0)`. Positive inputs pass unchanged (slope 1, no saturation at all on that
# side), negative inputs become 0 (slope 0: a neuron that only ever sees negative inputs is
# "dead" and never recovers). It costs one comparison per element, and its non-saturating
# positive side is why deep networks became trainable around 2010.
#
# Numerically there is nothing to fear: no exponentials, no overflow. One detail: keep the
# dtype. `np.maximum(x.data, 0)` compares with a Python number, which adopts the array's
# dtype, so float32 stays float32.

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "schema_version": 3, "solution": true, "task": false}
class ReLU:
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """x where x > 0, else 0; same shape and dtype as x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)


# %% [markdown]
# ## 3. Sigmoid, and your first overflow trap
#
# `sigmoid(x) = 1 / (1 + exp(-x))` squashes any number into `(0, 1)`: a probability. It is
# 0.5 at 0, symmetric (`sigmoid(-x) = 1 - sigmoid(x)`), and **saturates on both sides**: for
# `|x|` beyond about 5 its slope is almost 0 (its largest slope, at 0, is only 0.25), which is
# why deep stacks of sigmoids learn slowly.
#
# Now the trap. For `x = -1000` the formula computes `exp(1000)`. The largest float64 is about
# `1.8e308 = exp(709.78)`, so `exp(1000)` is `inf`; numpy warns "overflow encountered in exp"
# and `1 / (1 + inf)` happens to give the right answer, 0. In float32 the limit is
# `exp(88.72)`, so an input of -89 is already enough. Warnings in a training log are how real
# bugs hide, and the same overflow in softmax (below) gives `nan`, not a lucky 0.
#
# The fix: never call `exp` on a large positive number. For `x >= 0` the formula is fine,
# since `exp(-x) <= 1`. For `x < 0`, multiply top and bottom by `exp(x)`:
#
# `1 / (1 + exp(-x)) = exp(x) / (exp(x) + 1)`
#
# and now `exp(x) <= 1`. Both branches only ever need `e = exp(-|x|)`, which lies in `(0, 1]`:
#
# `sigmoid(x) = 1 / (1 + e)` if `x >= 0`, else `e / (1 + e)`.
#
# Compute `e` once for the whole array, then choose per element with `np.where`. (Computing
# `exp(-x)` and `exp(x)` for *every* element and letting `np.where` pick would still overflow
# on the branch it throws away: `np.where` evaluates both of its arguments.)

# %% nbgrader={"grade": false, "grade_id": "sigmoid", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Sigmoid:
    """1 / (1 + exp(-x)), elementwise, without overflow for any x."""

    def forward(self, x: Tensor) -> Tensor:
        """Values in [0, 1]; no overflow warning even for x = +-1000 in float32."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)


# %% [markdown]
# ## 4. Tanh: a zero-centred sigmoid
#
# `tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x))` maps to `(-1, 1)`, is 0 at 0 and odd
# (`tanh(-x) = -tanh(x)`). It is a sigmoid in disguise, `tanh(x) = 2 sigmoid(2x) - 1`, so it
# saturates the same way, but its outputs are centred on zero, which makes the next layer's
# job easier; RNNs and LSTMs use it inside their gates.
#
# Written out as above it would overflow exactly like sigmoid (and give `inf / inf = nan` for
# large `x`). `np.tanh` is implemented carefully and saturates cleanly to exactly +-1, so use
# it: knowing when a library function is already stable is part of the skill.

# %% nbgrader={"grade": false, "grade_id": "tanh", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Tanh:
    """The hyperbolic tangent, elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """Values in [-1, 1]; same shape and dtype as x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)


# %% [markdown]
# ## 5. GELU: the activation of GPT
#
# ReLU gates its input with a hard step: keep `x` if `x > 0`. GELU (Gaussian Error Linear
# Unit) gates it softly, by the probability that a standard normal variable is below `x`:
# `gelu(x) = x * Phi(x)`, with `Phi` the normal CDF, `Phi(x) = 0.5 (1 + erf(x / sqrt(2)))`.
# It looks like a ReLU with the corner rounded off: about `x` for large `x`, about 0 for very
# negative `x` (it saturates there like ReLU), and slightly *negative* around `x = -0.75`.
# BERT, GPT-2 and most transformers since use it.
#
# numpy has no `erf`, and neither did GPT-2's original code: it used the **tanh
# approximation**
#
# `gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`
#
# which is within 5e-4 of the exact form everywhere. This is the GELU we build, because
# module 13 loads GPT-2-style weights and must compute exactly what they were trained with.
# In PyTorch it is `torch.nn.GELU(approximate="tanh")`; plain `torch.nn.GELU()` is the erf
# form, and the checkpoint will notice the difference (at `x = 1` they differ in the fourth
# decimal: 0.84119 vs 0.84134).
#
# A dtype trap: `np.sqrt(2 / np.pi)` is a numpy float64 *scalar*, and numpy 2 lets a numpy
# float64 scalar promote a float32 array to float64. A Python float (`math.sqrt(2 / math.pi)`)
# adopts the array's dtype instead.

# %% nbgrader={"grade": false, "grade_id": "gelu", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GELU:
    """The Gaussian Error Linear Unit, tanh approximation (GPT-2's, torch's approximate="tanh")."""

    def forward(self, x: Tensor) -> Tensor:
        """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); same shape and dtype as x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)


# %% [markdown]
# ## 6. Softmax: from scores to probabilities, without overflow
#
# A classifier's last layer produces one score per class, the **logits**: any real numbers.
# Softmax turns them into a probability distribution, positive and summing to 1, while
# keeping their order:
#
# `softmax(x)_i = exp(x_i) / sum_j exp(x_j)`
#
# For a batch of shape `(N, C)` the sum runs over the classes, `dim=-1`; in attention (module
# 12) it runs over the keys of a `(batch, heads, queries, keys)` tensor. So softmax takes a
# `dim` argument, as in PyTorch: the axis along which the outputs sum to 1. Every other axis is
# just a batch of independent softmaxes (`keepdims=True` in the reductions makes the
# broadcasting work out).
#
# **The overflow trap.** Logits are not small. Try `softmax([1000, 1001, 1002])` with the
# formula: `exp(1000)` is `inf` in float64, so the result is `inf / inf = nan`, and one `nan`
# spreads through a whole training run. In float32 logits of 89 are enough.
#
# **The fix** is one line of algebra. For any constant `c`,
#
# `exp(x_i - c) / sum_j exp(x_j - c) = exp(-c) exp(x_i) / (exp(-c) sum_j exp(x_j)) = softmax(x)_i`
#
# so softmax does not change when you shift all the logits by the same amount:
# `softmax(x + 1000) == softmax(x)`. Choose `c = max(x)` along `dim`. Then every exponent is
# `<= 0`, so every `exp` is in `(0, 1]` and cannot overflow, and the largest term is exactly
# `exp(0) = 1`, so the denominator is at least 1 and cannot underflow to 0 either. The
# subtraction is exact for the largest logit, where precision matters most. The same code
# handles a logit of `-inf`, which attention (module 12) uses to mask a position out:
# `exp(-inf - m) = 0`, so that position gets probability exactly 0.
#
# **Temperature.** Both softmax classes take a `temperature` `T` and divide the logits by it
# *first*: `softmax(x / T)`. `T = 1` changes nothing. A low temperature stretches the
# differences between logits, and as `T -> 0` the distribution approaches one-hot on the
# largest logit (argmax, "greedy"). A high temperature shrinks them, and as `T -> infinity`
# the distribution approaches uniform. When module 13 samples text from a GPT, temperature
# is the knob between "safe and repetitive" and "creative and incoherent". Note that
# `x / 0.001` multiplies logits by a thousand: without the max subtraction, low temperature
# would overflow immediately.

# %% nbgrader={"grade": false, "grade_id": "softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Softmax:
    """exp(x / T) normalised to sum to 1 along `dim`, computed without overflow."""

    def __init__(self, dim: int = -1, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.dim = dim
        # a Python float divides a float32 array without turning it into float64
        self.temperature = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        """Probabilities: non-negative, summing to 1 along `dim`; same shape and dtype as x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"Softmax(dim={self.dim}, temperature={self.temperature})"


# %% [markdown]
# ## 7. LogSoftmax: the log-sum-exp trick
#
# Cross-entropy (module 04) needs the *log* of the probabilities. The obvious
# `log(softmax(x))` throws precision away: a probability like `exp(-800)` underflows to 0 in
# float64 (and `exp(-104)` in float32), and `log(0) = -inf`, although the true log-probability,
# -800, is a perfectly ordinary number. A model that is confidently wrong then gets an infinite
# loss and `nan` gradients.
#
# Take the log of the stable softmax by hand instead. With `m = max(x)` along `dim`:
#
# `log softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m))`
#
# The sum is at least 1 (its largest term is `exp(0)`), so the `log` is finite and small, and
# `x_i - m` is exact. Nothing is ever exponentiated and then logged back. The quantity
# `m + log(sum_j exp(x_j - m))` is the **log-sum-exp** of `x`, a smooth maximum; you will use
# it again in module 04. Temperature works as in `Softmax`: divide the logits first.

# %% nbgrader={"grade": false, "grade_id": "log-softmax", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LogSoftmax:
    """log(softmax(x / T)) along `dim`, computed by the log-sum-exp trick."""

    def __init__(self, dim: int = -1, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.dim = dim
        self.temperature = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities (all <= 0, finite for finite x); same shape and dtype as x."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"LogSoftmax(dim={self.dim}, temperature={self.temperature})"


# %% [markdown]
# ## Try it
#
# Run this file (`python modules/02_activations/activations.py`) or these cells in the
# notebook. The examples only run when the file is executed, not when it is imported.

# %%
if __name__ == "__main__":
    x = Tensor([-3.0, -1.0, 0.0, 1.0, 3.0])
    for activation in (ReLU(), Sigmoid(), Tanh(), GELU()):
        print(f"{type(activation).__name__:>8}:", np.round(activation(x).data, 4))

    # Two linear layers collapse into one; a ReLU in between prevents it.
    rng = np.random.default_rng(0)
    inputs = Tensor(rng.standard_normal((4, 3)))
    w1, b1 = Tensor(rng.standard_normal((3, 5))), Tensor(rng.standard_normal(5))
    w2, b2 = Tensor(rng.standard_normal((5, 2))), Tensor(rng.standard_normal(2))
    two_layers = (inputs @ w1 + b1) @ w2 + b2
    one_layer = inputs @ (w1 @ w2) + (b1 @ w2 + b2)
    print("two linear layers == one linear layer:", np.allclose(two_layers.data, one_layer.data))
    with_relu = ReLU()(inputs @ w1 + b1) @ w2 + b2
    print("...and with a ReLU in between:        ", np.allclose(with_relu.data, one_layer.data))

    # The overflow trap, and the fix.
    logits = Tensor(np.array([1000.0, 1001.0, 1002.0]))
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(logits.data) / np.exp(logits.data).sum()
    print("naive softmax([1000, 1001, 1002]) =", naive)
    print("stable softmax                   =", Softmax()(logits).data)
    print("log_softmax([1e4, 0, -1e4])      =", LogSoftmax()(Tensor(np.array([1e4, 0.0, -1e4]))).data)

    # Temperature: from argmax to uniform.
    scores = Tensor(np.array([2.0, 1.0, 0.5, 0.0]))
    for temperature in (0.01, 0.5, 1.0, 2.0, 100.0):
        probabilities = Softmax(temperature=temperature)(scores).data
        print(f"T = {temperature:>6}: {np.round(probabilities, 3)}")

# %% [markdown]
# ## Systems insight: where exp overflows, and what the fix costs
#
# `exp` overflows when its result passes the largest representable number: at
# `log(finfo.max)`, about **88.72 in float32** and **709.78 in float64**. Neural networks run
# in float32 (and lower: float16 overflows at `exp(11.09)`), so logits of a hundred, which a
# confident classifier or a low sampling temperature easily produces, break the naive
# softmax. The cell below finds the smallest logit at which the naive formula returns `nan`,
# and shows that the stable one never does.
#
# The fix is not free, and it is worth measuring what it costs. The stable softmax makes
# extra passes over the logits (a `max`, then a subtraction that writes a whole new array)
# before the `exp`, the sum and the division the naive one does anyway. A `max` is cheap next
# to an `exp`, but every pass reads and writes a large array, and on a CPU moving memory is
# often what limits these elementwise operations: expect the stable version to take roughly
# one and a half to two times as long as the naive one (the cell prints the ratio on your
# machine). Every framework pays this to never see a `nan`; fused kernels (module 18) fold the
# passes into one so that the data is read from memory only once.

# %%
if __name__ == "__main__":
    import timeit

    for dtype in (np.float16, np.float32, np.float64):
        print(f"{np.dtype(dtype).name}: exp overflows above {np.log(np.finfo(dtype).max):.2f}")

    for dtype in (np.float32, np.float64):
        top = 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            while True:
                row = np.array([top, 0.0], dtype=dtype)
                if np.isnan((np.exp(row) / np.exp(row).sum())).any():
                    break
                top += 1.0
        stable = Softmax()(Tensor(np.array([top, 0.0], dtype=dtype))).data
        print(f"{np.dtype(dtype).name}: naive softmax([{top:.0f}, 0]) is nan; stable gives {stable}")

    batch = np.random.default_rng(0).standard_normal((1024, 4096)).astype(np.float32)

    def naive_softmax() -> np.ndarray:
        e = np.exp(batch)
        return e / e.sum(axis=-1, keepdims=True)

    def stable_softmax() -> Tensor:
        return Softmax()(Tensor(batch))

    seconds = {name: min(timeit.repeat(run, number=5, repeat=3)) / 5
               for name, run in (("exp alone", lambda: np.exp(batch)),
                                 ("max alone", lambda: batch.max(axis=-1, keepdims=True)),
                                 ("naive softmax", naive_softmax),
                                 ("stable softmax", stable_softmax))}
    for name, value in seconds.items():
        print(f"{name:>15} of a 1024 x 4096 float32 batch: {value * 1e3:6.2f} ms")
    print(f"the stable softmax costs {seconds['stable softmax'] / seconds['naive softmax']:.2f}x the naive one")

# %% [markdown]
# ## Checkpoint
#
# `tito check 02` runs `tests/checkpoints/test_02_activations.py`. It compares every class
# with PyTorch in float64 on arrays drawn by Hypothesis, including extreme values like +-1000
# and tiny ones like 1e-8: ReLU, Sigmoid (no overflow warnings, `sigmoid(0) = 0.5`, symmetry),
# Tanh, GELU (the tanh approximation), Softmax and LogSoftmax over `dim=0`, `1` and `-1` of 3-D
# inputs (sums to 1, `softmax(x + 1000) == softmax(x)`, finite log-probabilities for logits of
# 1e4), temperature against `softmax(x / T)` including the argmax and uniform limits, and that
# every class returns a new `Tensor` of the input's shape and dtype through `forward`, leaving
# the input's numbers unchanged.
