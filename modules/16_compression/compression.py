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
# # Module 16: Compression
#
# A trained network is a pile of numbers, and numbers cost memory, bandwidth and energy. The
# MNIST network of the 1986 milestone has 200 thousand of them; GPT-2 small has 124 million
# (half a gigabyte in float32). Module 15 made every number *smaller* (int8 instead of
# float32). This module makes *fewer* numbers, in three ways:
#
# 1. **Pruning**: set the weights that matter least to zero, and keep them zero. Either
#    single weights anywhere (*unstructured*: the smallest magnitudes) or whole rows,
#    channels and attention heads (*structured*: the pieces whose removal makes the dense
#    layer genuinely smaller).
# 2. **Low rank**: replace one big matrix `W (out, in)` by two thin ones, `A (out, r) @ B (r,
#    in)`, chosen by the singular value decomposition so that nothing better of that size
#    exists.
# 3. **Distillation**: train a small *student* network to imitate a big *teacher*, using the
#    teacher's full output distribution, softened by a temperature, as its target.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `sparsity(x)`, `model_sparsity(model)` | the fraction of zeros, in a tensor and in a model's weights |
# | `prune_count(amount, n)` | how many of `n` entries an `amount` (a count or a fraction) prunes |
# | `magnitude_mask(weight, amount, mask)` | the mask that drops the smallest `|w|` |
# | `l1_unstructured(module, name, amount)` | prune one layer's weight by magnitude |
# | `global_unstructured(parameters, amount)` | prune many layers with *one* threshold |
# | `apply_masks(model)`, `mask_gradients(model)` | keep pruned weights at zero while training goes on |
# | `channel_norms(weight, n, dim)`, `ln_structured(module, name, amount, n, dim)` | prune whole rows / channels |
# | `head_importance(mha)`, `prune_heads(mha, heads)` | prune attention heads of module 12's `MultiheadAttention` |
# | `low_rank_factors(weight, rank)`, `rank_for_energy(weight, energy)`, `factorize_linear(layer, rank)` | truncated SVD |
# | `soft_target_loss(...)`, `distillation_loss(...)` | the knowledge-distillation loss |
#
# The pruning functions are named after `torch.nn.utils.prune` and behave like it (the
# checkpoint compares masks with it), the low-rank ones are checked against
# `torch.linalg.svd`, and the distillation loss against `torch.nn.functional.kl_div`.

# %%
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

import tinytorch.autograd  # noqa: F401  (the losses below must be differentiable)
from tinytorch.activations import LogSoftmax, Softmax
from tinytorch.attention import MultiheadAttention
from tinytorch.layers import Linear, Module, Sequential
from tinytorch.losses import CrossEntropyLoss, xlogy
from tinytorch.tensor import Tensor


def _array(x: Any) -> np.ndarray:
    """The numpy array behind a Tensor, or `x` itself as an array."""
    return np.asarray(x.data if isinstance(x, Tensor) else x)


# %% [markdown]
# ## 1. Sparsity: counting zeros
#
# The **sparsity** of a tensor is the fraction of its entries that are exactly zero: 0.0 for
# a freshly initialised layer, 0.8 after pruning four weights in five. "Exactly" matters: a
# weight of `1e-30` is tiny but it is not pruned, it still takes a multiplication, and a
# sparse storage format still has to store it. (`-0.0` *is* zero: `-0.0 == 0` is True.)
#
# For a model we report the sparsity of its **weights**: every parameter whose name ends with
# `weight` (`0.weight`, `q_proj.weight`, ...), all counted together, so a big layer weighs
# more than a small one. Biases are left out: they are a tiny fraction of the numbers (266
# of the 203,530 parameters of the MNIST MLP), and they are rarely pruned.
# An empty tensor, or a model without weights, has sparsity 0.0.

# %% nbgrader={"grade": false, "grade_id": "sparsity", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sparsity(x: Any) -> float:
    """The fraction of entries of x (a Tensor or an array) that are exactly 0, as a float in [0, 1]."""
    # YOUR CODE HERE
    raise NotImplementedError()


