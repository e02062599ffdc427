"""Checkpoint 16: compression (pruning, low rank, distillation).

Oracles: torch.nn.utils.prune in float64 (the masks of l1_unstructured, global_unstructured
and ln_structured, one round and several, and the weights and weight_orig.grad of a pruned
model trained by SGD); torch.linalg.vector_norm / matrix_norm for channel norms and head
importance; torch's scaled_dot_product_attention with the pruned heads' outputs removed;
torch.linalg.svd and svdvals (the best rank-r matrix, and its Frobenius error, the root of the
sum of the discarded squared singular values); torch.nn.functional.kl_div (batchmean) and
cross_entropy for the distillation loss and its gradients; closed forms for sparsity, counts
and spectra built by hand.

Every weight and input comes from this file's own seeded generators: layers are built with the
test's numbers in place of their random initial ones. Magnitudes are drawn from continuous
distributions, so no two are tied (which tied weight a pruning drops is never asked).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.nn.utils import prune

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import show, torch64
from tinytorch.activations import ReLU
from tinytorch.attention import MultiheadAttention
from tinytorch.compression import (
    apply_masks,
    channel_norms,
    distillation_loss,
    factorize_linear,
    global_unstructured,
    head_importance,
    l1_unstructured,
    ln_structured,
    low_rank_factors,
    magnitude_mask,
    mask_gradients,
    model_sparsity,
    prunable_parameters,
    prune_count,
    prune_heads,
    rank_for_energy,
    soft_target_loss,
    sparsity,
)
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import MSELoss
from tinytorch.spatial import Conv2d
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12
F32_RTOL, F32_ATOL = 1e-4, 1e-5

MASK_HINT = ("rank the entries still kept by |w| (np.argsort) and drop exactly prune_count(amount, kept) of the "
             "smallest; entries already pruned stay pruned and are never counted again")
STORE_HINT = ("store the mask on the module as `<name>_mask` (layer.weight_mask) and zero the pruned entries in "
              "the parameter's own .data, in place: optimizers hold that very Tensor")


# -- the test's own layers ------------------------------------------------------------------------


def linear_with(weight, bias=None) -> Linear:
    """A tinytorch Linear holding the test's weight (out, in) and bias, in their dtype."""
    weight = np.asarray(weight)
    layer = Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.weight.data = weight.copy()
    if bias is not None:
        layer.bias.data = np.asarray(bias).copy()
    return layer


def mha_with(params, num_heads) -> MultiheadAttention:
    """A tinytorch MultiheadAttention holding the test's projections (float64)."""
    mha = MultiheadAttention(params["q_proj.weight"].shape[0], num_heads)
    for name, value in params.items():
        layer_name, attribute = name.split(".")
        getattr(getattr(mha, layer_name), attribute).data = value.copy()
    return mha


def mha_params(embed_dim, seed):
    rng = np.random.default_rng(seed)
    params = {}
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        params[f"{proj}.weight"] = 0.5 * rng.standard_normal((embed_dim, embed_dim))
        params[f"{proj}.bias"] = 0.5 * rng.standard_normal(embed_dim)
    return params


# -- the oracles ----------------------------------------------------------------------------------


def torch_holder(weight):
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(torch64(weight))
    return holder


def torch_pruned(weight, *rounds, name="weight"):
    """(mask as bool, pruned weight) after torch.nn.utils.prune `rounds` on a module holding `weight`.

    A round is ("l1", amount), ("ln", amount, n, dim) or ("mask", boolean array)."""
    holder = torch.nn.Module()
    setattr(holder, name, torch.nn.Parameter(torch64(weight)))
    for kind, *args in rounds:
        if kind == "l1":
            prune.l1_unstructured(holder, name, amount=args[0])
        elif kind == "ln":
            prune.ln_structured(holder, name, amount=args[0], n=args[1], dim=args[2])
        else:
            prune.custom_from_mask(holder, name, torch.tensor(np.asarray(args[0], dtype=bool)))
    mask = getattr(holder, f"{name}_mask").detach().numpy().astype(bool)
    return mask, (getattr(holder, f"{name}_orig") * getattr(holder, f"{name}_mask")).detach().numpy()


def torch_global_masks(weights, amount, previous=None):
    """The masks torch.nn.utils.prune.global_unstructured gives the weights taken together."""
    holders = [torch_holder(w) for w in weights]
    if previous is not None:
        for holder, mask in zip(holders, previous):
            prune.custom_from_mask(holder, "weight", torch.tensor(mask))
    prune.global_unstructured([(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=amount)
    return [h.weight_mask.detach().numpy().astype(bool) for h in holders]


def torch_kl_soft(s0, t0, temperature):
    """T^2 * kl_div(log_softmax(s / T), softmax(t / T), batchmean) and its gradient for s."""
    s = torch64(s0, requires_grad=True)
    loss = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(torch64(t0) / temperature, dim=-1),
                    reduction="batchmean") * temperature ** 2
    loss.backward()
    return loss.item(), s.grad.numpy()


def torch_distillation(s0, t0, labels, temperature, alpha):
    """alpha * soft + (1 - alpha) * cross_entropy, and its gradient for the student logits."""
    s = torch64(s0, requires_grad=True)
    soft = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(torch64(t0) / temperature, dim=-1),
                    reduction="batchmean") * temperature ** 2
    loss = alpha * soft + (1 - alpha) * F.cross_entropy(s, torch.tensor(labels))
    loss.backward()
    return loss.item(), s.grad.numpy()


def torch_attention_without_heads(params, x0, num_heads, pruned, upstream):
    """Multi-head attention (float64) whose pruned heads contribute nothing: output, x.grad, q_proj.weight.grad."""
    x = torch64(x0, requires_grad=True)
    weights = {name: torch64(value, requires_grad=True) for name, value in params.items()}
    b, t, e = x0.shape
    d = e // num_heads

    def heads(proj):
        y = x @ weights[f"{proj}.weight"].T + weights[f"{proj}.bias"]
        return y.reshape(b, t, num_heads, d).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads("q_proj"), heads("k_proj"), heads("v_proj"))
    alive = torch.ones(num_heads, dtype=torch.float64)
    alive[list(pruned)] = 0.0
    out = (out * alive.reshape(1, num_heads, 1, 1)).transpose(1, 2).reshape(b, t, e)
    y = out @ weights["out_proj.weight"].T + weights["out_proj.bias"]
    y.backward(torch64(upstream))
    return y.detach().numpy(), x.grad.numpy(), weights["q_proj.weight"].grad.numpy()


