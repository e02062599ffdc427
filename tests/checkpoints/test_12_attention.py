"""Checkpoint 12: attention, masks and multi-head attention.

Oracles: torch.nn.functional.scaled_dot_product_attention in float64 (values and the
gradients of q, k and v) on shapes drawn by Hypothesis, with causal, boolean, float and
padding masks; softmax(q k^T / sqrt(d)) computed here for the weights; exact invariance
tests (later tokens and padding cannot change what a query reads); torch.nn.MultiheadAttention
in float64 holding the same weights (values, per-head weights and every gradient), with masks
converted to its opposite boolean convention; the statistics of Xavier initialisation;
inverted dropout on the attention weights; and central differences on tiny cases.

Every number a layer computes with comes from this file's own seeded generators: the
projections of MultiheadAttention are replaced by the test's weights before any value is
compared, so a correct layer that draws its initial numbers differently is never rejected
(its initialisation is judged by its statistics only).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.attention import (
    MultiheadAttention,
    causal_mask,
    mask_to_bias,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)
from tinytorch.autograd import no_grad
from tinytorch.tensor import Tensor, manual_seed

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")

SDPA_HINT = ("scores = q @ k.transpose(-2, -1) * (1 / sqrt(d)), plus the mask's bias (0 allowed, -inf "
             "forbidden), weights = Softmax(dim=-1)(scores), out = weights @ v")
GRAD_HINT = ("every step is a recorded Tensor operation (@, transpose, *, +, Softmax); a constant (numpy) in "
             "the middle of the graph cuts the gradient, and a gradient of None means nothing was recorded")


def leaf(array) -> Tensor:
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def torch_leaf(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def kind_of(result) -> str:
    """'tuple of 2' for a pair, else the type's name: what a call returned, as a value to compare."""
    return f"tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__


# -- predicates, judged on the trusted side over the values your code produced ----------------


def identical(pair) -> bool:
    """Two arrays with the same shape and exactly the same numbers."""
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and first.size > 0 and bool(np.array_equal(first, second))


def different(pair, at_least) -> bool:
    """Two arrays of the same shape that differ somewhere by more than `at_least`."""
    first, second = (np.asarray(a, dtype=np.float64) for a in pair)
    return first.shape == second.shape and bool(np.max(np.abs(first - second)) > at_least)


def matches_slope(pair, rtol, atol) -> bool:
    """(gradient, central-difference slope): the same shape and close."""
    grad, numeric = pair
    if grad is None:
        return False
    grad, numeric = np.asarray(grad, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    return grad.shape == numeric.shape and bool(np.allclose(grad, numeric, rtol=rtol, atol=atol))


def xavier_uniform(weight, bound) -> bool:
    """Uniform on [-bound, bound]: nothing outside, the edges reached, std bound / sqrt(3), mean 0."""
    w = np.asarray(weight, dtype=np.float64)
    std = bound / np.sqrt(3.0)
    return (w.size > 1000 and float(np.abs(w).max()) <= bound * (1 + 1e-6) and float(np.abs(w).max()) > 0.97 * bound
            and abs(float(w.std()) / std - 1) < 0.05 and abs(float(w.mean())) < 4 * std / np.sqrt(w.size))


def dropped_attention(pair, width, p) -> bool:
    """out = dropout(weights) @ [I | 2I]: each half of out is the dropped weights (the second doubled),
    every weight either 0 or weight / (1 - p), about a fraction p of them 0."""
    out, weights = (np.asarray(a, dtype=np.float64) for a in pair)
    if out.shape != weights.shape[:-1] + (2 * width,) or weights.shape[-1] != width:
        return False
    first, second = out[..., :width], out[..., width:]
    if not np.allclose(second, 2 * first, rtol=1e-12, atol=1e-15):
        return False  # the two halves were dropped differently: dropout after `@ v`, not on the weights
    dropped = first == 0.0
    if not np.allclose(first[~dropped], weights[~dropped] / (1 - p), rtol=1e-9, atol=0.0):
        return False
    return 0.3 < float(dropped.mean()) < 0.7


# -- the oracles ------------------------------------------------------------------------------


def torch_attention(q0, k0, v0, mask, is_causal, upstream):
    """torch's output and the gradients of q, k, v (float64, the exact 'math' kernel)."""
    tq, tk, tv = torch_leaf(q0), torch_leaf(k0), torch_leaf(v0)
    tmask = None if mask is None else torch.tensor(mask)
    with sdpa_kernel(SDPBackend.MATH):
        out = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, is_causal=is_causal)
    out.backward(torch.tensor(upstream))
    return out.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()


def torch_mha(params, arrays, upstream, num_heads, *, bias=True, self_attention=True, dropout=0.0,
              attn_mask=None, key_padding_mask=None):
    """torch.nn.MultiheadAttention (eval mode, float64) holding `params`: its output, per-head
    weights, and, for `upstream`, the gradients of its inputs and of every projection.

    Masks are given in torch's convention (True = NOT allowed); q/k/v are stacked in
    in_proj_weight (3E, E): rows 0..E-1 are q_proj, then k_proj, then v_proj."""
    e = params["q_proj.weight"].shape[0]
    theirs = torch.nn.MultiheadAttention(e, num_heads, bias=bias, dropout=dropout, batch_first=True,
                                         dtype=torch.float64)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.tensor(np.concatenate([params[f"{p}.weight"] for p in PROJECTIONS[:3]])))
        theirs.out_proj.weight.copy_(torch.tensor(params["out_proj.weight"]))
        if bias:
            theirs.in_proj_bias.copy_(torch.tensor(np.concatenate([params[f"{p}.bias"] for p in PROJECTIONS[:3]])))
            theirs.out_proj.bias.copy_(torch.tensor(params["out_proj.bias"]))
    theirs.eval()
    leaves = [torch_leaf(a) for a in arrays]
    query = leaves[0]
    key, value = (query, query) if self_attention else leaves[1:]
    masks = {"attn_mask": None if attn_mask is None else torch.tensor(attn_mask),
             "key_padding_mask": None if key_padding_mask is None else torch.tensor(key_padding_mask)}
    out, weights = theirs(query, key, value, need_weights=True, average_attn_weights=False, **masks)
    out.backward(torch.tensor(upstream))
    grads = {"out_proj.weight": theirs.out_proj.weight.grad.numpy()}
    for i, proj in enumerate(PROJECTIONS[:3]):
        grads[f"{proj}.weight"] = theirs.in_proj_weight.grad[i * e:(i + 1) * e].numpy()
        if bias:
            grads[f"{proj}.bias"] = theirs.in_proj_bias.grad[i * e:(i + 1) * e].numpy()
    if bias:
        grads["out_proj.bias"] = theirs.out_proj.bias.grad.numpy()
    return {"out": out.detach().numpy(), "weights": weights.detach().numpy(),
            "inputs": [t.grad.numpy() for t in leaves], "params": grads}


