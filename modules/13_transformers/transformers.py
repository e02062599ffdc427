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
# # Module 13: Transformers
#
# Everything is in place. Module 10 turns text into token ids, module 11 turns ids into
# vectors, module 12 lets every position look at the positions before it. This module puts
# them together into a **GPT**, a decoder-only transformer, and makes it write.
#
# ## The GPT in one picture
#
# ```
# token ids (B, T)
#    │
#    ├── wte: token embedding (vocab, d) ──┐
#    └── wpe: position embedding (T, d) ───┴─(+)─► x (B, T, d)     the "residual stream"
#                                                 │
#            ┌────────────── Block, repeated n_layer times ──────────────┐
#            │   x = x + attn(ln_1(x))    causal self-attention, module 12 │
#            │   x = x + mlp(ln_2(x))     a small MLP on every position   │
#            └───────────────────────────────────────────────────────────┘
#                                                 │
#                                   ln_f: final normalisation
#                                                 │
#                    lm_head: (d -> vocab), the SAME matrix as wte ("tied")
#                                                 │
#                                       logits (B, T, vocab)
# ```
#
# Logits at position `t` are the model's guess for token `t + 1`, computed from tokens
# `0..t` only (the causal mask guarantees it). Training is cross-entropy between those
# logits and the input shifted by one; generating is: run the model, pick a token from the
# last position's distribution, append it, repeat.
#
# You build it bottom up, each piece checked against PyTorch in float64:
#
# | piece | what it is for |
# | --- | --- |
# | `LayerNorm`, `RMSNorm` | keep every token's vector at a steady scale |
# | `MLP` (GELU or SwiGLU) | the per-position computation; two thirds of the parameters |
# | `apply_rope` | positions as rotations (the alternative to `wpe`, used by LLaMA) |
# | `CausalSelfAttention` | heads + module 12's `scaled_dot_product_attention` |
# | `Block` | pre-norm residual block |
# | `GPTConfig`, `GPT` | the model: embeddings, blocks, tied head, init |
# | `top_k_filter`, `top_p_filter`, `sample_next_token`, `GPT.generate` | writing text |
#
# The names follow nanoGPT and PyTorch (`wte`, `wpe`, `ln_1`, `attn`, `ln_2`, `mlp`, `ln_f`,
# `lm_head`), so a reader of either recognises everything.

# %%
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import tinytorch.autograd  # noqa: F401  (gives Tensor operations, activations and losses their gradients)
from tinytorch.activations import GELU, Sigmoid
from tinytorch.attention import scaled_dot_product_attention
from tinytorch.autograd import Function, needs_grad, no_grad, record
from tinytorch.embeddings import Embedding
from tinytorch.layers import Dropout, Linear, Module
from tinytorch.tensor import Tensor, generator

# %% [markdown]
# ## 1. LayerNorm: every token at the same scale
#
# Deep networks are stacks of matrix multiplications, and each one can make its output a
# little larger or smaller than its input. Over dozens of layers those factors compound, and
# the numbers drift to where activations saturate or gradients vanish. A **normalisation
# layer** resets the scale: it rescales each vector to mean 0 and variance 1, then lets the
# network choose the scale it wants with two learned vectors.
#
# For one token's vector `x` of `d` numbers (the last axis):
#
# ```
# mean = sum(x) / d
# var  = sum((x - mean)^2) / d            biased: divide by d, not d - 1
# y    = (x - mean) / sqrt(var + eps) * weight + bias
# ```
#
# - **Per token, over the features.** BatchNorm (for images) averages over the *batch*, which
#   makes a token's output depend on which other sequences happen to share its batch, and
#   breaks when generating one token at a time. LayerNorm looks only at the token itself:
#   every position of every sequence is normalised on its own, in training and in
#   generation alike.
# - **Biased variance.** We estimate nothing about a population; we rescale *this* vector.
#   Dividing by `d` is what PyTorch's `LayerNorm` does, and the checkpoint compares with it.
#   (`Tensor.var` of module 01 is already biased.)
# - **`eps`** (1e-5) keeps the division finite for a constant vector, whose variance is 0.
# - **`weight` starts at ones and `bias` at zeros**, so a fresh LayerNorm is a pure
#   normalisation; training moves them. With `bias=False` there is no bias (nanoGPT's
#   `bias=False` option removes it from every Linear and LayerNorm).
#
# Write `forward` with Tensor operations (`mean`, `var`, `-`, `sqrt`, `/`, `*`, `+`) on the
# last axis with `keepdims=True`: module 05 then differentiates it for free. A float64 input
# stays float64 (numpy promotes float32 parameters to float64 in the arithmetic).