def torch_pruned_training(params, amount, x0, y0, steps, lr):
    """A torch MLP pruned globally, trained by SGD: the effective weights weight_orig * weight_mask."""
    first, second = torch.nn.Linear(5, 6).double(), torch.nn.Linear(6, 3).double()
    with torch.no_grad():
        for layer, prefix in ((first, "0"), (second, "2")):
            layer.weight.copy_(torch64(params[f"{prefix}.weight"]))
            layer.bias.copy_(torch64(params[f"{prefix}.bias"]))
    model = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    prune.global_unstructured([(first, "weight"), (second, "weight")], pruning_method=prune.L1Unstructured,
                              amount=amount)
    for _ in range(steps):   # plain SGD on weight_orig and bias (torch.optim costs seconds to import)
        model.zero_grad()
        F.mse_loss(model(torch64(x0)), torch64(y0)).backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= lr * parameter.grad
    return {"0.weight": (first.weight_orig * first.weight_mask).detach().numpy(),
            "2.weight": (second.weight_orig * second.weight_mask).detach().numpy(),
            "0.bias": first.bias.detach().numpy(), "2.bias": second.bias.detach().numpy()}


def orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q


def with_spectrum(singular_values, shape, seed):
    """A matrix of `shape` whose singular values are exactly `singular_values` (up to rounding)."""
    k = len(singular_values)
    u = orthogonal(shape[0], seed)[:, :k]
    v = orthogonal(shape[1], seed + 1)[:, :k]
    return (u * np.asarray(singular_values, dtype=np.float64)) @ v.T


# -- predicates, judged on the trusted side over the values your code produced --------------------


def factor_gradients_match(recorded, rtol, atol) -> bool:
    """(x, g, A, B, grad of B, grad of A) of y = x @ B.T @ A.T + b: the gradients equal g^T (x B^T) and A^T g^T x."""
    x, g, a, b, grad_b, grad_a = (None if v is None else np.asarray(v, dtype=np.float64) for v in recorded)
    if grad_a is None or grad_b is None or a.ndim != 2 or b.ndim != 2:
        return False
    want_a = g.T @ (x @ b.T)
    want_b = (g @ a).T @ x
    return (grad_a.shape == want_a.shape and grad_b.shape == want_b.shape
            and bool(np.allclose(grad_a, want_a, rtol=rtol, atol=atol))
            and bool(np.allclose(grad_b, want_b, rtol=rtol, atol=atol)))


# -- sparsity ---------------------------------------------------------------------------------------


def test_sparsity_counts_exact_zeros():
    """sparsity(x) is the fraction of entries exactly 0, for arrays and Tensors (-0.0 counts, 1e-30 does not)"""
    cases = [
        (np.array([0.0, 1.0, 0.0, 2.0]), 0.5),
        (np.array([[0.0, -0.0, 3.0], [1e-30, 0.0, 5.0]]), 0.5),
        (np.zeros((3, 4), dtype=np.float32), 1.0),
        (np.array([1.5, -2.0, 1e-30]), 0.0),
    ]
    for array, fraction in cases:
        expect_close(sparsity(array), fraction, rtol=0, atol=1e-15, call=f"sparsity({show(array)})",
                     hint="count the entries equal to 0 (np.count_nonzero(x == 0)) and divide by x.size; "
                          "a tiny number is not zero")
    t = Tensor(np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 7.0], [1.0, 0.0, 0.0]]))
    expect_close(sparsity(t), 6 / 9, rtol=1e-12, call="sparsity(Tensor 3x3 with six zeros)",
                 hint="a Tensor's numbers are in its .data")


def test_model_sparsity_counts_weights_only():
    """model_sparsity(model) counts the zeros of every weight together, biases left out"""
    w1 = np.arange(1.0, 13.0).reshape(3, 4)
    w1[0, :3] = 0.0
    w2 = np.arange(1.0, 7.0).reshape(2, 3)
    w2[:, 1] = 0.0
    model = Sequential(linear_with(w1, np.zeros(3)), ReLU(), linear_with(w2, np.zeros(2)))
    expect_close(model_sparsity(model), 5 / 18, rtol=1e-12,
                 call="model_sparsity(Sequential(Linear 4->3 with 3 zero weights, ReLU, Linear 3->2 with 2))",
                 hint="zeros of all the '*weight' parameters together (3 + 2) over all their entries (12 + 6); "
                      "the all-zero biases do not count")
    nested = Sequential(Sequential(linear_with(np.zeros((2, 2)), np.ones(2))), linear_with(np.ones((1, 2))))
    expect_close(model_sparsity(nested), 4 / 6, rtol=1e-12,
                 call="model_sparsity(Sequential(Sequential(Linear 2->2 all zero), Linear 2->1 no zeros))",
                 hint="named_parameters() reaches the nested layers; the big layer weighs more")


# -- prune_count and magnitude_mask -------------------------------------------------------------------


def test_prune_count_int_is_a_count_float_a_fraction():
    """prune_count: an int amount is a number of entries, a float a fraction rounded to the nearest"""
    for amount, n, count in ((3, 10, 3), (0.3, 10, 3), (0.27, 10, 3), (0.33, 10, 3), (1, 10, 1), (1.0, 10, 10),
                             (0, 7, 0), (0.0, 7, 0), (7, 7, 7), (0.8, 2176, 1741)):
        expect_equal(prune_count(amount, n), count, call=f"prune_count({amount!r}, {n})",
                     hint="an int is how many (amount=1 prunes one entry), a float in [0, 1] is the fraction "
                          "round(amount * n) (amount=1.0 prunes everything)")


def test_prune_count_rejects_bad_amounts():
    """prune_count raises ValueError for a negative amount, a fraction above 1, or a count above n"""
    for amount in (-1, 11, -0.1, 1.5):
        expect_raises(ValueError, lambda: prune_count(amount, 10), call=f"prune_count({amount!r}, 10)",
                      hint="an int must be between 0 and n, a float between 0.0 and 1.0")
    expect_equal(prune_count(10, 10), 10, call="prune_count(10, 10)", hint="all n entries is allowed")