def check_attention(q0, k0, v0, *, mask=None, is_causal=False, torch_mask=None, torch_causal=None, what="",
                    hint=SDPA_HINT, seed=0):
    """Our attention (forward and backward) against torch's; torch may need the mask converted
    (torch refuses a mask together with is_causal: then the test folds the triangle into torch_mask)."""
    rng = np.random.default_rng(seed)
    call = f"scaled_dot_product_attention(q {q0.shape}, k {k0.shape}, v {v0.shape}{what})"
    q, k, v = leaf(q0), leaf(k0), leaf(v0)
    out = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    upstream = rng.standard_normal(np.broadcast_shapes(q0.shape[:-1], v0.shape[:-2] + (1,)) + v0.shape[-1:])
    reference = torch_attention(q0, k0, v0, mask if torch_mask is None else torch_mask,
                                is_causal if torch_causal is None else torch_causal, upstream)
    expect_close(out, reference[0], rtol=RTOL, atol=ATOL, call=call, hint=hint)
    out.backward(upstream)
    for index, (name, ours) in enumerate((("q", q), ("k", k), ("v", v)), start=1):
        expect_close(ours.grad, reference[index], rtol=RTOL, atol=ATOL, call=f"{name}.grad after {call}.backward(g)",
                     hint=GRAD_HINT)


# -- masks -----------------------------------------------------------------------------------


def test_causal_mask_is_the_lower_triangle():
    """causal_mask(T) is a boolean (T, T) matrix, True where key j <= query i"""
    got = causal_mask(4)
    expect_equal(np.asarray(got).dtype, np.dtype(bool), call="causal_mask(4).dtype",
                 hint="a boolean mask: True where attention is allowed")
    expect_equal(np.asarray(got), np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool),
                 call="causal_mask(4)",
                 hint="query i may read keys 0..i, itself included: np.tril of a (T, T) block of ones")
    expect_equal(np.asarray(causal_mask(1)), np.ones((1, 1), dtype=bool), call="causal_mask(1)",
                 hint="a single position may read itself")
    expect_equal(np.asarray(causal_mask(2, 4)), np.array([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=bool),
                 call="causal_mask(2, key_len=4)",
                 hint="Tq rows and key_len columns, the triangle aligned at the top left: np.tril of a (Tq, Tk) block")


def test_padding_mask_marks_real_tokens():
    """padding_mask(lengths, T) has shape (B, 1, 1, T), is True at positions < length, and checks the lengths"""
    for lengths, shown in (([3, 1, 5], "[3, 1, 5]"), (np.array([3, 1, 5]), "np.array([3, 1, 5])")):
        got = np.asarray(padding_mask(lengths, 5))
        expect_equal(got.shape, (3, 1, 1, 5), call=f"padding_mask({shown}, 5).shape",
                     hint="(B, 1, 1, T) broadcasts against scores (B, H, Tq, Tk): the same keys for every head and query")
        expect_equal(got.dtype, np.dtype(bool), call=f"padding_mask({shown}, 5).dtype", hint="a boolean mask")
        expect_equal(got, np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)[:, None, None, :],
                     call=f"padding_mask({shown}, 5)",
                     hint="True at the real tokens (position < length), False at the padding")
    for lengths in ([2, 6], [-1, 3]):
        expect_raises(ValueError, lambda: padding_mask(lengths, 5), call=f"padding_mask({lengths}, 5)",
                      hint="a length must be between 0 and seq_len: a longer one means the batch was padded wrongly")


def test_masks_combine_with_and():
    """causal_mask(T) & padding_mask(lengths, T) has shape (B, 1, T, T): causal and not padding"""
    combined = np.asarray(causal_mask(4)) & np.asarray(padding_mask([4, 2], 4))
    expect_equal(combined.shape, (2, 1, 4, 4), call="(causal_mask(4) & padding_mask([4, 2], 4)).shape",
                 hint="(T, T) & (B, 1, 1, T) broadcasts to (B, 1, T, T)")
    expect_equal(combined[1, 0], np.tril(np.ones((4, 4), bool)) & (np.arange(4) < 2),
                 call="(causal_mask(4) & padding_mask([4, 2], 4))[1, 0]",
                 hint="query i of a length-2 sequence reads keys j <= i that are also real (j < 2)")