# %% nbgrader={"grade": false, "grade_id": "layer-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LayerNorm(Module):
    """Normalise the last axis to mean 0, variance 1, then scale by `weight` and shift by `bias`."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, bias: bool = True) -> None:
        """weight: ones (normalized_shape,), bias: zeros (or None when bias=False); float32."""
        super().__init__()
        self.normalized_shape = normalized_shape
        self.eps = eps
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased var)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, bias={self.bias is not None}"


# %% [markdown]
# ## 2. RMSNorm: drop the mean
#
# Zhang and Sennrich (2019) asked which half of LayerNorm does the work, the centring or the
# rescaling. The rescaling, it turned out: **RMSNorm** skips the mean and the bias and
# divides by the root mean square,
#
# ```
# y = x / sqrt(mean(x^2) + eps) * weight
# ```
#
# One reduction instead of two, no subtraction, one parameter vector instead of two: cheaper,
# and it trains as well. LLaMA, Mistral and most recent models use it. Its default `eps` is
# smaller (1e-6): `mean(x^2)` is zero only for the zero vector. Same rules as `LayerNorm`:
# Tensor operations over the last axis, `weight` ones in float32.

# %% nbgrader={"grade": false, "grade_id": "rms-norm", "locked": false, "schema_version": 3, "solution": true, "task": false}
class RMSNorm(Module):
    """Divide the last axis by its root mean square, then scale by `weight`."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        """weight: ones (dim,), float32."""
        super().__init__()
        self.dim = dim
        self.eps = eps
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x / sqrt(mean(x^2) + eps) * weight over the last axis."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


# %% [markdown]
# ## 3. The MLP: GELU, and the gated SwiGLU
#
# Attention moves information *between* positions; the MLP then computes on each position
# *alone*, the same small network applied to every token vector. GPT-2's is two Linear layers
# with a GELU (module 02, tanh approximation) between them, widening to `4 * dim` in the
# middle:
#
# ```
# gelu:    proj(gelu(fc(x)))              fc: dim -> hidden,  proj: hidden -> dim
# ```
#
# **SwiGLU** (Shazeer 2020, used by LLaMA) adds a *gate*: two projections of the input, one
# passed through SiLU (`silu(z) = z * sigmoid(z)`, a smooth ReLU), multiplied elementwise:
#
# ```
# swiglu:  proj(silu(gate(x)) * up(x))    gate, up: dim -> hidden,  proj: hidden -> dim
# ```
#
# The gate decides, per hidden unit and per token, how much of `up(x)` passes: a product of
# two linear functions of `x`, which a plain activation cannot express. It trains measurably
# better for the same compute.
#
# **Matching parameters.** The GELU MLP has two `dim x hidden` matrices, SwiGLU three. To
# spend the same parameters, `3 * dim * hidden' = 2 * dim * 4 * dim` gives
# `hidden' = 8/3 * dim`; LLaMA uses `hidden = 8/3 * dim` rounded up to a multiple of 256
# (11008 for dim 4096). Our default `hidden` is `4 * dim` for both; pass `hidden=` to match.
#
# Create the layers in the order of the formulas, so that parameters get torch-like names in
# a fixed order: `fc`, `proj` for GELU (keep a `GELU()` object to call), `gate`, `up`, `proj`
# for SwiGLU, all with the given `bias`. Dropout (module 03) is applied to the MLP's output, as
# in GPT-2; with `dropout=0.0` it does nothing. An unknown `activation` is a ValueError naming
# the choices.

# %% nbgrader={"grade": false, "grade_id": "mlp", "locked": false, "schema_version": 3, "solution": true, "task": false}
ACTIVATIONS = ("gelu", "swiglu")


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish), with Tensor operations."""
    # YOUR CODE HERE
    raise NotImplementedError()


class MLP(Module):
    """The position-wise network of a transformer block: GELU (GPT-2) or SwiGLU (LLaMA)."""

    def __init__(self, dim: int, hidden: int | None = None, activation: str = "gelu",
                 bias: bool = True, dropout: float = 0.0) -> None:
        """gelu: Linear `fc` and `proj`; swiglu: Linear `gate`, `up` and `proj`; then Dropout."""
        super().__init__()
        self.dim = dim
        self.hidden = 4 * dim if hidden is None else hidden
        self.activation = activation
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x (..., dim) -> (..., dim)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, activation={self.activation!r}"