def model_sparsity(model: Module) -> float:
    """The fraction of zeros over all the parameters of `model` whose name ends with 'weight'."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 2. Magnitude pruning: the smallest weights matter least
#
# An output of a `Linear` layer is `y_i = sum_j W_ij x_j + b_i`. Setting one weight `W_ij` to
# zero changes `y_i` by exactly `-W_ij x_j`. If the inputs are of similar size (normalised
# data, or the activations of a well-initialised network), the weights whose removal changes
# the outputs least are the ones of smallest **magnitude** `|W_ij|`. That is the whole of
# *magnitude pruning*: rank the weights by `|w|`, zero the smallest fraction. It is crude,
# and it works astonishingly well: Han et al. (2015) removed 89% of AlexNet's weights and,
# after some retraining, lost no accuracy.
#
# **The mask.** Pruning produces a boolean **mask** of the weight's shape: `True` where the
# weight is kept, `False` where it is pruned. Keeping the mask (not just the zeros) matters,
# because training will want to change those zeros again (section 3).
#
# **How many: a count or a fraction.** `torch.nn.utils.prune` takes `amount` either as an
# **int**, the number of entries to prune, or as a **float** in `[0, 1]`, the fraction to
# prune, rounded to the nearest whole entry (Python's `round`). So `amount=1` prunes *one*
# weight and `amount=1.0` prunes *all* of them: a classic surprise. An int below 0 or above
# `n`, or a float outside `[0, 1]`, is a `ValueError`. `prune_count(amount, n)` is that rule.
#
# **Exactly k, and ties.** To prune `k` entries, sort the magnitudes and drop the first `k`
# (`np.argsort`). A threshold (`|w| <= t`) looks simpler but prunes *every* weight tied with
# the k-th, so more than `k` when magnitudes repeat (a quantized model is full of ties).
# PyTorch picks exactly `k` too (`torch.topk`); *which* of several tied weights goes is
# arbitrary, and the checkpoint never asks.
#
# **Pruning again.** Pruning is often done in rounds: prune 20%, retrain, prune 20% of what
# is left, retrain... So `magnitude_mask` takes the mask of the previous rounds, and a new
# round chooses only among the entries still kept, with `amount` counted against *them*:
# pruning 50% twice leaves 25%, as in PyTorch. (The pruned entries are zero, the smallest
# magnitude of all, so without that rule a second round would just "prune" the zeros again.)
# A convenient way: give the already-pruned entries the score `+inf`, so that they are never
# among the `k` smallest.

# %% nbgrader={"grade": false, "grade_id": "magnitude", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prune_count(amount: float | int, n: int) -> int:
    """How many of n entries to prune: an int amount is a count (0..n), a float a fraction (0.0..1.0)
    of n, rounded with round(); anything out of range is a ValueError."""
    # YOUR CODE HERE
    raise NotImplementedError()


def magnitude_mask(weight: Any, amount: float | int, mask: Any = None) -> np.ndarray:
    """A boolean array of weight's shape: False at the prune_count(amount, kept) entries of smallest |w|
    among those still True in `mask` (all entries if mask is None), False wherever mask is False,
    True everywhere else."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Pruning a layer
#
# `l1_unstructured(module, name="weight", amount)` prunes one parameter of one module (the
# "L1" is the magnitude `|w|`, "unstructured" means any entry may go):
#
# 1. take the parameter `getattr(module, name)` and the module's previous mask for it, if any;
# 2. compute the new mask with `magnitude_mask`;
# 3. store it on the module as the attribute `<name>_mask` (`layer.weight_mask`), a boolean
#    numpy array: a plain array is not a `Tensor` with `requires_grad`, so module 03's
#    registry does not mistake it for a parameter;
# 4. zero the pruned entries **in place**, in the parameter's own `.data`. Not a new Tensor:
#    an optimizer (module 06) holds references to the model's parameter Tensors, and would
#    go on updating the old ones.
#
# It returns the module, as PyTorch's does. PyTorch stores the mask the same way (a buffer
# named `weight_mask`), but keeps the original numbers as a parameter `weight_orig` and
# recomputes `weight = weight_orig * weight_mask` before every forward pass; our weights
# simply are the pruned numbers.