def test_mask_to_bias_values():
    """mask_to_bias turns a boolean mask into 0 / -inf, keeps a float mask, adds the causal triangle"""
    mask = np.array([[True, False, True], [False, True, True]])
    expect_equal(np.asarray(mask_to_bias(mask, False, 2, 3, np.float64)),
                 np.array([[0.0, -np.inf, 0.0], [-np.inf, 0.0, 0.0]]),
                 call="mask_to_bias([[T, F, T], [F, T, T]], is_causal=False, 2, 3, float64)",
                 hint="0 where attention is allowed (True), -inf where it is not")
    expect_equal(mask_to_bias(None, False, 2, 3, np.float64), None,
                 call="mask_to_bias(None, is_causal=False, 2, 3, float64)", hint="nothing is masked: no bias at all")
    causal = np.asarray(mask_to_bias(None, True, 3, 3, np.float32))
    expect_equal(causal, np.where(np.tril(np.ones((3, 3), bool)), 0.0, -np.inf).astype(np.float32),
                 call="mask_to_bias(None, is_causal=True, 3, 3, float32)", hint="-inf strictly above the diagonal")
    expect_equal(causal.dtype, np.dtype(np.float32), call="mask_to_bias(None, True, 3, 3, float32).dtype",
                 hint="give the bias the scores' dtype, so float32 models stay float32")
    floats = np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -3.0]])
    expect_equal(np.asarray(mask_to_bias(floats, True, 2, 3, np.float64)),
                 floats + np.where(np.tril(np.ones((2, 3), bool)), 0.0, -np.inf),
                 call="mask_to_bias(float mask, is_causal=True, 2, 3, float64)",
                 hint="a float mask is added to the scores as it is; is_causal adds -inf above the diagonal")
    both = np.array([[True, True, False], [False, True, True]])
    expect_equal(np.asarray(mask_to_bias(both, True, 2, 3, np.float64)),
                 np.array([[0.0, -np.inf, -np.inf], [-np.inf, 0.0, -np.inf]]),
                 call="mask_to_bias([[T, T, F], [F, T, T]], is_causal=True, 2, 3, float64)",
                 hint="with a mask and is_causal, a key is allowed only where both allow it: add the two biases")
    expect_raises(TypeError, lambda: mask_to_bias(np.tril(np.ones((3, 3), dtype=np.int64)), False, 3, 3, np.float64),
                  call="mask_to_bias(int64 0/1 matrix, False, 3, 3, float64)",
                  hint="a 0/1 integer mask is ambiguous (allowed? or added?): accept only bool and float masks")


# -- scaled dot-product attention ------------------------------------------------------------


@pytest.mark.parametrize("q_shape, k_shape, dv", [
    ((4, 3), (4, 3), 3),            # one sequence, no batch
    ((2, 5, 4), (2, 5, 4), 4),      # a batch
    ((2, 3, 4, 8), (2, 3, 6, 8), 5),  # batch, heads, Tq != Tk, dv != d
])
def test_attention_matches_torch(q_shape, k_shape, dv):
    """scaled_dot_product_attention and its gradients for q, k, v equal torch's (float64)"""
    rng = np.random.default_rng(sum(q_shape) + sum(k_shape) + dv)
    check_attention(rng.standard_normal(q_shape), rng.standard_normal(k_shape),
                    rng.standard_normal(k_shape[:-1] + (dv,)))


@settings(max_examples=20)
@given(lead=st.lists(st.integers(1, 3), max_size=2), tq=st.integers(1, 5), tk=st.integers(1, 5),
       d=st.integers(1, 6), dv=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_attention_any_shape_matches_torch(lead, tq, tk, d, dv, seed):
    """Attention matches torch on batch/head axes, query and key counts and sizes drawn at random"""
    rng = np.random.default_rng(seed)
    lead = tuple(lead)
    check_attention(rng.standard_normal(lead + (tq, d)), rng.standard_normal(lead + (tk, d)),
                    rng.standard_normal(lead + (tk, dv)), seed=seed)


@pytest.mark.parametrize("tq, tk", [(5, 5), (3, 6), (6, 3)])
def test_causal_attention_matches_torch(tq, tk):
    """is_causal=True equals torch's is_causal (the triangle aligned at the top left when Tq != Tk)"""
    rng = np.random.default_rng(10 * tq + tk)
    check_attention(rng.standard_normal((2, 2, tq, 4)), rng.standard_normal((2, 2, tk, 4)),
                    rng.standard_normal((2, 2, tk, 3)), is_causal=True, what=", is_causal=True",
                    hint="query i reads keys j <= i: add -inf above the diagonal of the (Tq, Tk) scores "
                         "(np.tril of a (Tq, Tk) block of ones) before the softmax")


def test_boolean_mask_matches_torch():
    """A boolean attn_mask (True = allowed, broadcast over batch and heads) matches torch"""
    rng = np.random.default_rng(21)
    mask = rng.random((4, 6)) < 0.6
    mask[:, 0] = True  # every query may read something
    check_attention(rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)),
                    rng.standard_normal((2, 3, 6, 2)), mask=mask, what=", attn_mask=bool (4, 6)",
                    hint="True means allowed: forbidden scores become -inf before the softmax; the (Tq, Tk) mask "
                         "broadcasts over the batch and head axes")


def test_float_mask_matches_torch():
    """A float attn_mask is added to the scaled scores, as in torch (including -inf entries)"""
    rng = np.random.default_rng(22)
    mask = rng.standard_normal((2, 1, 4, 6))
    mask[0, 0, 1, 3:] = -np.inf
    check_attention(rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 6, 5)),
                    rng.standard_normal((2, 3, 6, 2)), mask=mask, what=", attn_mask=float (2, 1, 4, 6)",
                    hint="a float mask is a bias: scores * (1 / sqrt(d)) + mask, then the softmax "
                         "(scale first: the mask itself is not divided by sqrt(d))")


def test_padding_mask_matches_torch():
    """padding_mask, alone and combined with a causal mask, matches torch with the same boolean mask"""
    rng = np.random.default_rng(23)
    q0, k0, v0 = (rng.standard_normal((3, 2, 5, 4)) for _ in range(3))
    pad = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)[:, None, None, :]
    check_attention(q0, k0, v0, mask=padding_mask([5, 3, 1], 5), torch_mask=pad,
                    what=", attn_mask=padding_mask([5, 3, 1], 5)",
                    hint="padding keys get -inf in every query's row; (B, 1, 1, T) broadcasts over heads and queries")
    check_attention(q0, k0, v0, mask=causal_mask(5) & padding_mask([5, 3, 1], 5),
                    torch_mask=np.tril(np.ones((5, 5), bool)) & pad,
                    what=", attn_mask=causal_mask(5) & padding_mask([5, 3, 1], 5)",
                    hint="both masks at once: allowed only where both are True")
    check_attention(q0, k0, v0, mask=padding_mask([5, 3, 1], 5), is_causal=True,
                    torch_mask=np.tril(np.ones((5, 5), bool)) & pad, torch_causal=False,
                    what=", attn_mask=padding_mask([5, 3, 1], 5), is_causal=True",
                    hint="a mask and is_causal together: add the causal triangle's -inf to the mask's bias, "
                         "do not let one replace the other")