# %% [markdown]
# ## 4. RoPE: positions as rotations
#
# Attention by itself is blind to order: permute the keys and the weights permute with them.
# GPT-2 adds a learned vector per position to each token embedding (`wpe`). That works, but
# a position is then an *absolute* label, while what matters for language is mostly the
# *relative* offset ("the word two to the left"), and the model cannot handle positions it
# never saw in training.
#
# **Rotary position embedding** (Su et al. 2021, used by LLaMA) encodes position *inside
# attention*, by rotating the queries and keys. Split a head's `d` features into `d/2` pairs
# `(x[2i], x[2i+1])`, and treat each pair as a point in the plane. At position `p`, rotate
# pair `i` by the angle `p * theta_i`, with frequencies `theta_i = base^(-2i/d)`
# (`base = 10000`):
#
# ```
# out[2i]   = x[2i] * cos(p theta_i) - x[2i+1] * sin(p theta_i)
# out[2i+1] = x[2i] * sin(p theta_i) + x[2i+1] * cos(p theta_i)
# ```
#
# The first pair turns fast (one radian per position), the last ones very slowly: like the
# hands of a clock, together they tell positions apart over thousands of steps.
#
# **Why this gives relative positions.** A rotation preserves dot products, and rotating one
# vector by `a` and another by `b` changes their dot product exactly like rotating only the
# second by `b - a`. So with `R(p)` the rotation for position `p`,
#
# ```
# (R(m) q) . (R(n) k) = q . R(n - m) k
# ```
#
# The attention score of query position `m` and key position `n` depends on the content and
# on `n - m` only. The "Try it" cell checks this numerically, and so does the checkpoint.
# Values are not rotated: position changes *who* is attended to, not *what* is passed on.
#
# **Backward.** The rotation is linear in `x`, `out = R x`, so `dL/dx = R^T dL/dout`, and the
# transpose of a rotation is the rotation by the opposite angle: run the same formula with
# `sin` negated. That makes `apply_rope` a new primitive with its own `Function`, `RopeFn`, as
# in module 09: compute with numpy, then mark the result with module 05's `record` when
# recording is on and `x` requires grad.
#
# Shapes: `x` is `(..., T, d)`, typically `(B, heads, T, head_dim)`; `rope_angles` returns
# `cos` and `sin` of shape `(T, d/2)`, which broadcast against the pairs `x[..., 0::2]` and
# `x[..., 1::2]` of shape `(..., T, d/2)`. No loop over pairs or positions. `offset` shifts
# the positions (`offset, offset+1, ...`): module 17's KV-cache rotates one new token at
# position `offset`. An odd `d` has no pairs: ValueError. Cast `cos`/`sin` to `x`'s dtype so
# float32 stays float32.

# %% nbgrader={"grade": false, "grade_id": "rope", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rope_angles(seq_len: int, dim: int, base: float = 10000.0, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of p * base^(-2i/dim) for p = offset..offset+seq_len-1, i < dim/2: (seq_len, dim/2) float64."""
    # YOUR CODE HERE
    raise NotImplementedError()