@settings(max_examples=25)
@given(rows=st.integers(1, 5), cols=st.integers(1, 6), amount=st.floats(0.0, 1.0), seed=st.integers(0, 10_000))
def test_magnitude_mask_matches_torch(rows, cols, amount, seed):
    """magnitude_mask drops exactly the smallest |w|, like torch.nn.utils.prune.l1_unstructured"""
    assume(abs((amount * rows * cols) % 1.0 - 0.5) > 1e-6)  # no round-half case: any rounding convention agrees
    w = np.random.default_rng(seed).standard_normal((rows, cols))
    mask = magnitude_mask(w, amount)
    expect_equal(np.asarray(mask).dtype, np.dtype(bool), call=f"magnitude_mask(w {w.shape}, {amount!r}).dtype",
                 hint="a boolean mask: True where the weight is kept")
    expect_equal(np.asarray(mask), torch_pruned(w, ("l1", amount))[0],
                 call=f"magnitude_mask(w = {show(w)}, amount={amount!r})", hint=MASK_HINT)


def test_magnitude_mask_by_count_and_on_vectors():
    """An int amount prunes that many entries; a 1-D weight and a Tensor work too"""
    w = np.array([0.5, -3.0, 0.1, 2.0, -0.2, 1.0])
    expect_equal(np.asarray(magnitude_mask(w, 2)), np.array([True, True, False, True, False, True]),
                 call=f"magnitude_mask({show(w)}, amount=2)", hint="amount=2 prunes the two smallest |w|: 0.1 and -0.2")
    expect_equal(np.asarray(magnitude_mask(Tensor(w), 0.5)), torch_pruned(w, ("l1", 0.5))[0],
                 call=f"magnitude_mask(Tensor({show(w)}), amount=0.5)",
                 hint="a negative weight is large when |w| is: -3.0 is kept before 2.0")
    expect_equal(np.asarray(magnitude_mask(w, 0)), np.ones(6, dtype=bool), call=f"magnitude_mask({show(w)}, 0)",
                 hint="amount 0 prunes nothing")


def test_magnitude_mask_respects_the_previous_mask():
    """With a previous mask, only kept entries are ranked and amount counts against them, as in torch"""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 6))
    previous = rng.random((5, 6)) < 0.6
    for amount in (0.5, 4, 1.0):
        expect_equal(np.asarray(magnitude_mask(w, amount, previous)),
                     torch_pruned(w, ("mask", previous), ("l1", amount))[0],
                     call=f"magnitude_mask(w (5, 6), amount={amount!r}, mask=previous ({int(previous.sum())} kept))",
                     hint="score the pruned entries +inf so they are never among the smallest, and compute "
                          "prune_count from the number still kept; pruned entries stay False")


# -- pruning layers --------------------------------------------------------------------------------


def test_l1_unstructured_prunes_a_linear_in_place():
    """l1_unstructured zeros the smallest weights of a Linear in place and stores weight_mask, like torch"""
    rng = np.random.default_rng(4)
    w0, b0 = rng.standard_normal((4, 5)), rng.standard_normal(4)
    layer = linear_with(w0, b0)
    weight = layer.weight
    returned = l1_unstructured(layer, "weight", amount=0.4)
    expected_mask, expected_weight = torch_pruned(w0, ("l1", 0.4))
    expect_equal(np.asarray(getattr(layer, "weight_mask", None)), expected_mask,
                 call="l1_unstructured(Linear(5, 4), 'weight', amount=0.4); layer.weight_mask", hint=STORE_HINT)
    expect_equal(weight.data, expected_weight, call="the weight Tensor held before l1_unstructured, afterwards",
                 hint="zero the pruned entries of parameter.data in place; do not put a new Tensor in the layer")
    expect_equal(layer.bias.data, b0, call="layer.bias after l1_unstructured(layer, 'weight', 0.4)",
                 hint="only the named parameter is pruned")
    expect_equal(returned.weight.data, expected_weight, call="l1_unstructured(...) returns the module",
                 hint="return module, as torch does")
    x0 = rng.standard_normal((3, 5))
    expect_close(layer(Tensor(x0)), x0 @ expected_weight.T + b0, rtol=RTOL, atol=ATOL,
                 call="the pruned Linear(5, 4)(x)", hint="the forward pass uses the zeroed weights")


def test_l1_unstructured_again_prunes_among_the_rest():
    """Pruning 50% twice leaves 25%: each round prunes among the weights still kept, as in torch"""
    w0 = np.random.default_rng(5).standard_normal((6, 4))
    layer = linear_with(w0)
    l1_unstructured(layer, "weight", amount=0.5)
    l1_unstructured(layer, "weight", amount=0.5)
    expect_equal(np.asarray(getattr(layer, "weight_mask", None)), torch_pruned(w0, ("l1", 0.5), ("l1", 0.5))[0],
                 call="l1_unstructured(layer, amount=0.5) twice; layer.weight_mask",
                 hint="the second round starts from layer.weight_mask: the 12 kept weights, of which it prunes 6")
    expect_close(sparsity(layer.weight), 0.75, rtol=1e-12, call="sparsity(layer.weight) after two rounds of 50%",
                 hint="the pruned weights are zero, the smallest magnitudes of all: without the previous mask the "
                      "second round would prune them again")
    l1_unstructured(layer, "weight", amount=2)
    expect_equal(np.asarray(layer.weight.data), torch_pruned(w0, ("l1", 0.5), ("l1", 0.5), ("l1", 2))[1],
                 call="a third round, amount=2 (a count)", hint="an int amount prunes that many more weights")


def test_l1_unstructured_on_another_parameter():
    """l1_unstructured(layer, 'bias', amount) prunes the bias and stores bias_mask"""
    rng = np.random.default_rng(6)
    w0, b0 = rng.standard_normal((5, 3)), rng.standard_normal(5)
    layer = linear_with(w0, b0)
    l1_unstructured(layer, "bias", amount=2)
    mask, pruned = torch_pruned(b0, ("l1", 2), name="bias")
    expect_equal(np.asarray(getattr(layer, "bias_mask", None)), mask, call="l1_unstructured(layer, 'bias', 2); layer.bias_mask",
                 hint="the mask attribute is named after the parameter: f'{name}_mask'")
    expect_equal(layer.bias.data, pruned, call="layer.bias after l1_unstructured(layer, 'bias', 2)",
                 hint="getattr(module, name) is the parameter to prune")
    expect_equal(layer.weight.data, w0, call="layer.weight after pruning the bias", hint="the weight is untouched")