def test_weights_are_softmax_of_scaled_scores():
    """return_weights gives softmax(q k^T / sqrt(d)): rows sum to 1, shape (..., Tq, Tk)"""
    rng = np.random.default_rng(24)
    q0, k0, v0 = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 6, 8)), rng.standard_normal((2, 3, 6, 5))
    result = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), return_weights=True)
    expect_equal(kind_of(result), "tuple of 2", call="type of scaled_dot_product_attention(q, k, v, return_weights=True)",
                 hint="return (out, weights) when return_weights is True")
    out, weights = result
    call = "scaled_dot_product_attention(q (2, 3, 4, 8), k (2, 3, 6, 8), v, return_weights=True)[1]"
    expect_close(weights, softmax(q0 @ np.swapaxes(k0, -1, -2) / np.sqrt(8)), rtol=RTOL, atol=ATOL, call=call,
                 hint="weights = softmax(q @ k^T / sqrt(d)) along the keys; d = 8 is q's last axis, so divide by sqrt(8)")
    expect_close(np.asarray(weights.data).sum(axis=-1), np.ones((2, 3, 4)), rtol=1e-12, atol=1e-12,
                 call=f"{call}.sum(axis=-1)", hint="Softmax(dim=-1): each query's weights over the keys sum to 1")
    expect_close(out, softmax(q0 @ np.swapaxes(k0, -1, -2) / np.sqrt(8)) @ v0, rtol=RTOL, atol=ATOL,
                 call="out of the same call", hint="out = weights @ v")


def test_causal_attention_never_sees_the_future():
    """With is_causal, changing tokens after position t leaves outputs 0..t exactly unchanged"""
    rng = np.random.default_rng(25)
    T = 6
    q0, k0, v0 = rng.standard_normal((2, 2, T, 4)), rng.standard_normal((2, 2, T, 4)), rng.standard_normal((2, 2, T, 3))
    for how, kwargs in (("is_causal=True", {"is_causal": True}), ("attn_mask=causal_mask(6)", {"attn_mask": causal_mask(T)})):
        out, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), return_weights=True, **kwargs)
        expect_equal(np.triu(np.asarray(weights.data), k=1), np.zeros((2, 2, T, T)),
                     call=f"weights above the diagonal of scaled_dot_product_attention(q, k, v, {how}, return_weights=True)",
                     hint="exactly 0 on every future key: forbidden scores must be -inf (not a large negative number) "
                          "before the softmax")
        for t in range(T - 1):
            q1, k1, v1 = q0.copy(), k0.copy(), v0.copy()
            for array in (q1, k1, v1):
                array[..., t + 1:, :] += 50.0 * rng.standard_normal(array[..., t + 1:, :].shape)
            changed = scaled_dot_product_attention(Tensor(q1), Tensor(k1), Tensor(v1), **kwargs)
            expect_that((np.asarray(out.data)[..., : t + 1, :], np.asarray(changed.data)[..., : t + 1, :]), identical,
                        call=f"outputs 0..{t} of scaled_dot_product_attention(q, k, v, {how}), before and after "
                             f"changing q, k, v at positions {t + 1}..{T - 1}",
                        expected="exactly the same numbers",
                        hint="position i must read only keys j <= i: a later token may not change it at all")


def test_padding_is_invisible():
    """Changing the keys and values at padding positions leaves the real tokens' outputs unchanged"""
    rng = np.random.default_rng(26)
    lengths = [5, 3, 1]
    mask = padding_mask(lengths, 5)
    q0, k0, v0 = rng.standard_normal((3, 2, 5, 4)), rng.standard_normal((3, 2, 5, 4)), rng.standard_normal((3, 2, 5, 3))
    out, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), attn_mask=mask, return_weights=True)
    k1, v1 = k0.copy(), v0.copy()
    for b, length in enumerate(lengths):
        k1[b, :, length:] = 100.0 * rng.standard_normal(k1[b, :, length:].shape)
        v1[b, :, length:] = 100.0 * rng.standard_normal(v1[b, :, length:].shape)
        expect_equal(np.asarray(weights.data)[b, :, :, length:], np.zeros((2, 5, 5 - length)),
                     call=f"weights on the padding keys of sequence {b} (length {length})",
                     hint="padding keys must get -inf scores, so softmax gives them exactly 0")
    changed = scaled_dot_product_attention(Tensor(q0), Tensor(k1), Tensor(v1), attn_mask=mask)
    for b, length in enumerate(lengths):
        expect_that((np.asarray(out.data)[b, :, :length], np.asarray(changed.data)[b, :, :length]), identical,
                    call=f"outputs of the {length} real tokens of sequence {b}, before and after changing its "
                         f"padding keys/values", expected="exactly the same numbers",
                    hint="no real token may read a padding position")


def test_fully_masked_rows_give_zeros_not_nan():
    """A query that may read no key gets output 0 and zero gradient (as torch), never nan"""
    rng = np.random.default_rng(27)
    q0, k0, v0 = rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((2, 2, 4, 2))
    left_padding = np.array([[True, True, True, True], [False, False, True, True]])[:, None, None, :]
    mask = np.tril(np.ones((4, 4), bool)) & left_padding  # sequence 1, queries 0 and 1: nothing allowed
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        check_attention(q0, k0, v0, mask=mask, what=", attn_mask=causal & left padding (rows with no allowed key)",
                        hint="a row that is -inf everywhere makes softmax compute -inf - (-inf) = nan: find those rows "
                             "in the bias first, put 0 there, and multiply their weights by 0 after the softmax")
        _, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), attn_mask=mask, return_weights=True)
    expect_equal(np.asarray(weights.data)[1, :, :2], np.zeros((2, 2, 4)),
                 call="weights of the fully masked rows (sequence 1, queries 0 and 1)",
                 hint="a query that may read nothing gets weights 0 everywhere")
    float_mask = np.zeros((3, 3))
    float_mask[2] = -np.inf
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        check_attention(q0[0, 0, :3], k0[0, 0, :3], v0[0, 0, :3], mask=float_mask,
                        what=", attn_mask=float with a row of -inf",
                        hint="a float mask row that is -inf everywhere is fully masked too: output 0, not nan")


