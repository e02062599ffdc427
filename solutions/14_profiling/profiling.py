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
# # Module 14: Profiling
#
# Your GPT of module 13 trains. Is it slow because of the attention, the MLP, or the output
# head? Would a wider model or a longer context cost more? Where does the memory go? Guessing
# is how days get wasted: the part of a program you *think* is expensive rarely is. This
# module builds the instruments that answer with numbers, the same three that every
# performance question in deep learning comes down to:
#
# - **how much there is**: parameters, and the bytes they take;
# - **how much work**: floating-point operations (FLOPs), derived on paper *and* counted while
#   the model runs, so each check keeps the other honest;
# - **how long it takes**: a timer that survives the noise of a real machine.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `count_parameters(model, trainable_only=False)` | the numbers a model holds, a shared tensor counted once |
# | `linear_flops`, `conv2d_flops`, `attention_flops`, `layernorm_flops` | the FLOPs of one layer, in closed form |
# | `conv2d_output_size(height, width, kernel_size, stride, padding)` | the output size of a sliding window |
# | `gpt_forward_flops(config, seq_len, batch=1)` | the matmul FLOPs of a whole GPT forward pass |
# | `matmul_flops`, `conv2d_output_flops` | the FLOPs of one product or convolution, from shapes |
# | `FlopCounter` | `with FlopCounter() as counter: model(x)` counts every matmul and convolution that runs |
# | `Timer(warmup, repeats, clock)`, `Timing` | warm-up, repeats, the median and the interquartile range |
# | `profile(model, x)`, `profile_table(rows)` | one row per layer: parameters, FLOPs, output shape, activation bytes, time |
# | `activation_memory(model, x)` | the bytes of every layer's output, the memory training keeps for backward |
#
# The checkpoint compares your parameter counts with PyTorch's on models built from
# `torch.nn`, your FLOP counts (closed forms and `FlopCounter`) with
# `torch.utils.flop_counter.FlopCounterMode` running the same architectures, and your timer
# with a fake clock whose every tick it knows.

# %%
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import tinytorch.spatial as spatial
from tinytorch.layers import Module
from tinytorch.tensor import Tensor


def _shape(x: Any) -> tuple[int, ...]:
    """The shape of a Tensor, a numpy array or anything numpy can read."""
    return tuple(x.shape) if isinstance(x, Tensor) else np.shape(x)


def _numel(shape: tuple[int, ...]) -> int:
    """The number of elements of an array of this shape, as a Python int (no int32 overflow)."""
    return int(np.prod(shape, dtype=np.int64))


# %% [markdown]
# ## 1. Parameters: what a model holds
#
# A model's size is the number of values it learns. Module 03's `Module.parameters()` already
# lists them; counting is a sum of `numel()`. Two traps make it more than a one-liner.
#
# **Shared tensors count once.** Module 13's GPT ties its output head to its token embedding:
# `lm_head.weight` *is* `wte.weight`, one Tensor used twice. Its numbers exist once in memory
# and get one update per step, so they count once, exactly as PyTorch's `parameters()`
# reports them. Count distinct tensors, by identity (`id(tensor)`), never by walking layers and
# adding each layer's weights.
#
# **Frozen tensors are still there.** Fine-tuning often freezes part of a model:
# `tensor.requires_grad = False`, and the optimizer leaves it alone. It still takes memory and
# still computes, so `count_parameters(model)` counts *every* Tensor the model's modules hold
# (as an attribute, or inside a list or tuple attribute), and
# `count_parameters(model, trainable_only=True)` only those with `requires_grad`. Since
# module 03's `parameters()` lists trainable tensors only, walk the modules yourself:
# `model.modules()` gives every module once, `vars(module)` its attributes. The helper
# `held_tensors(module)` below does the walk for one module.
#
# Bytes follow from counts and the dtype: float32 is 4 bytes a number, so GPT-2 small's 124M
# parameters take 498 MB, and training with Adam keeps two more numbers per parameter (its
# moments) plus a gradient: 16 bytes per parameter, 2 GB, before a single activation.

# %%
def held_tensors(module: Module) -> list[Tensor]:
    """The Tensors `module` itself holds as attributes (lists and tuples opened), not its children's."""
    found = []
    for value in vars(module).values():
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(item, Tensor):
                found.append(item)
    return found


# %% nbgrader={"grade": false, "grade_id": "count-parameters", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_parameters(model: Module, trainable_only: bool = False) -> int:
    """The number of values in every distinct Tensor the model's modules hold (trainable only if asked)."""
    ### BEGIN SOLUTION
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        for tensor in held_tensors(module):
            if id(tensor) in seen or (trainable_only and not tensor.requires_grad):
                continue
            seen.add(id(tensor))
            total += tensor.numel()
    return total
    ### END SOLUTION