# %% nbgrader={"grade": false, "grade_id": "l1-unstructured", "locked": false, "schema_version": 3, "solution": true, "task": false}
def l1_unstructured(module: Module, name: str = "weight", amount: float | int = 0.5) -> Module:
    """Prune the entries of smallest |w| of the parameter `name` of `module` (among those not yet
    pruned); store the mask as `<name>_mask` and zero the pruned entries in place; return module."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: prune one layer

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    layer = Linear(6, 4)
    print("before:", f"sparsity {sparsity(layer.weight):.2f}")
    l1_unstructured(layer, "weight", amount=0.5)
    print("after 50%:", f"sparsity {sparsity(layer.weight):.2f}\n", layer.weight_mask.astype(int))
    l1_unstructured(layer, "weight", amount=0.5)
    print("after 50% of the rest:", f"sparsity {sparsity(layer.weight):.2f}")
    print("amount=1 prunes", prune_count(1, 24), "entry; amount=1.0 prunes", prune_count(1.0, 24))

# %% [markdown]
# ## 3. Masks that stay applied while training goes on
#
# Pruning a trained network costs some accuracy; a little more training (**fine-tuning**)
# wins most of it back, because the remaining weights adapt to the missing ones. But the
# gradient of a pruned weight is *not* zero. For `y = x @ W.T`, module 05 computes
#
# `dL/dW_ij = sum over the batch of (dL/dy_i) x_j`,
#
# which has nothing to do with whether `W_ij` is zero. One optimizer step later every pruned
# weight is alive again, and the sparsity you paid accuracy for is gone. Two remedies:
#
# - `mask_gradients(model)`, after `loss.backward()` and before `optimizer.step()`: multiply
#   each pruned parameter's gradient by its mask. Plain SGD then leaves the zeros alone. It
#   is not enough on its own for optimizers with memory: momentum and Adam (module 06) keep a
#   running average of *past* gradients, from before the pruning, and keep moving the weight
#   with it.
# - `apply_masks(model)`, after every `optimizer.step()`: multiply each pruned parameter by
#   its mask again. Whatever the optimizer did, the pruned weights are zero when the next
#   forward pass starts. This one always works, and it is what the fine-tuning loop of the
#   2018 milestone calls.
#
# (The kept weights follow exactly the trajectory they would under PyTorch's
# `weight_orig * weight_mask`: the checkpoint trains both and compares.)
#
# Both walk every module inside the model and every mask pruning attached to it; the helper
# `pruning_masks(model)` (given) lists them as `(parameter, mask)` pairs. A parameter whose
# `.grad` is None has nothing to mask.

# %%
def pruning_masks(model: Module) -> list[tuple[Tensor, np.ndarray]]:
    """(parameter, mask) for every `<name>_mask` that pruning attached to a module inside `model`."""
    found = []
    for module in model.modules():
        for attribute, mask in vars(module).items():
            if attribute.endswith("_mask") and isinstance(mask, np.ndarray):
                parameter = getattr(module, attribute[: -len("_mask")], None)
                if isinstance(parameter, Tensor):
                    found.append((parameter, mask))
    return found


# %% nbgrader={"grade": false, "grade_id": "apply-masks", "locked": false, "schema_version": 3, "solution": true, "task": false}
def apply_masks(model: Module) -> None:
    """Zero the pruned entries of every pruned parameter inside `model` again, in place."""
    # YOUR CODE HERE
    raise NotImplementedError()


def mask_gradients(model: Module) -> None:
    """Zero the gradient of every pruned entry inside `model`, in place (parameters without .grad are skipped)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## 4. Global pruning: one threshold for the whole model
#
# Pruning every layer by the same fraction treats them as equally redundant, and they are
# not. The MNIST MLP `784 -> 256 -> 10` has 200,704 weights in its first layer (an image has
# many pixels that never matter, like the blank border) and 2,560 in its last, where every
# weight connects a feature to a digit. **Global** pruning ranks *all* the weights of the
# model together and drops the smallest fraction of the whole, so each layer loses as much as
# its magnitudes say it can spare. In the MNIST MLP the big first layer has the smaller weights
# (module 03's Kaiming scale is `sqrt(2 / fan_in)`, and it has 784 inputs) and gives up most
# of them, while the small last layer keeps most of its own: 80% of the first layer's pixel
# weights is cheap to lose, 80% of the last layer's 2,560 is not.
#
# **The catch: one yardstick for layers of different scales.** The same rule works against
# you when a *small* layer has the many inputs: in a `4 -> 64 -> 3` network the last layer
# has the smaller weights, and at 80% overall it loses over 99% of them; the outputs are
# then almost cut off from the rest of the network and fine-tuning cannot bring it back. So
# after a global pruning, look at each layer's `sparsity`: a layer near 100% needs a lower
# amount, or per-layer pruning for that layer.
#
# `global_unstructured(parameters, amount)` takes a list of `(module, name)` pairs, as
# `torch.nn.utils.prune.global_unstructured` does:
#
# 1. flatten every parameter (`reshape(-1)`) and its previous mask (all True if none), and
#    concatenate them into one long vector each;
# 2. one `magnitude_mask` over the long vector (the previous masks respected, as before);
# 3. cut the long mask back into pieces of each parameter's size and shape, store each as
#    `<name>_mask` on its module and zero the pruned entries in place.
#
# `prunable_parameters(model)` (given) lists the `(module, "weight")` pair of every layer
# with a weight matrix (2 axes or more), so `global_unstructured(prunable_parameters(model),
# 0.8)` prunes a whole model to 80% sparsity of its weights.