def test_global_unstructured_matches_torch():
    """global_unstructured ranks all the weights together: layers of small weights lose more, as in torch"""
    rng = np.random.default_rng(7)
    weights = [0.2 * rng.standard_normal((6, 8)), 1.0 * rng.standard_normal((5, 6)), 3.0 * rng.standard_normal((3, 5))]
    layers = [linear_with(w, np.zeros(w.shape[0])) for w in weights]
    model = Sequential(layers[0], ReLU(), layers[1], ReLU(), layers[2])
    held = [layer.weight for layer in layers]
    global_unstructured([(layer, "weight") for layer in layers], amount=0.6)
    expected = torch_global_masks(weights, 0.6)
    for index, layer in enumerate(layers):
        expect_equal(np.asarray(getattr(layer, "weight_mask", None)), expected[index],
                     call=f"global_unstructured([(layer, 'weight') for 3 layers], amount=0.6); layer {index}.weight_mask",
                     hint="concatenate every weight's |w| (reshape(-1)) into one vector, one magnitude_mask over it, "
                          "then cut it back into pieces of each weight's size and shape")
        expect_equal(held[index].data, weights[index] * expected[index],
                     call=f"layer {index}'s weight Tensor after global_unstructured", hint=STORE_HINT)
    expect_close(model_sparsity(model), round(0.6 * 93) / 93, rtol=1e-12, call="model_sparsity(model) afterwards",
                 hint="60% of the 93 weights, rounded: 56 pruned in all, however they are shared out")


def test_prunable_parameters_and_global_80_percent():
    """global_unstructured(prunable_parameters(model), 0.8) makes the weights of an MLP 80% sparse"""
    rng = np.random.default_rng(8)
    weights = [rng.standard_normal((10, 12)) / np.sqrt(12), rng.standard_normal((4, 10)) / np.sqrt(10)]
    biases = [rng.standard_normal(10), rng.standard_normal(4)]
    model = Sequential(linear_with(weights[0], biases[0]), ReLU(), linear_with(weights[1], biases[1]))
    global_unstructured(prunable_parameters(model), amount=0.8)
    expect_close(model_sparsity(model), 0.8, rtol=1e-12,
                 call="model_sparsity(model) after global_unstructured(prunable_parameters(model), 0.8)",
                 hint="0.8 of the 160 weights of both layers together is exactly 128")
    expected = torch_global_masks(weights, 0.8)
    expect_equal(model[0].weight.data, weights[0] * expected[0], call="model[0].weight after pruning 80% globally",
                 hint="one threshold for all the weights of the model")
    expect_equal(model[2].bias.data, biases[1], call="model[2].bias after pruning", hint="biases are not pruned")


def test_global_unstructured_respects_earlier_masks():
    """global_unstructured after a per-layer round prunes among the weights still kept, as in torch"""
    rng = np.random.default_rng(9)
    weights = [rng.standard_normal((4, 5)), 0.5 * rng.standard_normal((3, 4))]
    layers = [linear_with(w) for w in weights]
    l1_unstructured(layers[0], "weight", amount=0.5)
    global_unstructured([(layer, "weight") for layer in layers], amount=0.5)
    first = torch_pruned(weights[0], ("l1", 0.5))[0]
    expected = torch_global_masks(weights, 0.5, previous=[first, np.ones((3, 4), bool)])
    expect_equal([np.asarray(getattr(layer, "weight_mask", None)) for layer in layers], expected,
                 call="l1_unstructured(layer0, amount=0.5), then global_unstructured(both layers, amount=0.5)",
                 hint="start from each layer's weight_mask (all True if it has none): half of the 22 weights still "
                      "kept are pruned, 11, and nothing pruned comes back")


# -- keeping masks applied ---------------------------------------------------------------------------


def test_mask_gradients_matches_torch_weight_orig_grad():
    """mask_gradients zeros the gradients of pruned weights: the gradient torch gives weight_orig"""
    rng = np.random.default_rng(10)
    w0, b0, x0, g0 = (rng.standard_normal(s) for s in ((4, 6), (4,), (3, 6), (3, 4)))
    layer = linear_with(w0, b0)
    l1_unstructured(layer, "weight", amount=0.5)
    layer(Tensor(x0)).backward(g0)
    mask_gradients(layer)
    mask, pruned = torch_pruned(w0, ("l1", 0.5))
    expect_close(layer.weight.grad, (g0.T @ x0) * mask, rtol=RTOL, atol=ATOL,
                 call="layer.weight.grad after l1_unstructured(layer, amount=0.5), backward, mask_gradients(layer)",
                 hint="for every (parameter, mask) in pruning_masks(model), set the pruned entries of parameter.grad to 0")
    expect_close(layer.bias.grad, g0.sum(axis=0), rtol=RTOL, atol=ATOL, call="layer.bias.grad after mask_gradients",
                 hint="an unpruned parameter keeps its gradient")