# %% [markdown]
# ## 2. FLOPs on paper
#
# A **FLOP** is one floating-point operation: an add, or a multiply. Almost all the work of a
# neural network is matrix multiplication, and there everything comes in pairs: `C[i, j] =
# sum_k A[i, k] * B[k, j]` is `K` multiplies and `K` adds (strictly `K - 1` adds, but the
# hardware does a *fused multiply-add*, and the `+ 0` of the first one is the convention).
# So **one multiply-add (a MAC) is 2 FLOPs**, and
#
# `(M, K) @ (K, N)` costs `2 * M * K * N` FLOPs.
#
# That is PyTorch's convention (`FlopCounterMode`), and the scaling-law papers' one. Batch
# axes multiply: `(B, M, K) @ (B, K, N)` is `B` such products. Now each layer:
#
# - **Linear(in, out)** on `tokens` input vectors (`tokens` is the product of all the leading
#   axes: batch times sequence length): `x @ W.T` is `2 * tokens * in * out`, and the bias
#   adds one more FLOP per output value, `tokens * out`.
# - **Conv2d**: every output value `(n, c_out, i, j)` is one dot product of a `C_in * kH * kW`
#   window with a kernel, so `2 * N * C_out * H_out * W_out * C_in * kH * kW`, plus one add
#   per output value for the bias. The output size is module 09's
#   `H_out = (H + 2 * padding - kH) // stride + 1` (and the same for the width).
# - **Attention** over `T` queries and `S` keys, width `d` split into heads: the scores
#   `q @ k^T` are `2 * T * S * d` summed over the heads (each head does `2 * T * S * d/H`:
#   the number of heads does not change the cost), and the weighted sum `weights @ v` is
#   another `2 * T * S * d`. With `projections=True` add the four `Linear(d, d)` projections
#   of q, k, v and the output, for the `T` new tokens: `4 * 2 * T * d * d` (their bias adds
#   are not counted: see below). A causal mask does not halve the work: our attention
#   computes the whole `T x S` score matrix and then hides half of it.
# - **LayerNorm** over `features` values per token, in the convention we fix here: 5 FLOPs
#   per value to normalise (the sum for the mean, subtracting the mean, squaring, the sum for
#   the variance, scaling by `1 / std`), 1 for the weight and 1 more for the bias if there is
#   one. The few operations per token (dividing the sums by `features`, `+ eps`, the square
#   root) are not counted. No matmul anywhere: a norm's work grows like `T * d`.
#
# **What a model's FLOPs count.** Everything of order `T * d^2` and `T^2 * d` is a matrix
# multiply; everything elementwise (bias adds, norms, GELU, softmax, residual adds) is of order
# `T * d`, a factor `d` smaller (section 7 measures how small). So the FLOPs of a *model* mean
# its matrix multiplies: `attention_flops` and `gpt_forward_flops` count matmuls only, and so do
# your `FlopCounter` and PyTorch's `FlopCounterMode`. The per-layer `linear_flops` and
# `conv2d_flops` count the bias adds when `bias=True`, so that you can see them.
#
# **A whole GPT** (module 13) on `batch` sequences of `seq_len` tokens, `d = n_embd`,
# `tokens = batch * seq_len`: each block is an attention (with its projections) plus an MLP
# whose hidden size is `4 * d`: two `Linear`s for GELU (`fc`, `proj`), three for SwiGLU
# (`gate`, `up`, `proj`); then the head, `Linear(d, vocab_size)` on every position. The
# embedding lookups are free (no arithmetic, just indexing), and so is RoPE (elementwise).
# Check it against the famous rule: a weight matrix does one multiply-add per token, so a
# forward pass is about `2 * (matrix parameters)` FLOPs per token, plus the attention's
# `4 * n_layer * seq_len * d`.
#
# Every function returns a Python `int`, exact however large (do the arithmetic with Python
# ints, not numpy's fixed-width ones). Bad sizes (`stride < 1`, a kernel larger than the padded
# input, `seq_len` longer than `block_size`) are a `ValueError`, as they are in the layers.

# %% nbgrader={"grade": false, "grade_id": "closed-forms", "locked": false, "schema_version": 3, "solution": true, "task": false}
def linear_flops(in_features: int, out_features: int, tokens: int = 1, bias: bool = True) -> int:
    """FLOPs of Linear(in_features, out_features) on `tokens` vectors: 2*tokens*in*out, + tokens*out with a bias."""
    ### BEGIN SOLUTION
    flops = 2 * tokens * in_features * out_features
    if bias:
        flops += tokens * out_features
    return int(flops)
    ### END SOLUTION