# %%
def prunable_parameters(model: Module) -> list[tuple[Module, str]]:
    """(module, "weight") for every module inside `model` whose weight has at least 2 axes."""
    return [(module, "weight") for module in model.modules()
            if isinstance(getattr(module, "weight", None), Tensor) and module.weight.ndim >= 2]


# %% nbgrader={"grade": false, "grade_id": "global-unstructured", "locked": false, "schema_version": 3, "solution": true, "task": false}
def global_unstructured(parameters: Iterable[tuple[Module, str]], amount: float | int) -> None:
    """Prune the entries of smallest |w| among all the given (module, name) parameters taken together
    (previous masks respected); store each mask as `<name>_mask` and zero the pruned entries in place."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: global pruning and fine-tuning with masks
#
# A small MLP, pruned globally to 80%: the layers end up with different sparsities. Then
# plain SGD steps with `apply_masks` after each: the sparsity stays at 80%. Without it, a
# single step brings every weight back.

# %%
if __name__ == "__main__":
    from tinytorch.activations import ReLU
    from tinytorch.losses import MSELoss
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    model = Sequential(Linear(64, 32), ReLU(), Linear(32, 4))
    model[2].weight.data *= 3.0      # a layer of larger weights keeps more of them
    global_unstructured(prunable_parameters(model), amount=0.8)
    print("sparsity per layer:", [round(sparsity(m.weight), 3) for m, _ in prunable_parameters(model)],
          "| model:", round(model_sparsity(model), 3))
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 64)).astype(np.float32))
    y = Tensor(rng.standard_normal((16, 4)).astype(np.float32))
    for step in range(3):
        model.zero_grad()
        MSELoss()(model(x), y).backward()
        for p in model.parameters():
            p.data -= 0.01 * p.grad.data
        print(f"step {step}: sparsity after the update {model_sparsity(model):.3f}", end="")
        apply_masks(model)
        print(f", after apply_masks {model_sparsity(model):.3f}")

# %% [markdown]
# ## 5. Structured pruning: whole rows and channels
#
# Unstructured sparsity has a catch: **a zero in a dense matrix costs as much as any other
# number**. `x @ W.T` multiplies every entry, zero or not, at full speed; 80% zeros make it
# no faster and the stored matrix no smaller. To gain anything you need a sparse format
# (which stores an index beside every kept number: the systems insight below measures when
# that pays) or sparse hardware.
#
# **Structured** pruning removes whole pieces instead:
#
# - a **row** of a `Linear` weight `(out, in)` (`dim=0`) is one output neuron: prune it and
#   the layer has one output fewer, and the *next* layer one input column fewer;
# - a **column** (`dim=1`) is one input feature, read by every neuron;
# - an **output channel** of a `Conv2d` weight `(C_out, C_in, kH, kW)` (`dim=0`) is one
#   filter: a whole feature map disappears.
#
# Remove the zeroed rows and what is left is a *smaller dense* matrix: plain matmul, fewer
# numbers, less time. (A pruned neuron still outputs its bias; PyTorch's `ln_structured`
# also leaves the bias alone, and to remove the neuron for good you fold that constant into
# the next layer's bias.)
#
# Which channels? The ones with the smallest **L_n norm** of all their weights:
# `channel_norms(weight, n, dim)` gives one number per index along `dim`, the norm of
# everything else (`n=1`: sum of `|w|`; `n=2`: the Euclidean length; `n=np.inf`: the largest
# `|w|`). A neat way: `np.moveaxis(w, dim, 0)`, reshape to `(channels, -1)`, and
# `np.linalg.norm(..., ord=n, axis=1)`.
#
# `ln_structured(module, name, amount, n=2, dim=0)` then prunes `prune_count(amount, alive)`
# of the channels still alive (a channel is alive while any of its entries is kept), those of
# smallest norm: `magnitude_mask` over the norms, with the alive channels as its mask, does
# exactly that. The channel mask, broadcast to the weight's shape (a 1 in every axis but
# `dim`), is combined with the previous mask by `&`, stored as `<name>_mask` and applied,
# as in `l1_unstructured`. A negative `dim` counts from the end, as everywhere in numpy.

# %% nbgrader={"grade": false, "grade_id": "structured", "locked": false, "schema_version": 3, "solution": true, "task": false}
def channel_norms(weight: Any, n: float = 2, dim: int = 0) -> np.ndarray:
    """One L_n norm per index along `dim`, over all the other axes: shape (weight.shape[dim],)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def ln_structured(module: Module, name: str = "weight", amount: float | int = 0.5, n: float = 2,
                  dim: int = 0) -> Module:
    """Prune whole slices along `dim` of the parameter `name`: the prune_count(amount, alive) alive
    channels of smallest L_n norm; mask stored as `<name>_mask` (combined with any previous one),
    pruned entries zeroed in place; return module."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: prune half the filters of a convolution
#
# A `Conv2d` (module 09) with 6 filters: after `ln_structured(..., dim=0)` three of its
# output feature maps are constant (just the bias), and could be deleted together with the
# matching input channels of the next layer.

# %%
if __name__ == "__main__":
    from tinytorch.spatial import Conv2d
    from tinytorch.tensor import manual_seed

    manual_seed(0)
    conv = Conv2d(3, 6, kernel_size=3)
    print("filter norms:", channel_norms(conv.weight, 2, 0).round(3))
    ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
    print("filters kept:", conv.weight_mask.any(axis=(1, 2, 3)).astype(int), "| sparsity", sparsity(conv.weight))

# %% [markdown]
# ## 6. Pruning attention heads
#
# Module 12's `MultiheadAttention` runs `H` heads side by side, each of `D = E / H`
# dimensions, and `out_proj` mixes their concatenated outputs. Write the concatenation as
# blocks and the mixing falls apart into one term per head:
#
# `out = sum_h head_h @ W_o[:, h*D:(h+1)*D].T + b_o`
#
# Head `h` reaches the output **only** through the columns `h*D .. (h+1)*D - 1` of
# `out_proj.weight`. Zero those columns and the head is gone, exactly, whatever it attends
# to. Michel, Levy and Neubig (2019, "Are sixteen heads really better than one?") found that
# most heads of a trained transformer can be removed this way at test time with little loss;
# a few heads matter a lot.
#
# **Which heads?** The cheapest importance is a magnitude, as in section 2, but of the right
# matrix. A head's output is a weighted average (the attention weights sum to 1) of the
# vectors `x @ W_v[h*D:(h+1)*D, :].T`, and `out_proj` then multiplies it by `W_o[:,
# h*D:(h+1)*D].T`. Leaving the biases aside, everything head `h` can add to the output passes
# through the `E x E` matrix
#
# `W_o[:, h*D:(h+1)*D] @ W_v[h*D:(h+1)*D, :]`
#
# (the head's "output-value circuit"), so `head_importance(mha)` returns its Frobenius norm
# (`np.linalg.norm` of the matrix), one number per head. A pruned head scores 0. (Better,
# and dearer: measure how much the loss grows when each head is removed, on real data.)
#
# `prune_heads(mha, heads)` zeros the `out_proj.weight` columns of every head in `heads`,
# and records it as a mask `out_proj.weight_mask` (combined with any mask already there), so
# that `apply_masks` keeps those heads dead while the model is fine-tuned. A head number
# outside `0 .. H - 1` is a `ValueError`. It returns `mha`.

# %% nbgrader={"grade": false, "grade_id": "heads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def head_importance(mha: MultiheadAttention) -> np.ndarray:
    """(num_heads,): the Frobenius norm of W_o[:, h*D:(h+1)*D] @ W_v[h*D:(h+1)*D, :] for each head h."""
    # YOUR CODE HERE
    raise NotImplementedError()


def prune_heads(mha: MultiheadAttention, heads: Iterable[int]) -> MultiheadAttention:
    """Remove the given heads: zero their columns of out_proj.weight and record them in
    out_proj.weight_mask (with any earlier mask); ValueError for a head outside 0..H-1; return mha."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: remove the least important heads