def test_apply_masks_restores_zeros_in_nested_models():
    """apply_masks zeros every pruned entry again, in every layer of a nested model"""
    rng = np.random.default_rng(11)
    weights = [rng.standard_normal((3, 4)), rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    layers = [linear_with(w, np.ones(w.shape[0])) for w in weights]
    model = Sequential(Sequential(layers[0], ReLU(), layers[1]), ReLU(), layers[2])
    l1_unstructured(layers[0], "weight", amount=0.5)
    l1_unstructured(layers[2], "weight", amount=3)
    for layer in layers:
        layer.weight.data[...] = 7.0   # as if an optimizer had moved every weight
    apply_masks(model)
    expected = [torch_pruned(weights[0], ("l1", 0.5))[0], np.ones((4, 3), bool), torch_pruned(weights[2], ("l1", 3))[0]]
    for index, layer in enumerate(layers):
        expect_equal(layer.weight.data, 7.0 * expected[index],
                     call=f"layer {index}.weight after setting every weight to 7 and apply_masks(model)",
                     hint="walk model.modules() (pruning_masks does it) and multiply each pruned parameter by its "
                          "mask in place; an unpruned layer stays as it is")
    expect_equal(layers[0].bias.data, np.ones(3), call="layer 0's bias after apply_masks", hint="biases have no mask here")


def test_apply_masks_keeps_a_pruned_model_pruned_through_training():
    """Four SGD steps with apply_masks after each: weights equal torch's weight_orig * weight_mask"""
    rng = np.random.default_rng(12)
    params = {"0.weight": rng.standard_normal((6, 5)) / np.sqrt(5), "0.bias": 0.1 * rng.standard_normal(6),
              "2.weight": rng.standard_normal((3, 6)) / np.sqrt(6), "2.bias": 0.1 * rng.standard_normal(3)}
    x0, y0 = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
    model = Sequential(linear_with(params["0.weight"], params["0.bias"]), ReLU(),
                       linear_with(params["2.weight"], params["2.bias"]))
    global_unstructured(prunable_parameters(model), amount=0.7)
    for _ in range(4):
        model.zero_grad()
        MSELoss()(model(Tensor(x0)), Tensor(y0)).backward()
        for parameter in model.parameters():
            parameter.data -= 0.1 * parameter.grad.data
        apply_masks(model)
    reference = torch_pruned_training(params, 0.7, x0, y0, steps=4, lr=0.1)
    for name, tensor in model.named_parameters():
        expect_close(tensor, reference[name], rtol=1e-9, atol=1e-12,
                     call=f"{name} after global pruning to 70% and 4 SGD steps, apply_masks(model) after each",
                     hint="the gradient of a pruned weight is not zero, so every step revives it: apply_masks "
                          "after the step puts the zeros back, and the kept weights move as in torch")
    expect_close(model_sparsity(model), round(0.7 * 48) / 48, rtol=1e-12, call="model_sparsity(model) after training",
                 hint="the sparsity pruning paid for is kept")


# -- structured pruning ------------------------------------------------------------------------------


CHANNEL_CASES = [((4, 5), 2, 0), ((4, 5), 1, 1), ((4, 5), np.inf, 0), ((3, 2, 3, 3), 2, 0), ((3, 2, 3, 3), 1, 1),
                 ((3, 4, 2), 2, -1)]


def test_channel_norms_match_torch():
    """channel_norms gives one L_n norm per index along dim, over every other axis, like torch"""
    rng = np.random.default_rng(28)
    for shape, n, dim in CHANNEL_CASES:
        w = rng.standard_normal(shape)
        others = tuple(a for a in range(len(shape)) if a != dim % len(shape))
        expect_close(channel_norms(w, n, dim), torch.linalg.vector_norm(torch64(w), ord=n, dim=others).numpy(),
                     rtol=RTOL, atol=ATOL, call=f"channel_norms(w {shape}, n={n}, dim={dim})",
                     hint="np.moveaxis(w, dim, 0), reshape to (channels, -1), np.linalg.norm(..., ord=n, axis=1); "
                          "a negative dim counts from the end")


def test_ln_structured_prunes_rows_and_columns_like_torch():
    """ln_structured removes whole rows (dim=0) or columns (dim=1) of smallest norm, like torch"""
    rng = np.random.default_rng(13)
    for amount, n, dim in ((0.5, 2, 0), (2, 1, 1), (0.4, np.inf, 1), (0.6, 2, -1)):
        w0 = rng.standard_normal((6, 5))
        layer = linear_with(w0, np.zeros(6))
        weight = layer.weight
        ln_structured(layer, "weight", amount=amount, n=n, dim=dim)
        mask, pruned = torch_pruned(w0, ("ln", amount, n, dim))
        call = f"ln_structured(Linear(5, 6), 'weight', amount={amount!r}, n={n}, dim={dim})"
        expect_equal(np.asarray(getattr(layer, "weight_mask", None)), mask, call=f"{call}; layer.weight_mask",
                     hint="rank the channels along dim by channel_norms, drop prune_count(amount, channels) of the "
                          "smallest, and broadcast the channel mask to the weight's shape (dim=-1 is the last axis)")
        expect_equal(weight.data, pruned, call=f"{call}; the weight", hint=STORE_HINT)


def test_ln_structured_prunes_conv_filters():
    """ln_structured(conv, dim=0) removes whole filters of a Conv2d: those feature maps become the bias"""
    rng = np.random.default_rng(14)
    w0, b0 = rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
    conv = Conv2d(2, 6, kernel_size=3)
    conv.weight.data = w0.copy()
    conv.bias.data = b0.copy()
    ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
    mask, pruned = torch_pruned(w0, ("ln", 0.5, 2, 0))
    expect_equal(np.asarray(getattr(conv, "weight_mask", None)), mask,
                 call="ln_structured(Conv2d(2, 6, 3), 'weight', amount=0.5, n=2, dim=0); conv.weight_mask",
                 hint="a filter is weight[c]: its L2 norm over (C_in, kH, kW); prune the 3 smallest whole")
    x0 = rng.standard_normal((2, 2, 5, 5))
    expect_close(conv(Tensor(x0)), F.conv2d(torch64(x0), torch64(pruned), torch64(b0)).numpy(), rtol=RTOL, atol=ATOL,
                 call="the pruned Conv2d(2, 6, 3)(x)", hint="the zeroed filters output only their bias")


def test_ln_structured_again_and_after_unstructured():
    """A second structured round prunes among the channels still alive, on top of any earlier mask, as in torch"""
    rng = np.random.default_rng(15)
    w0 = rng.standard_normal((8, 4))
    layer = linear_with(w0)
    ln_structured(layer, "weight", amount=0.25, n=2, dim=0)
    ln_structured(layer, "weight", amount=0.5, n=2, dim=0)
    expect_equal(np.asarray(getattr(layer, "weight_mask", None)),
                 torch_pruned(w0, ("ln", 0.25, 2, 0), ("ln", 0.5, 2, 0))[0],
                 call="ln_structured(amount=0.25, dim=0), then ln_structured(amount=0.5, dim=0) on Linear(4, 8)",
                 hint="a channel is alive while any of its entries is kept (mask.any over the other axes); the "
                      "second round prunes half of the 6 alive rows")
    w1 = rng.standard_normal((5, 6))
    other = linear_with(w1)
    l1_unstructured(other, "weight", amount=0.3)
    ln_structured(other, "weight", amount=0.4, n=1, dim=1)
    call = "l1_unstructured(amount=0.3), then ln_structured(amount=0.4, n=1, dim=1) on Linear(6, 5)"
    expect_equal(np.asarray(getattr(other, "weight_mask", None)), torch_pruned(w1, ("l1", 0.3), ("ln", 0.4, 1, 1))[0],
                 call=f"{call}; weight_mask", hint="the new mask is the old one & the channel mask: both kinds of pruning")
    expect_equal(other.weight.data, torch_pruned(w1, ("l1", 0.3), ("ln", 0.4, 1, 1))[1], call=f"{call}; the weight",
                 hint="norms of the current (already pruned) weights")


# -- attention heads ---------------------------------------------------------------------------------


def test_head_importance_matches_torch():
    """head_importance is the Frobenius norm of each head's W_o[:, head] @ W_v[head, :]"""
    params = mha_params(8, seed=16)
    mha = mha_with(params, 4)
    w_o, w_v = torch64(params["out_proj.weight"]), torch64(params["v_proj.weight"])
    expect_close(head_importance(mha),
                 np.array([torch.linalg.matrix_norm(w_o[:, 2 * h:2 * h + 2] @ w_v[2 * h:2 * h + 2, :]).item()
                           for h in range(4)]),
                 rtol=RTOL, atol=ATOL, call="head_importance(MultiheadAttention(8, 4) with the test's weights)",
                 hint="head h owns rows h*D..(h+1)*D-1 of v_proj.weight and the same columns of out_proj.weight; "
                      "np.linalg.norm of their product (E x E)")


def test_prune_heads_removes_exactly_those_heads():
    """After prune_heads(mha, [0, 2]) the output and gradients equal attention without heads 0 and 2"""
    rng = np.random.default_rng(17)
    params = mha_params(8, seed=17)
    mha = mha_with(params, 4)
    x0, g0 = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 3, 8))
    returned = prune_heads(mha, [0, 2])
    x = Tensor(x0, requires_grad=True)
    out = mha(x)
    out.backward(g0)
    reference = torch_attention_without_heads(params, x0, 4, [0, 2], g0)
    expect_close(out, reference[0], rtol=RTOL, atol=ATOL, call="prune_heads(MultiheadAttention(8, 4), [0, 2]); mha(x)",
                 hint="head h reaches the output only through columns h*D..(h+1)*D-1 of out_proj.weight: zero them")
    expect_close(x.grad, reference[1], rtol=RTOL, atol=ATOL, call="x.grad after backward through the pruned mha",
                 hint="the zeroed columns also stop the gradient of the pruned heads")
    expect_close(mha.q_proj.weight.grad, reference[2], rtol=RTOL, atol=ATOL,
                 call="q_proj.weight.grad after backward through the pruned mha",
                 hint="the pruned heads' rows of q_proj get no gradient")
    keep = np.ones((8, 8), bool)
    keep[:, 0:2] = keep[:, 4:6] = False
    expect_equal(np.asarray(getattr(mha.out_proj, "weight_mask", None)), keep,
                 call="mha.out_proj.weight_mask after prune_heads(mha, [0, 2])",
                 hint="record the pruned columns as out_proj.weight_mask, so apply_masks keeps the heads pruned")
    expect_equal(returned.out_proj.weight.data, params["out_proj.weight"] * keep, call="prune_heads returns mha",
                 hint="return mha")