def conv2d_output_size(height: int, width: int, kernel_size: int | tuple[int, int],
                       stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0) -> tuple[int, int]:
    """(H_out, W_out) of a convolution (or pooling) window sliding over an H x W input."""
    ### BEGIN SOLUTION
    (kh, kw), (sh, sw), (ph, pw) = (_pair(v) for v in (kernel_size, stride, padding))
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}")
    if height + 2 * ph < kh or width + 2 * pw < kw:
        raise ValueError(f"the {kh}x{kw} kernel is larger than the padded {height + 2 * ph}x{width + 2 * pw} input")
    return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    ### END SOLUTION


def conv2d_flops(in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], height: int,
                 width: int, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 batch: int = 1, bias: bool = True) -> int:
    """FLOPs of Conv2d on a (batch, in_channels, height, width) input: 2*C_in*kH*kW per output value, + 1 with a bias."""
    ### BEGIN SOLUTION
    kh, kw = _pair(kernel_size)
    h_out, w_out = conv2d_output_size(height, width, kernel_size, stride, padding)
    outputs = batch * out_channels * h_out * w_out
    flops = 2 * outputs * in_channels * kh * kw
    if bias:
        flops += outputs
    return int(flops)
    ### END SOLUTION


def attention_flops(seq_len: int, d_model: int, batch: int = 1, kv_len: int | None = None,
                    projections: bool = True) -> int:
    """Matmul FLOPs of attention: seq_len queries over kv_len keys (default seq_len), + the 4 projections."""
    ### BEGIN SOLUTION
    keys = seq_len if kv_len is None else kv_len
    flops = 2 * (2 * batch * seq_len * keys * d_model)  # scores q @ k^T, then weights @ v
    if projections:
        flops += 4 * linear_flops(d_model, d_model, batch * seq_len, bias=False)
    return int(flops)
    ### END SOLUTION


def layernorm_flops(features: int, tokens: int = 1, bias: bool = True) -> int:
    """FLOPs of LayerNorm(features) on `tokens` vectors: 5 per value to normalise, + 1 weight, + 1 bias."""
    ### BEGIN SOLUTION
    per_value = 5 + 1 + (1 if bias else 0)
    return int(tokens * features * per_value)
    ### END SOLUTION


def gpt_forward_flops(config: Any, seq_len: int, batch: int = 1) -> int:
    """Matmul FLOPs of module 13's GPT(config) forward on `batch` sequences of `seq_len` tokens."""
    ### BEGIN SOLUTION
    if seq_len > config.block_size:
        raise ValueError(f"seq_len={seq_len} is longer than block_size={config.block_size}")
    d, tokens = config.n_embd, batch * seq_len
    mlp_matrices = 3 if config.mlp == "swiglu" else 2
    block = attention_flops(seq_len, d, batch) + mlp_matrices * linear_flops(d, 4 * d, tokens, bias=False)
    head = linear_flops(d, config.vocab_size, tokens, bias=False)
    return int(config.n_layer * block + head)
    ### END SOLUTION


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """3 -> (3, 3); (2, 3) stays."""
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


# %% [markdown]
# ## Try it: GPT-2 small on paper
#
# The closed forms answer questions before any code runs. GPT-2 small, one 1024-token
# sequence: how do the parts compare, and how much does the context length matter?

# %%
if __name__ == "__main__":
    from tinytorch.transformers import GPTConfig

    gpt2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    d, T = gpt2.n_embd, 1024
    parts = {
        "attention projections": gpt2.n_layer * 4 * linear_flops(d, d, T, bias=False),
        "attention scores + sum": gpt2.n_layer * attention_flops(T, d, projections=False),
        "MLPs": gpt2.n_layer * 2 * linear_flops(d, 4 * d, T, bias=False),
        "lm_head": linear_flops(d, gpt2.vocab_size, T, bias=False),
    }
    total = gpt_forward_flops(gpt2, T)
    for name, flops in parts.items():
        print(f"{name:24s} {flops / 1e9:8.1f} GFLOPs  {100 * flops / total:5.1f}%")
    print(f"{'total':24s} {total / 1e9:8.1f} GFLOPs = {total / T / 1e6:.0f} MFLOPs per token")
    print("LayerNorms, all 25 of them:", f"{25 * layernorm_flops(d, T) / 1e9:.3f} GFLOPs")