def _rotate_pairs(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate every pair (x[..., 2i], x[..., 2i+1]) by the angle whose cos and sin are given."""
    # YOUR CODE HERE
    raise NotImplementedError()


class RopeFn(Function):
    """apply_rope(x): keeps the cos and sin tables for the backward rotation."""

    def __init__(self, x: Tensor, cos: np.ndarray, sin: np.ndarray) -> None:
        super().__init__(x)
        self.cos, self.sin = cos, sin

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray]:
        """The transpose of a rotation is the rotation by the opposite angle."""
        # YOUR CODE HERE
        raise NotImplementedError()


def apply_rope(x: Tensor, base: float = 10000.0, offset: int = 0) -> Tensor:
    """x (..., T, d), d even: pair i at position offset + t rotated by (offset + t) * base^(-2i/d)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 5. Causal self-attention
#
# Module 12 built `scaled_dot_product_attention(q, k, v, is_causal=True)`, which works on any
# leading axes. A GPT's attention layer only has to feed it: project the input `x (B, T, dim)`
# to queries, keys and values with three `Linear(dim, dim)`, split the `dim` features into
# `n_heads` heads of `head_dim = dim / n_heads`, and move the head axis in front of time so
# that every head is an independent batch entry:
#
# ```
# (B, T, dim) --q_proj--> (B, T, dim) --reshape--> (B, T, H, hd) --transpose(1, 2)--> (B, H, T, hd)
# ```
#
# With `rope=True`, rotate `q` and `k` (not `v`) with `apply_rope` at this point: each head
# rotates its own `hd` features. Then attention, then the way back: `transpose(1, 2)` to
# `(B, T, H, hd)`, `reshape` to `(B, T, dim)` (the heads side by side again), and `out_proj`
# mixes the heads. Dropout (if any) is applied twice, as in GPT-2: to the attention weights
# (module 12's `dropout_p`, in training mode only) and to the output. All Tensor operations, all
# batched: no Python loop over the batch, the heads or the positions.
#
# `forward(x, need_weights=True)` also returns the attention weights `(B, H, T, T)` that
# module 12 can return, for plots like the 2017 milestone's attention map.
#
# `dim` must divide into `n_heads` heads (ValueError otherwise), and with `rope=True` the
# head size must be even.

# %% nbgrader={"grade": false, "grade_id": "causal-self-attention", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CausalSelfAttention(Module):
    """Multi-head self-attention in which position t sees positions 0..t only."""

    def __init__(self, dim: int, n_heads: int, bias: bool = True, dropout: float = 0.0,
                 rope: bool = False) -> None:
        """Linear q_proj, k_proj, v_proj, out_proj (dim -> dim), and Dropout on the output."""
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"CausalSelfAttention: dim={dim} does not split into n_heads={n_heads} equal heads")
        if rope and (dim // n_heads) % 2:
            raise ValueError(f"CausalSelfAttention: RoPE rotates pairs, so the head size {dim // n_heads} must be even")
        self.dim, self.n_heads, self.head_dim, self.rope = dim, n_heads, dim // n_heads, rope
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor, need_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, T, dim) -> (B, T, dim); with need_weights, (out, weights (B, H, T, T))."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_heads={self.n_heads}, rope={self.rope}"


# %% [markdown]
# ## 6. The pre-norm residual block
#
# A block is two sub-layers, each wrapped the same way:
#
# ```
# x = x + attn(ln_1(x))
# x = x + mlp(ln_2(x))
# ```
#
# **Residual connections** (`x + f(x)`) make each sub-layer compute a *change* to the running
# vector, the "residual stream", instead of replacing it. In backward, `d(x + f(x))/dx = 1 +
# df/dx`: the gradient reaches early layers through the `1`, untouched by however many
# sub-layers lie in between. That identity path is what lets dozens of blocks train.
#
# **Pre-norm** puts the normalisation *inside* the branch, before the sub-layer. The original
# transformer (2017) normalised *after* the addition, `x = ln(x + f(x))`, which puts a
# LayerNorm on the identity path itself: every block rescales the stream and the gradient
# flowing through it, and deep post-norm models need a careful learning-rate warm-up not to
# diverge. With pre-norm (GPT-2 onwards) the stream is a clean sum of the embedding and every
# block's contribution, and the gradient of the loss with respect to the stream arrives at
# every block unchanged. The price: the stream grows as blocks add to it, which is why GPT-2
# adds the final `ln_f` before the head (and scales its residual projections at init,
# section 8).
#
# `Block` chooses its parts by name: `norm="layernorm" | "rmsnorm"`, `mlp="gelu" | "swiglu"`,
# `rope=True` for rotary positions in attention. An unknown name is a ValueError.

# %% nbgrader={"grade": false, "grade_id": "block", "locked": false, "schema_version": 3, "solution": true, "task": false}
NORMS = ("layernorm", "rmsnorm")


def make_norm(kind: str, dim: int, bias: bool = True) -> Module:
    """LayerNorm(dim) (with or without bias) for "layernorm", RMSNorm(dim) for "rmsnorm"."""
    # YOUR CODE HERE
    raise NotImplementedError()