def test_pruned_heads_stay_pruned():
    """prune_heads again adds to the mask, head_importance of a pruned head is 0, apply_masks keeps it so"""
    params = mha_params(6, seed=18)
    mha = mha_with(params, 3)
    prune_heads(mha, [1])
    prune_heads(mha, [2])
    mha.out_proj.weight.data += 1.0   # as if an optimizer step had moved every weight
    apply_masks(mha)
    keep = np.ones((6, 6), bool)
    keep[:, 2:6] = False
    expect_equal(mha.out_proj.weight.data, (params["out_proj.weight"] + 1.0) * keep,
                 call="prune_heads(mha, [1]); prune_heads(mha, [2]); every weight moved; apply_masks(mha)",
                 hint="combine with the mask already on out_proj (a second call must not revive head 1)")
    w_o, w_v = params["out_proj.weight"] + 1.0, params["v_proj.weight"]
    expect_close(head_importance(mha), [np.linalg.norm(w_o[:, :2] @ w_v[:2]), 0.0, 0.0], rtol=RTOL, atol=ATOL,
                 call="head_importance(mha) with heads 1 and 2 pruned", hint="a pruned head can add nothing: 0")


def test_prune_heads_rejects_missing_heads():
    """prune_heads raises ValueError for a head number outside 0..H-1"""
    params = mha_params(8, seed=19)
    for heads in ([4], [-1], [0, 7]):
        mha = mha_with(params, 4)
        expect_raises(ValueError, lambda: prune_heads(mha, heads), call=f"prune_heads(MultiheadAttention(8, 4), {heads})",
                      hint="4 heads are numbered 0..3; a negative number is not a head")
    mha = mha_with(params, 4)
    prune_heads(mha, [3])
    expect_equal(mha.out_proj.weight.data[:, 6:], np.zeros((8, 2)), call="prune_heads(MultiheadAttention(8, 4), [3])",
                 hint="the last head owns the last D columns")


# -- low rank ----------------------------------------------------------------------------------------


def test_low_rank_factors_match_truncated_svd():
    """A @ B equals torch.linalg.svd's best rank-r matrix, A is (out, r), B is (r, in)"""
    rng = np.random.default_rng(29)
    for shape, rank in (((6, 4), 1), ((6, 4), 2), ((6, 4), 4), ((3, 7), 2)):
        w = rng.standard_normal(shape)
        a, b = low_rank_factors(w, rank)
        expect_equal((np.shape(a), np.shape(b)), ((shape[0], rank), (rank, shape[1])),
                     call=f"[x.shape for x in low_rank_factors(w {shape}, {rank})]", hint="A (out, rank), B (rank, in)")
        u, s, vh = torch.linalg.svd(torch64(w), full_matrices=False)
        expect_close(np.asarray(a) @ np.asarray(b), (u[:, :rank] * s[:rank] @ vh[:rank]).numpy(), rtol=1e-9,
                     atol=1e-12, call=f"A @ B for A, B = low_rank_factors(w {shape}, rank={rank})",
                     hint="np.linalg.svd(w, full_matrices=False), keep the first `rank` singular triples, and split "
                          "diag(s) between the factors (A = U_r sqrt(s_r), B = sqrt(s_r) V_r^T)")


def test_low_rank_error_is_the_discarded_singular_values():
    """||W - A @ B||_F is the root of the sum of the discarded squared singular values (Eckart-Young)"""
    w = np.random.default_rng(20).standard_normal((8, 5))
    for rank in (1, 3, 5):
        a, b = low_rank_factors(w, rank)
        expect_close(np.linalg.norm(w - np.asarray(a) @ np.asarray(b)),
                     torch.sqrt((torch.linalg.svdvals(torch64(w))[rank:] ** 2).sum()).item(), rtol=1e-9, atol=1e-12,
                     call=f"||w - A @ B||_F for low_rank_factors(w (8, 5), {rank})",
                     hint="the largest singular values must be the ones kept: s from np.linalg.svd is sorted "
                          "largest first")
    a32, b32 = low_rank_factors(w.astype(np.float32), 2)
    expect_equal((np.asarray(a32).dtype, np.asarray(b32).dtype), (np.dtype(np.float32), np.dtype(np.float32)),
                 call="dtypes of low_rank_factors(float32 w, 2)", hint="return the factors in the weight's dtype")