# %% [markdown]
# ## 3. FLOPs counted while the model runs
#
# A closed form is only as good as your reading of the code. A model with a bug (a head
# applied twice, a projection of the wrong size) has different FLOPs than the paper says, and
# a new architecture has no paper yet. So we also *count*: run the model and add up the work
# of every matrix multiply as it happens. That is what PyTorch's `FlopCounterMode` does, and
# we do it the Python way: **wrap the operations temporarily**.
#
# Every matmul of tinytorch goes through `Tensor.__matmul__` (`a @ b`) or `Tensor.__rmatmul__`
# (`array @ tensor`), and every convolution through module 09's `conv2d`, which `Conv2d.forward`
# looks up in the module `tinytorch.spatial` each time it runs. Replace those three
# attributes with wrappers that call the original and then add its FLOPs, and every model
# built on them is counted without changing a line of it:
#
# ```python
# with FlopCounter() as counter:
#     model(x)
# counter.flops, counter.macs
# ```
#
# - **The FLOPs of one product** from shapes alone: the result has `out.size` values, each
#   a dot product of length `K`, the last axis of the left operand, so
#   `matmul_flops(left_shape, out_shape) = 2 * out.size * K`. That covers every case of
#   `@`: batch axes, broadcasting, and 1-D operands (`(K,) @ (K, N)` gives `(N,)`).
#   For `__rmatmul__(self, other)` the left operand is `other`. For a convolution, every
#   output value is a dot product of length `C_in * kH * kW`:
#   `conv2d_output_flops(weight_shape, out_shape) = 2 * out.size * C_in * kH * kW`
#   (the bias adds are not counted, as in PyTorch).
# - **Count each operation once.** `__rmatmul__` is written as `lift(other) @ self`: it calls
#   `__matmul__`, so a naive counter adds that product twice. A student's `conv2d` may use
#   `@` inside too. Keep a depth: add FLOPs only for a call that is not running inside
#   another counted call of the same counter (`_depth == 0` once it returns).
# - **Always restore.** `__enter__` saves the original of each attribute and installs the
#   wrapper; `__exit__` puts every original back, also when the model raised an exception
#   (`__exit__` runs then too; return `False` so that the exception still propagates).
#   Counters may nest: an inner counter wraps the outer one's wrappers, and both count.
#   Saving with `getattr` and restoring with `setattr` restores exactly what was there.
#
# Wrapping methods of a class at run time is called *monkey-patching*. It is how profilers,
# mocks and module 05's autograd work, and why they always restore in a `finally` or an
# `__exit__`: a leftover wrapper silently changes every later program in the process.

# %% nbgrader={"grade": false, "grade_id": "flop-counter", "locked": false, "schema_version": 3, "solution": true, "task": false}
def matmul_flops(left_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """FLOPs of one matrix multiply from the left operand's shape and the result's: 2 * out.size * K."""
    ### BEGIN SOLUTION
    return 2 * _numel(out_shape) * int(left_shape[-1])
    ### END SOLUTION


def conv2d_output_flops(weight_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """FLOPs of one convolution from its weight (C_out, C_in, kH, kW) and its output: 2 * out.size * C_in*kH*kW."""
    ### BEGIN SOLUTION
    return 2 * _numel(out_shape) * _numel(weight_shape[1:])
    ### END SOLUTION


class FlopCounter:
    """`with FlopCounter() as counter: model(x)` counts the FLOPs of every Tensor matmul and conv2d inside."""

    def __init__(self) -> None:
        self.flops = 0
        self._depth = 0
        self._saved: list[tuple[Any, str, Any]] = []

    @property
    def macs(self) -> int:
        """Multiply-accumulates: one MAC is two FLOPs (a multiply and an add)."""
        return self.flops // 2

    def _counting(self, original: Callable, flops_of: Callable) -> Callable:
        """`original`, wrapped to add flops_of(out, *args) unless it runs inside another counted call."""
        ### BEGIN SOLUTION
        def counted(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            try:
                out = original(*args, **kwargs)
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.flops += flops_of(out, *args, **kwargs)
            return out

        return counted
        ### END SOLUTION

    def __enter__(self) -> FlopCounter:
        """Install the counting wrappers of Tensor.__matmul__, Tensor.__rmatmul__ and spatial.conv2d."""

        def matmul(out: Tensor, left: Any, right: Any) -> int:
            return matmul_flops(_shape(left), _shape(out))

        def rmatmul(out: Tensor, right: Any, left: Any) -> int:
            return matmul_flops(_shape(left), _shape(out))

        def conv(out: Tensor, x: Any, weight: Any, *args: Any, **kwargs: Any) -> int:
            return conv2d_output_flops(_shape(weight), _shape(out))

        ### BEGIN SOLUTION
        for owner, name, flops_of in ((Tensor, "__matmul__", matmul), (Tensor, "__rmatmul__", rmatmul),
                                      (spatial, "conv2d", conv)):
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._counting(original, flops_of))
        return self
        ### END SOLUTION

    def __exit__(self, *exc_info: Any) -> bool:
        """Put every original back (also after an exception, which then propagates)."""
        ### BEGIN SOLUTION
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)
        return False
        ### END SOLUTION


# %% [markdown]
# ## Try it: paper against measurement
#
# A small GPT, counted while it runs, against `gpt_forward_flops`. They must agree to the
# FLOP; if you change the model (say, apply the head twice), only the counter notices.

# %%
if __name__ == "__main__":
    from tinytorch.transformers import GPT, GPTConfig

    config = GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config).eval()
    idx = np.random.default_rng(0).integers(0, config.vocab_size, (4, 32))
    with FlopCounter() as counter:
        model(idx)
    print(f"counted {counter.flops:,d} FLOPs, on paper {gpt_forward_flops(config, 32, batch=4):,d}")