class Block(Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, dim: int, n_heads: int, mlp: str = "gelu", norm: str = "layernorm",
                 rope: bool = False, bias: bool = True, dropout: float = 0.0) -> None:
        """Attributes ln_1, attn (CausalSelfAttention), ln_2, mlp (MLP), in that order."""
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, dim) -> (B, T, dim)."""
        # YOUR CODE HERE
        raise NotImplementedError()


# %% [markdown]
# ## 7. The GPT, with weight tying
#
# `GPTConfig` collects the choices (a dataclass: `GPTConfig(vocab_size=65, block_size=64)`).
# `GPT(config)` builds
#
# - `wte = Embedding(vocab_size, n_embd)` (module 11): row `i` is token `i`'s vector;
# - `wpe = Embedding(block_size, n_embd)` for `position="learned"`, added to the token
#   vectors (`wpe(np.arange(T))` broadcasts over the batch); `None` for `position="rope"`,
#   where every attention layer rotates instead;
# - `drop = Dropout(dropout)` on the sum of the embeddings;
# - `blocks`: a list of `n_layer` `Block`s (a list attribute: module 03's registry names
#   their parameters `blocks.0.ln_1.weight`, ...);
# - `ln_f`, the final norm, and `lm_head = Linear(n_embd, vocab_size, bias=False)`.
#
# **Weight tying.** `wte` maps a token id to a vector; `lm_head` maps a vector to one score
# per token, `x @ W.T`. Both are `(vocab, d)` matrices indexed by token, and Press and Wolf
# (2017) showed one matrix can do both jobs: a token's input vector is also the direction
# that scores it as output. So with `tie_weights=True`, make `lm_head.weight` *the same
# Tensor object* as `wte.weight`: `self.lm_head.weight = self.wte.weight`. Module 03's
# `parameters()` lists a shared tensor once, an optimizer updates it once, and autograd adds
# the gradients of both uses (module 05's accumulation). For GPT-2 small the matrix is
# `50257 x 768 = 38.6` million numbers, 31% of its 124 million: tying saves all of that.
#
# `forward(idx)`: `idx (B, T)` integer token ids (a Tensor, a numpy array or a nested list)
# -> logits `(B, T, vocab)`. A `T` longer than `block_size` is a ValueError: there is no
# position embedding beyond it (with RoPE there would be, but the model was never trained
# there, and the limit keeps the two position schemes interchangeable).
#
# ## 8. Initialisation
#
# Module 03's Kaiming init keeps the scale of a *ReLU* stack steady. GPT-2 uses something
# simpler: every Linear and Embedding weight from `N(0, 0.02)`, biases 0, norms at ones. 0.02
# is roughly `1 / sqrt(d)` for the model sizes it was chosen for, and small embeddings make
# every token start out almost equally likely: the initial loss is close to `log(vocab)`,
# the loss of a uniform guess (the checkpoint measures it).
#
# **Residual scaling.** Each block *adds* two contributions to the residual stream, so after
# `n_layer` blocks the stream is a sum of `2 * n_layer` random terms, and the variance of a
# sum of independent terms grows with their number. GPT-2 scales the weights of the two
# layers that write into the stream, `attn.out_proj` and `mlp.proj`, by `1 / sqrt(2 * n_layer)`:
# std `0.02 / sqrt(2 * n_layer)`, so the stream's variance at init does not depend on depth.
#
# `GPT.__init__` builds the parts in the order of the list above and ends with
# `self._init_weights()`, which applies this: walk `self.modules()`, re-draw every `Linear`
# and `Embedding` weight (zeroing `Linear` biases), then re-draw the two residual projections
# of every block. Draw from `generator()` (module 01), so that `manual_seed` repeats a model
# exactly, and write into each weight's `.data` in place (`tensor.data[...] = ...` keeps
# float32 and keeps the Tensor objects: the tie!).

# %%
POSITIONS = ("learned", "rope")


@dataclass
class GPTConfig:
    """The hyper-parameters of a GPT."""

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0
    bias: bool = True
    norm: str = "layernorm"      # or "rmsnorm"
    mlp: str = "gelu"            # or "swiglu"
    position: str = "learned"    # or "rope"
    tie_weights: bool = True


def _token_array(idx: Any) -> np.ndarray:
    """Token ids (Tensor, numpy array or nested list) as a 2-D int64 numpy array."""
    array = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    if array.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"token ids must have shape (B, T), got {array.shape}; "
                         f"a single sequence is idx[None, :]")
    return array.astype(np.int64, copy=False)


def _require_positive_temperature(temperature: float) -> None:
    """Sampling divides the logits by the temperature: 0 or less has no meaning (greedy is argmax)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; use greedy=True for argmax")