def test_low_rank_factors_reject_bad_ranks():
    """low_rank_factors raises ValueError for rank 0 or a rank above min(out, in)"""
    w = np.random.default_rng(21).standard_normal((6, 4))
    for rank in (0, 5, -1):
        expect_raises(ValueError, lambda: low_rank_factors(w, rank), call=f"low_rank_factors(w (6, 4), {rank})",
                      hint="a (6, 4) matrix has ranks 1..4")
    a, b = low_rank_factors(Tensor(w), 4)
    expect_close(np.asarray(a) @ np.asarray(b), w, rtol=1e-9, atol=1e-12, call="A @ B for low_rank_factors(Tensor w, 4)",
                 hint="full rank reproduces the matrix; a Tensor's numbers are in .data")


def test_rank_for_energy_on_a_known_spectrum():
    """rank_for_energy finds the smallest rank holding a fraction of sum(s^2) (spectrum 4, 3, 2, 1: 16, 25, 29, 30 of 30)"""
    w = with_spectrum([4.0, 3.0, 2.0, 1.0], (7, 5), seed=22)
    for energy, rank in ((0.3, 1), (0.5, 1), (0.6, 2), (0.8, 2), (0.9, 3), (0.96, 3), (0.97, 4), (1.0, 4)):
        expect_equal(rank_for_energy(w, energy), rank, call=f"rank_for_energy(w with singular values 4, 3, 2, 1, {energy})",
                     hint="cumulative s^2 / sum(s^2) is 0.533, 0.833, 0.967, 1.0: the first rank reaching `energy`; "
                          "never more than the number of singular values")
    expect_equal(rank_for_energy(np.zeros((3, 3)), 0.9), 0, call="rank_for_energy(zeros (3, 3), 0.9)",
                 hint="a zero matrix has no energy: rank 0")
    for energy in (0.0, 1.5):
        expect_raises(ValueError, lambda: rank_for_energy(w, energy), call=f"rank_for_energy(w, {energy})",
                      hint="energy is a fraction in (0, 1]")


def test_factorize_linear_is_two_thin_layers():
    """factorize_linear gives Sequential(Linear(in, r, bias=False), Linear(r, out)) equal to the rank-r layer"""
    rng = np.random.default_rng(23)
    w0, b0 = rng.standard_normal((6, 9)).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    layer = linear_with(w0, b0)
    small = factorize_linear(layer, 3)
    expect_equal([(name, tuple(tensor.shape)) for name, tensor in small.named_parameters()],
                 [("0.weight", (3, 9)), ("1.weight", (6, 3)), ("1.bias", (6,))],
                 call="[(name, shape) of factorize_linear(Linear(9, 6), 3).named_parameters()]",
                 hint="Linear(in, rank, bias=False) holding B, then Linear(rank, out) holding A and the old bias")
    expect_equal(small.num_parameters(), 3 * (9 + 6) + 6, call="factorize_linear(Linear(9, 6), 3).num_parameters()",
                 hint="rank * (in + out) + out numbers instead of in * out + out")
    x0 = rng.standard_normal((4, 9)).astype(np.float32)
    u, s, vh = torch.linalg.svd(torch64(w0), full_matrices=False)
    expect_close(small(Tensor(x0)), x0 @ (u[:, :3] * s[:3] @ vh[:3]).numpy().T + b0, rtol=F32_RTOL, atol=F32_ATOL,
                 call="factorize_linear(Linear(9, 6), 3)(x)", hint="x @ B.T @ A.T + bias = x @ (A @ B).T + bias")
    expect_equal(str(small(Tensor(x0)).dtype), "float32", call="factorize_linear(float32 Linear, 3)(float32 x).dtype",
                 hint="keep the layer's dtype")
    expect_equal(layer.weight.data, w0, call="the original layer's weight after factorize_linear",
                 hint="build new layers; leave the original alone")


def test_factorize_linear_trains():
    """Gradients reach both factors of factorize_linear's layers (checked against their own values)"""
    rng = np.random.default_rng(24)
    layer = linear_with(rng.standard_normal((5, 7)), rng.standard_normal(5))
    small = factorize_linear(layer, 2)
    x0, g0 = rng.standard_normal((3, 7)), rng.standard_normal((3, 5))
    small(Tensor(x0)).backward(g0)
    first, second = small[0], small[1]
    expect_that((x0, g0, second.weight, first.weight, first.weight.grad, second.weight.grad),
                factor_gradients_match, 1e-9, 1e-12,
                call="(x, g, A, B, B.grad, A.grad) after factorize_linear(Linear(7, 5), 2)(x).backward(g)",
                expected="A.grad = g^T (x B^T) and B.grad = A^T g^T x, for your own A and B",
                hint="the factors are parameters (requires_grad=True) of ordinary Linear layers")
    expect_close(second.bias.grad, g0.sum(axis=0), rtol=RTOL, atol=ATOL, call="the second layer's bias.grad",
                 hint="the old bias sits on the second layer")