def test_attention_keeps_float32():
    """float32 q, k, v with a mask give float32 outputs and weights (the bias must not promote them)"""
    rng = np.random.default_rng(28)
    q0, k0, v0 = (rng.standard_normal((2, 5, 4)).astype(np.float32) for _ in range(3))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)[:, None, :]
    out, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), attn_mask=mask,
                                                is_causal=True, return_weights=True)
    for name, tensor in (("out", out), ("weights", weights)):
        expect_equal(tensor.dtype, np.dtype(np.float32), call=f"{name}.dtype of attention on float32 inputs",
                     hint="scale with a Python float and build the -inf bias in the scores' dtype: "
                          "a float64 array added to float32 scores makes everything float64")
    reference = torch_attention(q0.astype(np.float64), k0.astype(np.float64), v0.astype(np.float64),
                                np.tril(np.ones((5, 5), bool)) & mask, False, np.zeros((2, 5, 4)))
    expect_close(out, reference[0], rtol=1e-5, atol=1e-6, call="attention on float32 inputs, causal and padded",
                 hint=SDPA_HINT)
    left_padded = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=bool)[:, None, :]  # queries 0, 1 of row 0 read nothing
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dead = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), attn_mask=left_padded, is_causal=True)
    expect_equal(dead.dtype, np.dtype(np.float32), call="out.dtype of float32 attention with fully masked rows",
                 hint="the 0/1 factor that zeroes the fully masked rows must be in the scores' dtype too")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        expect_close(dead, torch_attention(q0.astype(np.float64), k0.astype(np.float64), v0.astype(np.float64),
                                           np.tril(np.ones((5, 5), bool)) & left_padded, False, np.zeros((2, 5, 4)))[0],
                     rtol=1e-5, atol=1e-6, call="float32 attention with fully masked rows (left padding and causal)",
                     hint="rows with no allowed key give 0")


def test_attention_shape_errors():
    """Mismatched q/k sizes or k/v lengths raise a ValueError; matching ones, even with Tq != Tk, work"""
    rng = np.random.default_rng(29)
    q0, k0, v0 = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 6))
    q, k, v = Tensor(q0), Tensor(k0), Tensor(v0)
    expect_raises(ValueError, lambda: scaled_dot_product_attention(q, Tensor(rng.standard_normal((2, 5, 2))), v),
                  call="scaled_dot_product_attention(q (2, 4, 3), k (2, 5, 2), v (2, 5, 6))",
                  hint="q and k must share their last axis d: a dot product needs vectors of equal length")
    expect_raises(ValueError, lambda: scaled_dot_product_attention(q, k, Tensor(rng.standard_normal((2, 4, 6)))),
                  call="scaled_dot_product_attention(q (2, 4, 3), k (2, 5, 3), v (2, 4, 6))",
                  hint="k and v must have the same number of positions Tk: one value per key")
    expect_close(scaled_dot_product_attention(q, k, v), softmax(q0 @ np.swapaxes(k0, -1, -2) / np.sqrt(3)) @ v0,
                 rtol=RTOL, atol=ATOL, call="scaled_dot_product_attention(q (2, 4, 3), k (2, 5, 3), v (2, 5, 6))",
                 hint="4 queries may read 5 keys: only d (q, k) and Tk (k, v) have to agree")


def test_attention_central_differences():
    """Attention's gradients for q, k and v agree with central differences (eps 1e-6), with a mask"""
    rng = np.random.default_rng(30)
    arrays = [rng.standard_normal((1, 3, 2)), rng.standard_normal((1, 4, 2)), rng.standard_normal((1, 4, 3))]
    mask = np.array([[True, True, False, True], [False, True, True, True], [True, False, False, False]])
    probe = rng.standard_normal((1, 3, 3))

    def loss(q, k, v):
        with no_grad():
            return float(np.sum(scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), attn_mask=mask).data * probe))

    leaves = [leaf(a) for a in arrays]
    scaled_dot_product_attention(*leaves, attn_mask=mask).backward(probe)
    for index, name in enumerate("qkv"):
        numeric = np.zeros_like(arrays[index])
        for position in np.ndindex(*arrays[index].shape):
            shifted = [a.copy() for a in arrays]
            shifted[index][position] += 1e-6
            up = loss(*shifted)
            shifted[index][position] -= 2e-6
            numeric[position] = (up - loss(*shifted)) / 2e-6
        expect_that((leaves[index].grad, numeric), matches_slope, 1e-5, 1e-8,
                    call=f"({name}.grad, central differences) of sum(scaled_dot_product_attention(q, k, v, attn_mask) * probe)",
                    expected="the gradient equal to the slope (L(v + eps) - L(v - eps)) / (2 eps) of every number",
                    hint="build attention from Tensor operations so that module 05 differentiates what you computed")


def test_attention_dropout_drops_weights():
    """dropout_p drops attention weights (inverted dropout, before @ v); the returned weights are the undropped ones"""
    rng = np.random.default_rng(31)
    tk = 5
    q0, k0 = rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, tk, 4))
    # v = [I | 2I]: each half of the output is the dropped weights themselves
    v0 = np.broadcast_to(np.concatenate([np.eye(tk), 2 * np.eye(tk)], axis=1), (2, 3, tk, 2 * tk)).copy()
    manual_seed(0)
    out, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), dropout_p=0.5, return_weights=True)
    call = "scaled_dot_product_attention(q, k, v = [I | 2I], dropout_p=0.5, return_weights=True)"
    expect_close(weights, softmax(q0 @ np.swapaxes(k0, -1, -2) / 2.0), rtol=RTOL, atol=ATOL, call=f"{call}[1]",
                 hint="the weights returned are the softmax before dropout")
    expect_that((out, weights), dropped_attention, tk, 0.5, call=f"{call}[0] against the weights",
                expected="out = dropout(weights) @ v: each weight either 0 or weight / (1 - p), about half of them 0, "
                         "the same ones in both halves of v",
                hint="apply module 03's Dropout(dropout_p) to the weights, then @ v (not to the output)")