# %%
if __name__ == "__main__":
    from tinytorch.tensor import manual_seed

    manual_seed(1)
    mha = MultiheadAttention(embed_dim=16, num_heads=4)
    mha.out_proj.weight.data[:, 8:12] *= 0.1        # make head 2 a weak one
    scores = head_importance(mha)
    weakest = [int(h) for h in np.argsort(scores)[:2]]
    print("importance:", scores.round(3), "-> pruning heads", weakest)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 5, 16)).astype(np.float32))
    before = mha(x).data
    prune_heads(mha, weakest)
    print("importance after:", head_importance(mha).round(3),
          "| output change:", float(np.abs(mha(x).data - before).max()))

# %% [markdown]
# ## 7. Low rank: two thin matrices instead of one big one
#
# Every matrix `W (out, in)` has a **singular value decomposition** `W = U diag(s) V^T`:
# `U (out, k)` and `V (in, k)` have orthonormal columns, `k = min(out, in)`, and the singular
# values `s_1 >= s_2 >= ... >= 0` say how much each direction matters. Keep only the first `r`:
#
# `W ~ U[:, :r] diag(s[:r]) V[:, :r]^T`,
#
# a matrix of **rank r**. The Eckart-Young-Mirsky theorem says no rank-r matrix is closer to
# `W`, and it tells you how close: the Frobenius norm of the error is the root of the sum of
# the *discarded* squared singular values,
#
# `||W - W_r||_F = sqrt(s_{r+1}^2 + ... + s_k^2)`.
#
# So the squared singular values are how a matrix's "energy" (`||W||_F^2 = sum s_i^2`) is
# shared among directions, and `rank_for_energy(weight, energy)` is the smallest `r` whose
# first `r` squared singular values hold at least the fraction `energy` of the total
# (`np.linalg.svd(w, compute_uv=False)` gives `s`, `np.cumsum` the running sums). A zero
# matrix needs rank 0. Beware a float running sum that ends at 0.9999999 and never reaches 1.0:
# the answer is never more than `k`.
#
# **Why bother.** `low_rank_factors(weight, rank)` returns the two factors `A (out, r)` and
# `B (r, in)` with `A @ B = W_r` (split `diag(s)` between them however you like: `A = U_r
# sqrt(s_r)`, `B = sqrt(s_r) V_r^T` keeps both of similar size, which training likes). A
# `Linear(in, out)` becomes two: `x -> x @ B.T -> @ A.T + b`, `factorize_linear(layer,
# rank)`, a `Sequential(Linear(in, r, bias=False), Linear(r, out))` holding `B`, then `A`
# and the old bias. It has `r (in + out) + out` parameters instead of `in * out + out`, and
# costs as many multiplications per input: a saving whenever `r < in * out / (in + out)`,
# under half the size for a square matrix. A rank outside `1 .. min(out, in)` is a
# `ValueError`; keep the layer's dtype.
#
# Does it keep accuracy? A random matrix has a flat spectrum (every direction matters about
# as much), and truncating it destroys it. Trained weights usually have a fast-decaying one,
# and a model fine-tuned after factorising recovers more. LoRA (2021) turns the idea around:
# it *fine-tunes* a big model by learning only a low-rank update `W + A @ B`.