# %% nbgrader={"grade": false, "grade_id": "gpt", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GPT(Module):
    """A decoder-only transformer language model: token ids (B, T) -> next-token logits (B, T, vocab)."""

    def __init__(self, config: GPTConfig) -> None:
        """wte, wpe (or None), drop, blocks, ln_f, lm_head (tied to wte); GPT-2's initialisation."""
        super().__init__()
        self.config = config
        if config.position not in POSITIONS:
            raise ValueError(f"GPTConfig.position must be one of {', '.join(POSITIONS)}, not {config.position!r}")
        # YOUR CODE HERE
        raise NotImplementedError()

    def _init_weights(self) -> None:
        """N(0, 0.02) weights, zero biases, N(0, 0.02 / sqrt(2 n_layer)) residual projections."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def forward(self, idx: Any) -> Tensor:
        """idx (B, T) integer ids, T <= block_size -> logits (B, T, vocab_size)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def generate(self, idx: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, greedy: bool = False,
                 rng: np.random.Generator | None = None) -> np.ndarray:
        """idx (B, T) -> (B, T + max_new_tokens): the prompt followed by the sampled tokens (section 9)."""
        # YOUR CODE HERE
        raise NotImplementedError()

    def attention_maps(self, idx: Any) -> list[np.ndarray]:
        """The attention weights (B, n_head, T, T) of every block, from one forward pass on idx.

        Given code: each block's attention is asked for its weights (`need_weights=True`) while
        your own `forward` runs, then put back as it was."""
        maps: list[np.ndarray] = []
        for block in self.blocks:
            attention = block.attn

            def keep_weights(x: Tensor, attention: CausalSelfAttention = attention) -> Tensor:
                out, weights = type(attention).forward(attention, x, need_weights=True)
                maps.append(weights.data)
                return out

            attention.forward = keep_weights  # this instance only, for this one pass
        try:
            with no_grad():
                self.forward(idx)
        finally:
            for block in self.blocks:
                del block.attn.forward
        return maps


# %% [markdown]
# ## 9. Generation: from logits to the next token
#
# The logits at the last position score every possible next token. How to choose one is a
# decision separate from the model, and it changes the text a lot:
#
# - **Greedy**: always the argmax. Deterministic, and prone to loops ("the the the"); the
#   most likely *sequence* is not the sequence of most likely tokens. Ties go to the lowest
#   token id (`np.argmax`).
# - **Temperature** `T`: sample from `softmax(logits / T)` (module 02's temperature). `T < 1`
#   sharpens the distribution towards greedy, `T > 1` flattens it towards uniform. `T <= 0`
#   is meaningless: ValueError (greedy is the `T -> 0` limit; ask for it with `greedy=True`).
# - **Top-k** (Fan et al. 2018): keep the `k` highest logits, set the others to `-inf`
#   (probability 0), renormalise. Cuts off the long tail of individually unlikely tokens that
#   together get a lot of mass and produce nonsense.
# - **Top-p**, *nucleus* sampling (Holtzman et al. 2019): keep the smallest set of most
#   probable tokens whose probabilities add up to at least `p`. Unlike a fixed `k`, the set
#   adapts: a confident model keeps one or two tokens, an unsure one keeps many.
#
# **Our exact semantics**, which the checkpoint tests:
#
# - `top_k_filter(logits, k)`: keep every logit `>=` the k-th largest in its row, `-inf`
#   elsewhere. With ties at the boundary *all* tied tokens stay (there is no reason to
#   prefer one of two equally likely tokens), so slightly more than `k` may survive.
#   `k >= vocab` keeps everything; `k < 1` is a ValueError.
# - `top_p_filter(logits, p)`: sort the probabilities (softmax in float64) in decreasing
#   order and keep tokens while the mass *before* them is still below `p`. With
#   probabilities `[0.5, 0.3, 0.2]` and `p = 0.8`, the first two already reach 0.8 exactly,
#   so the third is dropped: a set that *reaches* `p` is enough. "Reaches" allows `1e-9` of
#   rounding, because `softmax(log 0.3)` is not exactly `0.3` in floating point. The most
#   probable token is always kept. Ties at the boundary are all kept, as in top-k: the
#   result is the set of tokens whose probability is at least that of the last token needed.
#   `p >= 1` keeps everything; `p <= 0` is a ValueError.
# - `next_token_probs(logits, temperature, top_k, top_p)`: the distribution actually sampled
#   from: divide by the temperature, apply top-k, then top-p (on the tempered
#   distribution, as Hugging Face's samplers do), softmax. Float64.
# - `sample_next_token(...)`: one token per row drawn from that distribution with `rng` (a
#   numpy Generator; default module 01's `generator()`), or the argmax with `greedy=True`.
#   Draw all rows at once: one uniform number `u` per row, and the token is the first whose
#   cumulative probability exceeds `u` (inverse-CDF sampling). Divide the cumulative sum by
#   its last entry so that it ends at exactly 1.0 and `u < 1` always finds a token; a token
#   of probability 0 can never be chosen.
#
# A temperature of 0 or less is a ValueError in `next_token_probs`, `sample_next_token` and
# `generate` alike: each starts with `_require_positive_temperature(temperature)`, given above.
#
# Every helper works on numpy arrays `(..., V)`, a row per sequence, without a Python loop
# over rows. `GPT.generate` then loops over the new tokens: crop the context to the last
# `block_size` tokens, run the model (under `no_grad`, in eval mode so dropout is off, and
# put the previous mode back afterwards, even after an error), take the last position's
# logits, sample, append. Each step re-runs the whole context; module 17 caches it.