# %% [markdown]
# ## 4. Timing: warm-up, repeats, median and spread
#
# `start = time.perf_counter(); f(); print(time.perf_counter() - start)` measures one call,
# once, and that number is noise with a value attached:
#
# - **The first calls are slow.** Caches are cold, memory gets allocated for the first time,
#   numpy and BLAS pick their code paths, a JIT (in PyTorch, JAX) compiles. Run the function a
#   few times untimed first: the **warm-up**.
# - **Every call differs.** Other processes, the operating system, CPU frequency changes and
#   garbage collection interrupt at random. Time many **repeats** and summarise them.
# - **Summarise robustly.** The interruptions only ever add time, so the distribution has a
#   long right tail, and one 50 ms hiccup among ten 1 ms runs moves the mean to 6 ms. The
#   **median** ignores it. For the spread, the **interquartile range** (IQR), the 75th
#   percentile minus the 25th, does the same for the standard deviation: it tells how much
#   the typical run varies and ignores the tail. Compare two versions by their medians, and
#   believe the difference only when it is large against the IQRs.
#
# `Timer(warmup=3, repeats=10, clock=time.perf_counter)`: `measure(fn, *args, **kwargs)` calls
# `fn` `warmup` times untimed, then `repeats` times, each one timed by reading `clock()` just
# before and just after the call, and returns a `Timing(times, median, iqr)` in seconds, with
# `times` in the order they ran. `Timing.from_times(times)` computes the summary: use numpy's
# `np.median` and `np.percentile` with its default (linear) interpolation, and return Python
# floats. `warmup < 0` or `repeats < 1` is a `ValueError`.
#
# Why is the clock a parameter? A test cannot know how long your code takes, but it can hand
# you a fake clock that only moves when it says so, and then know every number you must
# report. `perf_counter` (not `time.time`) is the right real clock: monotonic, and the
# highest resolution the system has.

# %% nbgrader={"grade": false, "grade_id": "timer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def format_seconds(seconds: float) -> str:
    """1.5e-05 -> '15 us': three significant figures in s, ms, us or ns."""
    rounded = float(f"{seconds:.3g}")  # round first, so 0.9996 s reads '1 s' and not '1e+03 ms'
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g} {unit}"
    return f"{rounded / 1e-9:.3g} ns"


@dataclass
class Timing:
    """Seconds per call, one per timed repeat (warm-up excluded), their median and interquartile range."""

    times: list[float]
    median: float
    iqr: float

    @classmethod
    def from_times(cls, times: list[float]) -> Timing:
        """The Timing of these seconds: the median, and the 75th minus the 25th percentile."""
        ### BEGIN SOLUTION
        times = [float(t) for t in times]
        if not times:
            raise ValueError("Timing needs at least one measured time")
        q25, q50, q75 = np.percentile(times, [25, 50, 75])
        return cls(times=times, median=float(q50), iqr=float(q75 - q25))
        ### END SOLUTION

    def __str__(self) -> str:
        return f"{format_seconds(self.median)} median, IQR {format_seconds(self.iqr)} over {len(self.times)} runs"