# %% nbgrader={"grade": false, "grade_id": "low-rank", "locked": false, "schema_version": 3, "solution": true, "task": false}
def low_rank_factors(weight: Any, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(A (out, rank), B (rank, in)) in weight's dtype, with A @ B the best rank-`rank` approximation of
    the 2-D weight (truncated SVD); ValueError unless 1 <= rank <= min(out, in)."""
    # YOUR CODE HERE
    raise NotImplementedError()


def rank_for_energy(weight: Any, energy: float) -> int:
    """The smallest r whose r largest squared singular values sum to at least `energy` (0 < energy <= 1)
    of the sum of them all; 0 for a zero matrix."""
    # YOUR CODE HERE
    raise NotImplementedError()


def factorize_linear(layer: Linear, rank: int) -> Sequential:
    """Sequential(Linear(in, rank, bias=False) holding B, Linear(rank, out) holding A and layer's bias),
    computing x @ (A @ B).T + bias, with A, B = low_rank_factors(layer.weight, rank)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: how much of a matrix a few directions hold
#
# A matrix built with a decaying spectrum (like trained weights) against a random one (a flat
# spectrum): the error of the factorisation is exactly the discarded singular values.

# %%
if __name__ == "__main__":
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    v, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    decaying = (u[:, :32] * (0.8 ** np.arange(32))) @ v.T
    flat = rng.standard_normal((64, 32))
    for label, w in (("decaying", decaying), ("random", flat)):
        s = np.linalg.svd(w, compute_uv=False)
        for r in (4, 8, 16):
            a, b = low_rank_factors(w, r)
            print(f"{label:8s} rank {r:2d}: error {np.linalg.norm(w - a @ b):.4f} "
                  f"= sqrt(sum of discarded s^2) {np.sqrt(np.sum(s[r:] ** 2)):.4f}, "
                  f"{r * (64 + 32)} numbers instead of {64 * 32}")
        print(f"{label:8s} needs rank {rank_for_energy(w, 0.95)} for 95% of its energy")

# %% [markdown]
# ## 8. Distillation: a small student learns from a big teacher
#
# A trained classifier knows more than its top answer. Shown a handwritten 2, it might say
# "2" with probability 0.9, "7" with 0.09 and "3" with 0.01: this 2 looks a bit like a 7,
# and the network has learned which digits resemble which. A one-hot label throws that away.
# Hinton, Vinyals and Dean (2015) called it **dark knowledge**, and showed how to pass it on:
# train a small **student** to match the **teacher's** output distribution, not just the
# labels. The student ends up much better than the same small network trained on labels
# alone.
#
# **Temperature.** A confident teacher puts 0.9999 on one class, and the interesting
# probabilities are too small to teach anything. So both sets of logits are divided by a
# temperature `T > 1` first (module 02's `Softmax(temperature=T)`): `p = softmax(teacher /
# T)`, the **soft targets**, and `q = softmax(student / T)`. The soft loss is the KL
# divergence (module 04) from the teacher's distribution to the student's, averaged over the
# `N` examples of the batch:
#
# `soft = T^2 * (1/N) sum_n KL(p_n || q_n),   KL(p || q) = sum_c p_c (log p_c - log q_c)`.
#
# **Why `T^2`.** The gradient of `KL(p || q)` with respect to a student logit `z_c` is
# `(q_c - p_c) / T` (softmax's gradient, divided by `T` because the logits are). At high
# temperature the distributions are nearly uniform and `q_c - p_c ~ (z_c - v_c) / (C T)` for
# teacher logits `v` (with zero-mean logits), so the soft gradient shrinks like `1 / T^2`.
# Multiplying by `T^2` puts it back on the scale of an ordinary loss, so that changing `T`
# changes *what* the student learns, not how strongly.
#
# **The total** mixes the soft loss with the usual cross-entropy on the true labels (at `T
# = 1`, on the raw student logits):
#
# `distillation_loss = alpha * soft + (1 - alpha) * CrossEntropyLoss()(student_logits, target)`.
#
# Three details:
#
# - compute `log q` with module 02's `LogSoftmax(temperature=T)`, never as `log(softmax)`:
#   at low temperature a probability underflows to 0 and its log to `-inf`. The teacher's
#   `p log p` may meet `p = 0`: module 04's `xlogy` takes `0 log 0 = 0`;
# - "averaged over the batch" means the sum over classes, then the mean over examples
#   (PyTorch's `kl_div(..., reduction="batchmean")`). Averaging over all `N * C` numbers
#   (`reduction="mean"`) divides by `C` too: a classic bug, which PyTorch warns about;
# - the teacher is a fixed target: `.detach()` its logits, so no gradient flows into it.
#
# Everything is written with module 02's activations, module 04's functions and Tensor
# operations, so module 05 differentiates it. A temperature `<= 0` and an `alpha` outside
# `[0, 1]` are `ValueError`s.

# %% nbgrader={"grade": false, "grade_id": "distillation", "locked": false, "schema_version": 3, "solution": true, "task": false}
def soft_target_loss(student_logits: Tensor, teacher_logits: Any, temperature: float = 4.0) -> Tensor:
    """T^2 times the mean over the rows of KL(softmax(teacher / T) || softmax(student / T)); 0-d,
    differentiable in student_logits, with no gradient into the teacher."""
    # YOUR CODE HERE
    raise NotImplementedError()


def distillation_loss(student_logits: Tensor, teacher_logits: Any, target: Any, temperature: float = 4.0,
                      alpha: float = 0.5) -> Tensor:
    """alpha * soft_target_loss(student, teacher, T) + (1 - alpha) * cross-entropy(student, target)."""
    # YOUR CODE HERE
    raise NotImplementedError()


# %% [markdown]
# ## Try it: what the temperature reveals

# %%
if __name__ == "__main__":
    teacher = Tensor(np.array([[9.0, 4.5, 1.0, 0.5]]))
    for t in (1.0, 4.0, 10.0):
        print(f"T = {t:4.1f}: soft targets {Softmax(temperature=t)(teacher).data.round(3)}")
    student = Tensor(np.array([[3.0, 0.0, 0.0, 0.0]]), requires_grad=True)
    loss = distillation_loss(student, teacher, Tensor(np.array([0])), temperature=4.0, alpha=0.7)
    loss.backward()
    print("loss", round(loss.item(), 4), "| gradient on the student logits", student.grad.data.round(4))

# %% [markdown]
# ## Systems insight: zeros are not free, smaller matrices are
#
# Run the cell below. It multiplies a batch by a `1024 x 1024` float32 weight three ways:
#
# - **dense**, as trained;
# - **90% unstructured sparsity**: the same matrix with nine weights in ten set to zero.
#   numpy's matmul (BLAS) does not look at the values, so the time is the same;
# - **90% structured**: the rows of the pruned neurons removed, a dense `102 x 1024` matrix:
#   about ten times faster, and ten times smaller.
#
# Storing the unstructured one sparsely does not help much either. The usual format, CSR,
# keeps every nonzero's value (4 bytes) *and* its column index (4 bytes, int32), plus one
# offset per row: about `8 * nnz` bytes against `4 * n` dense, so it only saves memory
# above **50% sparsity**, and a CPU's sparse matmul typically needs well over 90% to beat
# the dense one in time. That is why unstructured pruning shines for *storage* with
# compression on disk and on hardware built for sparsity (NVIDIA's 2:4 pattern), while
# structured pruning and low rank give speed on any machine. The cell also counts a rank-128
# factorisation of the same layer: `128 * 2048` numbers, a quarter of the dense `1024^2`,
# and a quarter of the multiplications.

# %%
if __name__ == "__main__":
    import time

    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 1024)).astype(np.float32)
    dense = rng.standard_normal((1024, 1024)).astype(np.float32)
    pruned = dense * magnitude_mask(dense, 0.9)
    rows = np.sort(np.argsort(channel_norms(dense, 2, 0))[-102:])
    shrunk = dense[rows]

    def best_of(multiply, repeats: int = 20) -> float:
        multiply()  # warm-up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            multiply()
            runs.append(time.perf_counter() - start)
        return min(runs)

    for label, w in (("dense", dense), ("90% zeros", pruned), ("90% rows removed", shrunk)):
        seconds = best_of(lambda: x @ w.T)
        print(f"{label:17s} {str(w.shape):13s} sparsity {sparsity(w):.2f}  {seconds * 1e3:7.3f} ms  "
              f"{w.nbytes / 2**20:5.2f} MiB")
    nnz = np.count_nonzero(pruned)
    print(f"CSR of the 90% matrix: {(8 * nnz + 4 * 1025) / 2**20:.2f} MiB")
    a, b = low_rank_factors(dense, 128)
    print(f"rank 128: {a.size + b.size:,d} numbers instead of {dense.size:,d}, "
          f"{best_of(lambda: (x @ b.T) @ a.T) * 1e3:.3f} ms for (x @ B.T) @ A.T")