# %% nbgrader={"grade": false, "grade_id": "sampling", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _probabilities(logits: np.ndarray) -> np.ndarray:
    """Stable softmax over the last axis in float64 (-inf logits get probability 0)."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k_filter(logits: np.ndarray, k: int) -> np.ndarray:
    """Logits (..., V) with -inf wherever a logit is below the k-th largest of its row."""
    # YOUR CODE HERE
    raise NotImplementedError()


def top_p_filter(logits: np.ndarray, p: float) -> np.ndarray:
    """Logits (..., V) with -inf outside the nucleus: the most probable tokens whose mass reaches p."""
    # YOUR CODE HERE
    raise NotImplementedError()


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """The distribution sample_next_token draws from: softmax of tempered, filtered logits (float64)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def sample_next_token(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, greedy: bool = False,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """One token id per row of logits (B, V) -> (B,) int64: argmax if greedy, else a draw."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it
#
# Run this file (`python modules/13_transformers/transformers.py`) or these cells. First the
# relative-position property of RoPE: rotate the *same* query and key vectors to every
# position and look at the matrix of their scores. Every diagonal is constant: the score
# depends on `n - m` only.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    q_vec, k_vec = rng.standard_normal(8), rng.standard_normal(8)
    queries = apply_rope(Tensor(np.tile(q_vec, (6, 1))))   # q at positions 0..5
    keys = apply_rope(Tensor(np.tile(k_vec, (6, 1))))
    scores = queries.data @ keys.data.T                    # scores[m, n] = (R(m) q) . (R(n) k)
    np.set_printoptions(precision=3, suppress=True)
    print("RoPE scores, constant along every diagonal:\n", scores)
    print("unrotated q.k =", round(float(q_vec @ k_vec), 3), "= the main diagonal")

# %% [markdown]
# A small GPT, its parameters, and generation before any training (random text: the logits
# are nearly uniform, so the initial loss is about `log(vocab)`).

# %%
if __name__ == "__main__":
    from tinytorch.losses import CrossEntropyLoss
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_embd=32)
    model = GPT(config)
    print(model.blocks[0])
    print("parameters:", model.num_parameters(), "| lm_head.weight is wte.weight:", model.lm_head.weight is model.wte.weight)
    idx = rng.integers(0, config.vocab_size, (4, 16))
    logits = model(idx)
    loss = CrossEntropyLoss()(logits[:, :-1].reshape(-1, config.vocab_size), Tensor(idx[:, 1:].reshape(-1)))
    print(f"initial loss {loss.item():.3f}, log(vocab) = {math.log(config.vocab_size):.3f}")
    loss.backward()
    print("wte.weight.grad gets both uses (embedding and head):", model.wte.weight.grad.shape)
    print("greedy:", model.generate(idx[:1, :3], 10, greedy=True)[0])
    print("top-k :", model.generate(idx[:1, :3], 10, top_k=5, rng=np.random.default_rng(1))[0])
    print("top-p :", model.generate(idx[:1, :3], 10, top_p=0.9, temperature=0.8, rng=np.random.default_rng(1))[0])

    example = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    print("top_k_filter(k=2):", top_k_filter(example, 2))
    print("top_p_filter(p=0.8):", top_p_filter(example, 0.8), "(0.5 + 0.3 reaches 0.8)")
    print("probabilities at T=0.5:", next_token_probs(example, temperature=0.5), "(sharper)")

# %% [markdown]
# ## Systems insight: counting parameters and FLOPs
#
# Where do a GPT's parameters live? Per block, with `d = n_embd`:
#
# | part | matrices | parameters |
# | --- | --- | --- |
# | attention | q, k, v, out: four `d x d` | `4 d^2` (+ `4d` biases) |
# | MLP (GELU, hidden `4d`) | `d x 4d` and `4d x d` | `8 d^2` (+ `5d` biases) |
# | two LayerNorms | | `4d` |
#
# so a block has `12 d^2 + 13 d`, and the model
#
# ```
# params = 12 * n_layer * d^2  +  V * d  +  block_size * d  +  (13 * n_layer + 2) * d
#          blocks                 wte (= lm_head, tied)      wpe   biases and norms
# ```
#
# For GPT-2 small (`n_layer = 12, d = 768, V = 50257, block_size = 1024`) that is 84.9M +
# 38.6M + 0.8M + 0.1M = 124.4M: the famous "124M". Without tying it would be 163M.
#
# **Compute.** In the forward pass, each parameter of a weight matrix takes part in one
# multiply and one add per token: about `2 * params` FLOPs per token (the embedding lookups
# are free, but the tied head is a real `d x V` matmul, so count `wte` once). Attention adds
# `4 * n_layer * T * d` per token for the scores and the weighted sum (`2 * T * d` each), small
# while `T` is much less than `3 d`. Backward costs about twice the forward, so training is
# about `6 * params` FLOPs per token: the rule used to budget every large model. The cell
# checks the count against the model and measures what numpy achieves on this CPU.

# %%
if __name__ == "__main__":
    def closed_form(c: GPTConfig) -> int:
        d = c.n_embd
        return 12 * c.n_layer * d * d + c.vocab_size * d + c.block_size * d + (13 * c.n_layer + 2) * d

    config = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config).eval()
    print(f"closed form {closed_form(config):,d} == counted {model.num_parameters():,d}")
    gpt2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    print(f"GPT-2 small by the formula: {closed_form(gpt2):,d} parameters "
          f"(untied: {closed_form(gpt2) + gpt2.vocab_size * gpt2.n_embd:,d})")

    batch, steps = 8, 64
    matmul_params = model.num_parameters() - config.block_size * config.n_embd  # wpe is a lookup
    flops_per_token = 2 * matmul_params + 4 * config.n_layer * steps * config.n_embd
    idx = rng.integers(0, config.vocab_size, (batch, steps))
    with no_grad():
        model(idx)  # warm-up
        start = time.perf_counter()
        model(idx)
        seconds = time.perf_counter() - start
    tokens = batch * steps
    print(f"~{flops_per_token / 1e6:.2f} MFLOPs per token; {tokens} tokens in {seconds * 1e3:.1f} ms "
          f"= {flops_per_token * tokens / seconds / 1e9:.2f} GFLOP/s")

# %% [markdown]
# ## Checkpoint
#
# `tito check 13` runs `tests/checkpoints/test_13_transformers.py`. It compares `LayerNorm`
# and `RMSNorm` (values and the gradients of input, weight and bias), both MLPs and
# `apply_rope` (values and gradients) with PyTorch in float64; checks RoPE's
# relative-position property; compares a `Block` and two whole GPTs (learned positions with
# LayerNorm and GELU, and RoPE with RMSNorm and SwiGLU) with small PyTorch models written in
# the test that hold the same weights (the test replaces your random initial numbers with its
# own first): logits and the gradients of a cross-entropy loss. It checks where dropout acts
# (the embeddings, the attention weights, the attention and MLP outputs; in training mode
# only), weight tying and the parameter count against the closed form, causality (changing
# future tokens leaves earlier logits alone), the block-size limit, the initialisation
# statistics, that `generate` runs in eval mode under `no_grad` and restores the previous
# mode, greedy generation against a step-by-step argmax (also beyond `block_size`), the exact sets
# kept by `top_k_filter` and `top_p_filter` (ties, and `p` exactly on a boundary), that
# sampling never leaves them, that 20,000 draws follow the renormalised distribution, and
# what temperature does to the probabilities.