# -- heads -----------------------------------------------------------------------------------


def test_split_and_merge_heads():
    """split_heads cuts E into H pieces of D as (B, H, T, D); merge_heads undoes it exactly"""
    x0 = np.arange(2 * 5 * 6, dtype=np.float64).reshape(2, 5, 6)
    split = split_heads(Tensor(x0), 3)
    expect_equal(tuple(split.shape), (2, 3, 5, 2), call="split_heads(x (2, 5, 6), 3).shape",
                 hint="(B, T, E) -> reshape (B, T, H, D) -> transpose(1, 2) -> (B, H, T, D)")
    expect_equal(np.asarray(split.data), x0.reshape(2, 5, 3, 2).transpose(0, 2, 1, 3), call="split_heads(x (2, 5, 6), 3)",
                 hint="head h holds columns h*D to (h+1)*D - 1 of every position")
    merged = merge_heads(Tensor(x0.reshape(2, 5, 3, 2).transpose(0, 2, 1, 3)))
    expect_equal(tuple(merged.shape), (2, 5, 6), call="merge_heads(heads (2, 3, 5, 2)).shape",
                 hint="(B, H, T, D) -> transpose(1, 2) -> (B, T, H, D) -> reshape (B, T, H * D)")
    expect_equal(np.asarray(merged.data), x0, call="merge_heads(heads (2, 3, 5, 2))",
                 hint="merge is the exact inverse of split: transpose back before the reshape")


# -- MultiheadAttention ----------------------------------------------------------------------


def mha_params(embed_dim, bias=True, seed=0, dtype=np.float64):
    """The test's own weights for the four projections, by their names."""
    rng = np.random.default_rng(seed)
    params = {}
    for proj in PROJECTIONS:
        params[f"{proj}.weight"] = (0.5 * rng.standard_normal((embed_dim, embed_dim))).astype(dtype)
        if bias:
            params[f"{proj}.bias"] = (0.5 * rng.standard_normal(embed_dim)).astype(dtype)
    return params


def make_mha(embed_dim, num_heads, bias=True, seed=0, dropout=0.0):
    """Our MultiheadAttention holding mha_params(seed) in float64 (its own initial numbers replaced)."""
    ours = MultiheadAttention(embed_dim, num_heads, bias=bias, dropout=dropout)
    params = mha_params(embed_dim, bias, seed)
    for name, value in params.items():
        layer_name, attribute = name.split(".")
        getattr(getattr(ours, layer_name), attribute).data = value.copy()
    return ours, params


def check_mha(embed_dim, num_heads, b, tq, tk=None, *, bias=True, self_attention=True, ours_kwargs=None,
              torch_masks=None, what="", hint="", seed=0):
    """Forward, per-head weights and every gradient of ours against torch.nn.MultiheadAttention."""
    rng = np.random.default_rng(seed + 1000)
    ours, params = make_mha(embed_dim, num_heads, bias=bias, seed=seed)
    tk = tq if tk is None else tk
    arrays = [rng.standard_normal((b, tq, embed_dim))]
    if not self_attention:
        arrays += [rng.standard_normal((b, tk, embed_dim)), rng.standard_normal((b, tk, embed_dim))]
    upstream = rng.standard_normal((b, tq, embed_dim))
    leaves = [leaf(a) for a in arrays]
    call = (f"MultiheadAttention({embed_dim}, {num_heads}{'' if bias else ', bias=False'})"
            f"({'x' if self_attention else 'query, key, value'} (B={b}, Tq={tq}, Tk={tk}){what}, need_weights=True)")
    result = ours(*leaves, need_weights=True, **(ours_kwargs or {}))
    expect_equal(kind_of(result), "tuple of 2", call=f"type of {call}", hint="with need_weights=True return (out, weights)")
    out, weights = result
    reference = torch_mha(params, arrays, upstream, num_heads, bias=bias, self_attention=self_attention,
                          **(torch_masks or {}))
    hint = hint or "project with q_proj/k_proj/v_proj, split_heads, attention on (B, H, T, D), merge_heads, out_proj"
    expect_close(out, reference["out"], rtol=RTOL, atol=ATOL, call=call, hint=hint)
    expect_close(weights, reference["weights"], rtol=RTOL, atol=ATOL, call=f"{call}[1] (per-head weights)",
                 hint="the weights of every head, shape (B, H, Tq, Tk) (not averaged over the heads), each head "
                      "scaled by 1 / sqrt(embed_dim // num_heads)")
    out.backward(upstream)
    names = ["x"] if self_attention else ["query", "key", "value"]
    for index, (name, ours_leaf) in enumerate(zip(names, leaves)):
        expect_close(ours_leaf.grad, reference["inputs"][index], rtol=RTOL, atol=ATOL,
                     call=f"{name}.grad after {call}.backward(g)",
                     hint="the inputs reach the output only through Tensor operations; with self-attention x "
                          "is used three times and collects three gradients")
    for name in params:
        layer_name, attribute = name.split(".")
        expect_close(getattr(getattr(ours, layer_name), attribute).grad, reference["params"][name], rtol=RTOL,
                     atol=ATOL, call=f"{name}.grad after {call}.backward(g)",
                     hint="use the Linear layers q_proj, k_proj, v_proj, out_proj in forward (None: that layer was "
                          "not used); torch stacks q/k/v into in_proj_weight (3E, E), rows 0..E-1 are q_proj")