# -- distillation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 2.5, 6.0])
def test_soft_target_loss_matches_torch_kl_div(temperature):
    """soft_target_loss is T^2 * kl_div(log_softmax(s/T), softmax(t/T), 'batchmean'), gradient included"""
    rng = np.random.default_rng(int(temperature * 10))
    s0, t0 = 2.0 * rng.standard_normal((5, 4)), 3.0 * rng.standard_normal((5, 4))
    student = Tensor(s0, requires_grad=True)
    loss = soft_target_loss(student, Tensor(t0), temperature=temperature)
    reference = torch_kl_soft(s0, t0, temperature)
    call = f"soft_target_loss(student (5, 4), teacher (5, 4), temperature={temperature})"
    expect_close(loss, reference[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="p = Softmax(temperature=T)(teacher), log q = LogSoftmax(temperature=T)(student), "
                      "sum p (log p - log q) over the classes, mean over the rows, times T^2")
    loss.backward()
    expect_close(student.grad, reference[1], rtol=RTOL, atol=ATOL, call=f"student.grad after {call}.backward()",
                 hint="T (q - p) / N: built from LogSoftmax and Tensor operations, module 05 differentiates it")


def test_soft_target_loss_with_confident_logits_and_float32():
    """Logits of +-400 (probabilities that underflow to 0) give torch's finite loss; float32 stays float32"""
    s0 = np.array([[400.0, -400.0, 0.0, 5.0], [-380.0, 390.0, 2.0, -1.0]])
    t0 = np.array([[-400.0, 400.0, 3.0, 0.0], [410.0, -390.0, 0.0, 1.0]])
    student = Tensor(s0, requires_grad=True)
    loss = soft_target_loss(student, Tensor(t0), temperature=1.0)
    reference = torch_kl_soft(s0, t0, 1.0)
    expect_close(loss, reference[0], rtol=1e-9, atol=1e-9, call="soft_target_loss(+-400 logits, +-400 teacher, temperature=1.0)",
                 hint="log q from LogSoftmax, never the log of a softmax that underflowed to 0; the teacher's "
                      "p log p with p = 0 is 0: module 04's xlogy")
    loss.backward()
    expect_close(student.grad, reference[1], rtol=1e-9, atol=1e-9, call="student.grad for the +-400 logits",
                 hint="no log(0) anywhere in the graph, so no nan")
    rng = np.random.default_rng(30)
    s32, t64 = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 5))
    loss32 = soft_target_loss(Tensor(s32), t64, temperature=2.0)
    expect_equal(str(loss32.dtype), "float32", call="soft_target_loss(float32 student, float64 numpy teacher, 2.0).dtype",
                 hint="the student decides the dtype: convert the teacher's logits to it (Tensor.to)")
    expect_close(loss32, torch_kl_soft(s32.astype(np.float64), t64.astype(np.float32).astype(np.float64), 2.0)[0],
                 rtol=1e-4, atol=1e-6, call="soft_target_loss(float32 student, float64 numpy teacher, 2.0)",
                 hint="the same formula, in float32")


def test_soft_target_loss_is_zero_for_a_perfect_student():
    """A student equal to its teacher has soft loss 0, and no gradient ever reaches the teacher"""
    t0 = np.random.default_rng(25).standard_normal((3, 5))
    student, teacher = Tensor(t0.copy(), requires_grad=True), Tensor(t0.copy(), requires_grad=True)
    loss = soft_target_loss(student, teacher, temperature=3.0)
    expect_close(loss, 0.0, rtol=0, atol=1e-12, call="soft_target_loss(t, t, temperature=3.0)", hint="KL(p || p) = 0")
    loss.backward()
    expect_equal(teacher.grad, None, call="teacher.grad after soft_target_loss(student, teacher, 3.0).backward()",
                 hint="the teacher is a fixed target: use teacher_logits.detach()")
    expect_close(student.grad, np.zeros((3, 5)), rtol=0, atol=1e-12, call="student.grad when student == teacher",
                 hint="at the minimum the gradient is 0")


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.3), (2.0, 0.9)])
def test_distillation_loss_matches_torch(temperature, alpha):
    """distillation_loss = alpha * soft + (1 - alpha) * cross-entropy, values and gradients as torch"""
    rng = np.random.default_rng(int(temperature * 100 + alpha * 10))
    s0, t0 = rng.standard_normal((6, 3)), 2.0 * rng.standard_normal((6, 3))
    labels = rng.integers(0, 3, size=6)
    student = Tensor(s0, requires_grad=True)
    loss = distillation_loss(student, Tensor(t0), Tensor(labels), temperature=temperature, alpha=alpha)
    reference = torch_distillation(s0, t0, labels, temperature, alpha)
    call = f"distillation_loss(student (6, 3), teacher, labels, temperature={temperature}, alpha={alpha})"
    expect_close(loss, reference[0], rtol=RTOL, atol=ATOL, call=call,
                 hint="alpha weighs the soft loss (with its T^2), 1 - alpha the cross-entropy of the raw student "
                      "logits (temperature 1) against the labels")
    loss.backward()
    expect_close(student.grad, reference[1], rtol=RTOL, atol=ATOL, call=f"student.grad after {call}.backward()",
                 hint="both terms are differentiable Tensor expressions: add them, do not detach the student")


def test_distillation_alpha_extremes():
    """alpha=0 is plain cross-entropy, alpha=1 is the soft loss alone"""
    rng = np.random.default_rng(26)
    s0, t0, labels = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), rng.integers(0, 5, size=4)
    expect_close(distillation_loss(Tensor(s0), Tensor(t0), Tensor(labels), temperature=3.0, alpha=0.0),
                 F.cross_entropy(torch64(s0), torch.tensor(labels)).item(), rtol=RTOL, atol=ATOL,
                 call="distillation_loss(..., temperature=3.0, alpha=0.0)",
                 hint="with alpha = 0 only the hard loss is left, on the logits at temperature 1")
    expect_close(distillation_loss(Tensor(s0), t0, labels, temperature=3.0, alpha=1.0),
                 torch_kl_soft(s0, t0, 3.0)[0], rtol=RTOL, atol=ATOL,
                 call="distillation_loss(..., teacher as a numpy array, temperature=3.0, alpha=1.0)",
                 hint="with alpha = 1 only the soft loss is left; a numpy teacher is fine (wrap it in a Tensor)")


def test_distillation_rejects_bad_settings():
    """A temperature <= 0 or an alpha outside [0, 1] raises ValueError"""
    rng = np.random.default_rng(27)
    s0, t0, labels = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), np.array([0, 2])
    for temperature in (0.0, -1.0):
        expect_raises(ValueError, lambda: soft_target_loss(Tensor(s0), Tensor(t0), temperature=temperature),
                      call=f"soft_target_loss(s, t, temperature={temperature})", hint="the temperature divides the logits")
    for alpha in (-0.1, 1.5):
        expect_raises(ValueError, lambda: distillation_loss(Tensor(s0), Tensor(t0), Tensor(labels), alpha=alpha),
                      call=f"distillation_loss(s, t, labels, alpha={alpha})", hint="alpha is a weight in [0, 1]")
    expect_close(distillation_loss(Tensor(s0), Tensor(t0), Tensor(labels)),
                 torch_distillation(s0, t0, labels, 4.0, 0.5)[0], rtol=RTOL, atol=ATOL,
                 call="distillation_loss(s, t, labels) with the defaults", hint="temperature=4.0, alpha=0.5")