class Timer:
    """Times a call: `warmup` untimed calls, then `repeats` timed ones, read from `clock` (seconds)."""

    def __init__(self, warmup: int = 3, repeats: int = 10, clock: Callable[[], float] = time.perf_counter) -> None:
        ### BEGIN SOLUTION
        if warmup < 0 or repeats < 1:
            raise ValueError(f"Timer needs warmup >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
        self.warmup, self.repeats, self.clock = warmup, repeats, clock
        ### END SOLUTION

    def measure(self, fn: Callable, *args: Any, **kwargs: Any) -> Timing:
        """Call fn(*args, **kwargs) warmup + repeats times; the Timing of the timed calls."""
        ### BEGIN SOLUTION
        for _ in range(self.warmup):
            fn(*args, **kwargs)
        times = []
        for _ in range(self.repeats):
            start = self.clock()
            fn(*args, **kwargs)
            times.append(self.clock() - start)
        return Timing.from_times(times)
        ### END SOLUTION


# %% [markdown]
# ## Try it: the first call, and the tail
#
# The first call of a fresh function is often the slowest; the median of many barely moves
# when one run is disturbed.

# %%
if __name__ == "__main__":
    a = np.random.default_rng(1).standard_normal((256, 256)).astype(np.float32)
    first = Timer(warmup=0, repeats=1).measure(lambda: a @ a)
    steady = Timer(warmup=3, repeats=20).measure(lambda: a @ a)
    print("first call:", format_seconds(first.median), "| steady:", steady)
    disturbed = Timing.from_times(steady.times[:-1] + [steady.median * 50])
    print("one run 50x slower -> median", format_seconds(disturbed.median),
          "mean", format_seconds(float(np.mean(disturbed.times))))

# %% [markdown]
# ## 5. A profile: one row per layer
#
# Totals say *how much*; a profile says *where*. `profile(model, x)` runs `model(x)` once and
# returns one `LayerProfile` per layer:
#
# | field | meaning |
# | --- | --- |
# | `name` | the dotted path from the model, as in `named_parameters`: `"blocks.0.attn.q_proj"` |
# | `kind` | the class name, `"Linear"` |
# | `parameters` | the values of the tensors this layer holds, *not counted by an earlier row* |
# | `flops` | the matmul and conv FLOPs that ran inside this layer's `forward`, as `FlopCounter` counts them |
# | `output_shape` | the shape of the layer's output (of its last call), `None` if it never ran |
# | `activation_bytes` | the bytes of its output (summed over its calls) |
# | `seconds` | with `timer=`, the median time of the layer per forward pass; otherwise `None` |
#
# **Which rows.** Every *leaf* module (one without sub-modules: `Linear`, `LayerNorm`,
# `Embedding`, `Dropout`, `Conv2d`) gets a row, in `model.modules()` order. But some work is
# done by a module in its *own* `forward`, outside any child: module 13's
# `CausalSelfAttention` calls `q_proj`, `k_proj`, `v_proj` and `out_proj` (rows of their own)
# and does the scores and the weighted sum itself. So a module with children gets a row too
# (kind `"CausalSelfAttention (own)"`) when it does FLOPs of its own or holds tensors of its
# own; its `flops` are the *exclusive* ones, its `forward`'s FLOPs minus those of its
# children's calls, and its `activation_bytes` are 0 (its output is the output of a child,
# counted there). A model that is itself a leaf gets one row, named `"(model)"`.
#
# With these rules the rows **partition** the model: the row FLOPs add up to the
# `FlopCounter` total of the whole forward, and the row parameters to `count_parameters(model)`
# (the tied GPT head shows 0 parameters: `wte` counted that tensor first, but its
# `2 * T * d * V` FLOPs make it the biggest row).
#
# **How to see inside.** Module 03's `Module.__call__` calls `self.forward(...)`, and an
# attribute set on an *instance* hides the class's method. So for every module, set
# `module.forward` to a wrapper that notes the counter's FLOPs (and the clock) before and
# after calling the original `forward`, and subtracts what its children used; afterwards
# delete the instance attributes again (in a `finally`; a module that had a `forward` of its
# own on the instance gets it back). One `FlopCounter` around the whole
# forward counts for all of them. This is the same mechanism as PyTorch's forward hooks.
#
# **Activation memory.** In training, autograd keeps the output of every layer until backward
# has used it: the **activations**. Unlike the parameters, they grow with the batch and the
# sequence length; for long sequences the `(B, H, T, T)` attention weights dominate. A row's
# `activation_bytes` is `output.data.nbytes` (summed over the tensors of a tuple output), and
# `activation_memory(model, x)` returns them as `{name: bytes}`.
#
# With `timer=Timer(...)`, `profile` runs the forward `timer.warmup` times untimed, then
# `timer.repeats` times while every wrapper reads `timer.clock` around its call, and each row
# gets the median over the repeats of its time per forward (exclusive time for an own row).
# The FLOPs and bytes always come from the first forward.
#
# `profile_table(rows)` prints the rows as a plain-text table with a total row (given).

# %% nbgrader={"grade": false, "grade_id": "profile", "locked": false, "schema_version": 3, "solution": true, "task": false}
@dataclass
class LayerProfile:
    """One row of a profile: a layer, what it holds, what it computed, what its output takes."""

    name: str
    kind: str
    parameters: int
    flops: int
    output_shape: Any
    activation_bytes: int
    seconds: float | None = None


def output_nbytes(value: Any) -> int:
    """The bytes of a layer's output: a Tensor's (or array's) data, summed over a tuple or list."""
    ### BEGIN SOLUTION
    if isinstance(value, (tuple, list)):
        return sum(output_nbytes(item) for item in value)
    if isinstance(value, Tensor):
        return int(value.data.nbytes)
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    return 0
    ### END SOLUTION


def _output_shape(value: Any) -> Any:
    """The shape of an output, a tuple of shapes for a tuple output."""
    if isinstance(value, (tuple, list)):
        return tuple(_output_shape(item) for item in value)
    return _shape(value)


def _named_modules(model: Module) -> list[tuple[str, Module]]:
    """(dotted name, module) for the model and everything inside it, in model.modules() order."""
    names = {id(model): "(model)"}
    order = model.modules()
    for module in order:
        for child_name, child in module.named_children():
            if id(child) not in names:
                prefix = names[id(module)]
                names[id(child)] = child_name if module is model else f"{prefix}.{child_name}"
    return [(names[id(module)], module) for module in order]


def profile(model: Module, x: Any, timer: Timer | None = None) -> list[LayerProfile]:
    """Run model(x) and return one LayerProfile per leaf layer (and per module with work of its own)."""
    ### BEGIN SOLUTION
    named = _named_modules(model)
    stats = {id(module): {"flops": 0, "bytes": 0, "shape": None, "seconds": 0.0} for _, module in named}
    clock = timer.clock if timer is not None else None
    counter = FlopCounter()
    stack: list[dict[str, Any]] = []   # one frame per module call in progress
    first_pass = [True]

    def wrap(module: Module) -> Callable:
        original = module.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            frame = {"children_flops": 0, "children_seconds": 0.0}
            stack.append(frame)
            flops_before = counter.flops
            start = clock() if clock is not None else 0.0
            try:
                out = original(*args, **kwargs)
            finally:
                stack.pop()
            seconds = clock() - start if clock is not None else 0.0
            flops = counter.flops - flops_before
            record = stats[id(module)]
            if first_pass[0]:
                record["flops"] += flops - frame["children_flops"]
                record["bytes"] += output_nbytes(out)
                record["shape"] = _output_shape(out)
            record["seconds"] += seconds - frame["children_seconds"]
            if stack:
                stack[-1]["children_flops"] += flops
                stack[-1]["children_seconds"] += seconds
            return out

        return forward

    hidden = {id(module): vars(module).get("forward") for _, module in named}  # an instance forward of its own
    for _, module in named:
        module.forward = wrap(module)
    runs: list[dict[int, float]] = []
    try:
        with counter:
            model(x)
        first_pass[0] = False
        if timer is not None:
            for _ in range(timer.warmup):
                model(x)
            for _ in range(timer.repeats):
                for record in stats.values():
                    record["seconds"] = 0.0
                model(x)
                runs.append({key: record["seconds"] for key, record in stats.items()})
    finally:
        for _, module in named:
            del module.forward
            if hidden[id(module)] is not None:
                module.forward = hidden[id(module)]

    rows, counted = [], set()
    for name, module in named:
        own = [t for t in held_tensors(module) if id(t) not in counted]
        counted.update(id(t) for t in own)
        record = stats[id(module)]
        leaf = not module.children()
        if not leaf and record["flops"] == 0 and not own:
            continue
        seconds = float(np.median([run[id(module)] for run in runs])) if runs else None
        rows.append(LayerProfile(
            name=name,
            kind=type(module).__name__ if leaf else f"{type(module).__name__} (own)",
            parameters=sum(t.numel() for t in own),
            flops=record["flops"],
            output_shape=record["shape"],
            activation_bytes=record["bytes"] if leaf else 0,
            seconds=seconds,
        ))
    return rows
    ### END SOLUTION


def activation_memory(model: Module, x: Any) -> dict[str, int]:
    """{layer name: bytes of its output} for every row of profile(model, x)."""
    ### BEGIN SOLUTION
    return {row.name: row.activation_bytes for row in profile(model, x)}
    ### END SOLUTION


def _format_count(value: int) -> str:
    """12345678 -> '12.3M': a count in three significant figures."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return str(value)


def profile_table(rows: list[LayerProfile]) -> str:
    """The rows as a plain-text table, one line per layer, then a total row."""
    timed = any(row.seconds is not None for row in rows)
    header = ["layer", "kind", "params", "FLOPs", "output", "act. bytes"] + (["time"] if timed else [])
    lines = []
    for row in rows:
        shape = "-" if row.output_shape is None else "x".join(map(str, row.output_shape)) \
            if all(isinstance(n, (int, np.integer)) for n in row.output_shape) else str(row.output_shape)
        line = [row.name, row.kind, f"{row.parameters:,d}", f"{row.flops:,d}", shape, f"{row.activation_bytes:,d}"]
        if timed:
            line.append("-" if row.seconds is None else format_seconds(row.seconds))
        lines.append(line)
    total = ["total", "", f"{sum(r.parameters for r in rows):,d}", f"{sum(r.flops for r in rows):,d}", "",
             f"{sum(r.activation_bytes for r in rows):,d}"]
    if timed:
        total.append(format_seconds(sum(r.seconds or 0.0 for r in rows)))
    widths = [max(len(str(cells[i])) for cells in [header, *lines, total]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) if i < 2 or i == 4 else cell.rjust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(render(header))
    return "\n".join([render(header), rule, *map(render, lines), rule, render(total)])


# %% [markdown]
# ## Try it: where a GPT spends its work
#
# The profile of a small GPT: the head dominates while the vocabulary is large against the
# width, the attention's own row grows with the square of the sequence length.

# %%
if __name__ == "__main__":
    from tinytorch.transformers import GPT, GPTConfig

    config = GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=4, n_embd=64)
    model = GPT(config).eval()
    idx = np.random.default_rng(0).integers(0, config.vocab_size, (2, 64))
    rows = profile(model, idx, timer=Timer(warmup=1, repeats=5))
    print(profile_table(rows))
    print("count_parameters:", f"{count_parameters(model):,d}",
          "| gpt_forward_flops:", f"{gpt_forward_flops(config, 64, batch=2):,d}")

# %% [markdown]
# ## Systems insight: FLOPs predict the work, not the time
#
# Divide a layer's FLOPs by its time and you get its achieved FLOP rate. Do it for the rows of
# a profile and the rates differ by orders of magnitude: a big `Linear` runs near the CPU's
# matmul peak (numpy hands it to BLAS, which keeps the data in cache and uses every vector
# unit), while a `LayerNorm` or a `Dropout`, with a few FLOPs per value, spends its time
# reading and writing memory and creating numpy temporaries. Their *arithmetic intensity*
# (FLOPs per byte moved) is too low to keep the arithmetic units busy. That is why the cell
# below finds that the norms and dropouts, with no matmul at all (a few elementwise FLOPs per
# value, `layernorm_flops`), take a visible share of the time, and why fusing elementwise
# operations (module 18) pays off although it removes no FLOPs.
#
# The second thing to measure is how the two terms of attention scale. The projections cost
# `8 * T * d^2`, the scores and the weighted sum `4 * T^2 * d`: they are equal at `T = 2 d`.
# Below that, a longer context costs roughly linearly; above it, quadratically, and the
# `(B, H, T, T)` attention weights become the largest activation of the model.

# %%
if __name__ == "__main__":
    from tinytorch.transformers import GPT, GPTConfig

    config = GPTConfig(vocab_size=256, block_size=256, n_layer=2, n_head=4, n_embd=128)
    model = GPT(config).eval()
    idx = np.random.default_rng(0).integers(0, config.vocab_size, (4, 128))
    rows = profile(model, idx, timer=Timer(warmup=1, repeats=5))
    for row in rows:
        if row.seconds and row.flops:
            print(f"{row.name:24s} {row.flops / row.seconds / 1e9:7.2f} GFLOP/s")
    elementwise = [row for row in rows if row.kind in ("LayerNorm", "Dropout")]
    share_time = sum(r.seconds for r in elementwise) / sum(r.seconds for r in rows)
    print(f"LayerNorm + Dropout: 0 matmul FLOPs, {100 * share_time:.1f}% of the time")
    d = config.n_embd
    for T in (32, 64, 128, 256):
        projections = 4 * linear_flops(d, d, T, bias=False)
        scores = attention_flops(T, d, projections=False)
        print(f"T={T:4d}: projections {projections / 1e6:7.1f} MFLOPs, scores + sum {scores / 1e6:7.1f} MFLOPs")

# %% [markdown]
# ## Checkpoint
#
# `tito check 14` runs `tests/checkpoints/test_14_profiling.py`. It compares
# `count_parameters` with PyTorch's `parameters()` count on an MLP, a CNN and GPTs built from
# `torch.nn` (tied and untied heads, SwiGLU, RMSNorm, RoPE), with frozen tensors and a layer
# used twice; `linear_flops`, `conv2d_flops` (stride, padding, rectangular kernels),
# `attention_flops` (with and without projections, a cache longer than the queries) and
# `gpt_forward_flops` with `torch.utils.flop_counter.FlopCounterMode` on the same
# architectures (attention written with explicit matmuls), plus the bias adds and the
# lesson's LayerNorm convention in closed form and GPT-2 small against the textbook rule;
# `FlopCounter` on matmuls with batch axes and broadcasting, 1-D operands, `array @ Tensor`,
# `Linear`, `Conv2d`, a CNN and a GPT against `FlopCounterMode`, and that it restores the
# originals (also after an exception, which must propagate), survives a failed product and
# nests; `Timer` and `Timing` with a fake clock (warm-up excluded, arguments passed on, the
# median and numpy's interquartile range, the defaults) and with the real clock; `profile` of
# an MLP, a CNN and a GPT (rows that add up to PyTorch's parameter count and FLOPs, the
# attention's own row, the tied head's 0 parameters), per-row times with a fake clock, a model
# left as it was (also after it raised), `activation_memory`, and the total row of
# `profile_table`.