def test_multihead_attention_parameters():
    """MultiheadAttention has Linear q_proj, k_proj, v_proj, out_proj (E -> E), as many numbers as torch's"""
    mha = MultiheadAttention(12, 3)
    expect_equal([name for name, _ in mha.named_parameters()],
                 [f"{p}.{w}" for p in PROJECTIONS for w in ("weight", "bias")],
                 call="[name for name, _ in MultiheadAttention(12, 3).named_parameters()]",
                 hint="assign self.q_proj, self.k_proj, self.v_proj, self.out_proj = Linear(embed_dim, embed_dim, bias=bias)")
    expect_equal({name: tuple(p.shape) for name, p in mha.named_parameters()}["k_proj.weight"], (12, 12),
                 call="MultiheadAttention(12, 3).k_proj.weight.shape", hint="every projection maps embed_dim to embed_dim")
    expect_equal(mha.num_parameters(), sum(p.numel() for p in torch.nn.MultiheadAttention(12, 3).parameters()),
                 call="MultiheadAttention(12, 3).num_parameters()", hint="4 * (E * E + E): four projections with biases")
    expect_equal(MultiheadAttention(12, 3, bias=False).num_parameters(),
                 sum(p.numel() for p in torch.nn.MultiheadAttention(12, 3, bias=False).parameters()),
                 call="MultiheadAttention(12, 3, bias=False).num_parameters()", hint="bias=False: 4 * E * E, no biases")
    ours, params = make_mha(12, 3, seed=11)
    x0 = np.random.default_rng(12).standard_normal((2, 3, 12))
    expect_close(ours(Tensor(x0)), torch_mha(params, [x0], np.zeros((2, 3, 12)), 3)["out"], rtol=RTOL, atol=ATOL,
                 call="MultiheadAttention(12, 3)(x (2, 3, 12)) holding the test's weights",
                 hint="out_proj(merge_heads(attention(split_heads(q_proj(x)), split_heads(k_proj(x)), split_heads(v_proj(x)))))")


def test_multihead_projections_start_xavier_uniform():
    """The four projections start from Xavier uniform weights and zero biases, like torch's in_proj"""
    manual_seed(0)
    mha = MultiheadAttention(64, 4)
    bound = float(np.sqrt(6.0 / (64 + 64)))
    for name in PROJECTIONS:
        layer = getattr(mha, name)
        expect_that(layer.weight, xavier_uniform, bound, call=f"MultiheadAttention(64, 4).{name}.weight at init",
                    expected=f"uniform on [-{bound:.4f}, {bound:.4f}] = sqrt(6 / (fan_in + fan_out)): "
                             f"std {bound / np.sqrt(3):.4f}, mean 0",
                    hint="Linear(embed_dim, embed_dim, init='xavier'): module 03's default Kaiming normal "
                         "(std sqrt(2 / fan_in)) is meant for ReLU layers, not for attention's projections")
        expect_equal(np.asarray(layer.bias.data).tolist(), [0.0] * 64, call=f"MultiheadAttention(64, 4).{name}.bias at init",
                     hint="biases start at zero")


def test_multihead_self_attention_matches_torch():
    """Self-attention: output, per-head weights and every gradient equal torch.nn.MultiheadAttention's"""
    check_mha(8, 2, b=2, tq=5, seed=1)


def test_multihead_cross_attention_matches_torch():
    """Cross-attention (key and value of another length) matches torch, gradients of all three inputs too"""
    check_mha(6, 3, b=2, tq=3, tk=5, self_attention=False, seed=2,
              hint="queries come from `query`, keys from `key` (k_proj) and values from `value` (v_proj); "
                   "Tq and Tk may differ")


def test_multihead_single_head_without_bias_matches_torch():
    """One head and bias=False match torch (the head is all of E, scaled by 1 / sqrt(E))"""
    check_mha(4, 1, b=1, tq=4, bias=False, seed=3)


def test_multihead_causal_matches_torch():
    """is_causal=True matches torch given attn_mask=~causal_mask(T) (torch's True means NOT allowed)"""
    check_mha(8, 4, b=2, tq=5, ours_kwargs={"is_causal": True},
              torch_masks={"attn_mask": ~np.tril(np.ones((5, 5), bool))}, what=", is_causal=True", seed=4,
              hint="pass is_causal through to scaled_dot_product_attention")


def test_multihead_padding_and_causal_match_torch():
    """A padding mask (and causal) matches torch's key_padding_mask (True = padding) and attn_mask"""
    lengths = [5, 2]
    allowed = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool)[:, None, None, :]
    pad = ~allowed[:, 0, 0, :]  # torch: True at the padding
    check_mha(6, 2, b=2, tq=5, ours_kwargs={"attn_mask": allowed},
              torch_masks={"key_padding_mask": pad}, what=", attn_mask=padding (2, 1, 1, 5) of lengths [5, 2]", seed=5,
              hint="pass attn_mask through; the (B, 1, 1, T) padding mask broadcasts against the (B, H, Tq, Tk) scores")
    check_mha(6, 2, b=2, tq=5, ours_kwargs={"attn_mask": padding_mask(lengths, 5), "is_causal": True},
              torch_masks={"key_padding_mask": pad, "attn_mask": ~np.tril(np.ones((5, 5), bool))},
              what=", attn_mask=padding_mask([5, 2], 5), is_causal=True", seed=6,
              hint="with both a mask and is_causal, a key is allowed only where both allow it")


def test_multihead_cross_attention_with_masks_matches_torch():
    """Cross-attention with a boolean (Tq, Tk) mask, and with a float mask, matches torch"""
    rng = np.random.default_rng(7)
    allowed = rng.random((3, 4)) < 0.6
    allowed[:, 1] = True
    check_mha(6, 2, b=2, tq=3, tk=4, self_attention=False, ours_kwargs={"attn_mask": allowed},
              torch_masks={"attn_mask": ~allowed}, what=", attn_mask=bool (3, 4)", seed=7,
              hint="tinytorch's True = allowed is torch.nn.MultiheadAttention's False: the test passes ~mask to torch")
    float_mask = rng.standard_normal((3, 4))
    check_mha(6, 2, b=2, tq=3, tk=4, self_attention=False, ours_kwargs={"attn_mask": float_mask},
              torch_masks={"attn_mask": float_mask}, what=", attn_mask=float (3, 4)", seed=8,
              hint="a float mask is added to every head's scores")