# %% [markdown]
# ## Checkpoint
#
# `tito check 16` runs `tests/checkpoints/test_16_compression.py`. It checks `sparsity` and
# `model_sparsity` on tensors and models with known zeros; `prune_count`'s count-or-fraction
# rule and its errors; compares `magnitude_mask`, `l1_unstructured` (one round and several),
# `global_unstructured` and `ln_structured` (rows, columns, convolution filters, L1/L2/max
# norms) with the masks of `torch.nn.utils.prune` in float64, and checks that the pruned
# parameters are zeroed in place; trains a pruned model with `apply_masks` after every step
# and compares the weights with PyTorch's `weight_orig * weight_mask` trained the same way,
# and `mask_gradients` with PyTorch's `weight_orig.grad`; compares `head_importance` with the
# norms computed by torch, and a `MultiheadAttention` after `prune_heads` (values and
# gradients) with torch's attention with those heads removed; compares `low_rank_factors` with
# `torch.linalg.svd`'s truncation, checks that its error is the root of the discarded squared
# singular values, `rank_for_energy` on matrices of known spectrum and `factorize_linear`'s
# outputs, parameter count and gradients; and compares `soft_target_loss` and
# `distillation_loss` (values and gradients, several temperatures and weights) with
# `torch.nn.functional.kl_div` and `cross_entropy`, and their errors.