@settings(max_examples=10)
@given(b=st.integers(1, 2), tq=st.integers(1, 4), tk=st.integers(1, 4), heads=st.integers(1, 3),
       head_dim=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_multihead_any_shape_matches_torch(b, tq, tk, heads, head_dim, seed):
    """Cross-attention matches torch for batch sizes, lengths, head counts and head sizes drawn at random"""
    check_mha(heads * head_dim, heads, b=b, tq=tq, tk=tk, self_attention=False, seed=seed)


def test_multihead_dropout_only_in_training():
    """MultiheadAttention(dropout=0.5) equals torch's in eval mode, and drops attention weights in training"""
    ours, params = make_mha(8, 2, seed=54, dropout=0.5)
    x0 = np.random.default_rng(55).standard_normal((2, 6, 8))
    ours.eval()
    evaluated = ours(Tensor(x0))
    reference = torch_mha(params, [x0], np.zeros((2, 6, 8)), 2, dropout=0.5)
    expect_close(evaluated, reference["out"], rtol=RTOL, atol=ATOL, call="MultiheadAttention(8, 2, dropout=0.5).eval()(x)",
                 hint="in evaluation mode dropout does nothing: pass dropout_p=0.0 unless self.training")
    ours.train()
    manual_seed(0)
    trained = ours(Tensor(x0))
    expect_that((evaluated, trained), different, 1e-3, call="MultiheadAttention(8, 2, dropout=0.5): eval(x) and train()(x)",
                expected="different outputs: in training mode half of the attention weights are dropped",
                hint="in training mode pass dropout_p=self.dropout to the attention, which drops weights before @ v")


def test_multihead_embed_dim_must_divide():
    """MultiheadAttention(10, 3) raises a ValueError: 3 heads cannot share 10 dimensions; 12 and 3 work"""
    expect_raises(ValueError, lambda: MultiheadAttention(10, 3), call="MultiheadAttention(embed_dim=10, num_heads=3)",
                  hint="each head gets embed_dim // num_heads dimensions, so num_heads must divide embed_dim")
    expect_raises(ValueError, lambda: MultiheadAttention(6, 4), call="MultiheadAttention(embed_dim=6, num_heads=4)",
                  hint="check embed_dim % num_heads == 0 in __init__")
    ours, params = make_mha(12, 3, seed=9)
    x0 = np.random.default_rng(10).standard_normal((1, 4, 12))
    expect_close(ours(Tensor(x0)), torch_mha(params, [x0], np.zeros((1, 4, 12)), 3)["out"], rtol=RTOL, atol=ATOL,
                 call="MultiheadAttention(12, 3)(x (1, 4, 12))", hint="3 heads of 4 dimensions each")


def test_multihead_central_differences():
    """MultiheadAttention's gradients (input and projections) agree with central differences"""
    rng = np.random.default_rng(40)
    mha, _ = make_mha(4, 2, seed=40)
    x0 = rng.standard_normal((1, 3, 4))
    probe = rng.standard_normal((1, 3, 4))
    x = leaf(x0)
    mha(x, is_causal=True).backward(probe)

    def loss() -> float:
        with no_grad():
            return float(np.sum(mha(Tensor(x0), is_causal=True).data * probe))

    targets = [("x", x0, x.grad), ("q_proj.weight", mha.q_proj.weight.data, mha.q_proj.weight.grad),
               ("v_proj.bias", mha.v_proj.bias.data, mha.v_proj.bias.grad),
               ("out_proj.weight", mha.out_proj.weight.data, mha.out_proj.weight.grad)]
    for name, array, grad in targets:
        numeric = np.zeros_like(array)
        for position in np.ndindex(*array.shape):
            original = array[position]
            array[position] = original + 1e-6
            up = loss()
            array[position] = original - 1e-6
            down = loss()
            array[position] = original
            numeric[position] = (up - down) / 2e-6
        expect_that((grad, numeric), matches_slope, 1e-5, 1e-8,
                    call=f"({name}.grad, central differences) of sum(mha(x, is_causal=True) * probe)",
                    expected="the gradient equal to the slope (L(w + eps) - L(w - eps)) / (2 eps) of every number w",
                    hint="every parameter is used through Tensor operations, so autograd differentiates it")


def test_multihead_keeps_float32():
    """A freshly built MultiheadAttention is float32 and returns float32 outputs for float32 input"""
    mha = MultiheadAttention(8, 2)
    expect_equal({name: str(p.dtype) for name, p in mha.named_parameters()},
                 {f"{p}.{w}": "float32" for p in PROJECTIONS for w in ("weight", "bias")},
                 call="dtypes of MultiheadAttention(8, 2).named_parameters()", hint="Linear layers make float32 parameters")
    params = mha_params(8, seed=41, dtype=np.float32)
    mha.load_state_dict(params)
    x = np.random.default_rng(41).standard_normal((2, 3, 8)).astype(np.float32)
    allowed = np.array([[1, 1, 1], [1, 0, 0]], dtype=bool)[:, None, None, :]
    out = mha(Tensor(x), attn_mask=allowed, is_causal=True)
    expect_equal(out.dtype, np.dtype(np.float32), call="MultiheadAttention(8, 2)(float32 x, masks).dtype",
                 hint="keep the masks' bias in the scores' dtype")
    expect_close(out, torch_mha({k: v.astype(np.float64) for k, v in params.items()}, [x], np.zeros((2, 3, 8)), 2,
                                attn_mask=~np.tril(np.ones((3, 3), bool)), key_padding_mask=~allowed[:, 0, 0])["out"],
                 rtol=1e-4, atol=1e-5, call="MultiheadAttention(8, 2)(float32 x (2, 3, 8), padding, is_causal=True)",
                 hint="project, split the heads, attend with both masks, merge, out_proj")
