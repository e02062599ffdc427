"""Hidden checks for module 12 (attention): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
# the checkpoint's oracles and predicates: both files test against one reference
from tests.checkpoints.test_12_attention import different, make_mha, softmax, torch_attention, torch_mha
from tinytorch.attention import MultiheadAttention, causal_mask, padding_mask, scaled_dot_product_attention
from tinytorch.tensor import Tensor, manual_seed

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def against_torch(q0, k0, v0, ours_kwargs, torch_mask, call, hint):
    """Compare output and q/k/v gradients with torch's math kernel in float64."""
    q, k, v = (Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in (q0, k0, v0))
    out = scaled_dot_product_attention(q, k, v, **ours_kwargs)
    upstream = np.random.default_rng(0).standard_normal(q0.shape[:-1] + v0.shape[-1:])
    reference = torch_attention(np.ascontiguousarray(q0), np.ascontiguousarray(k0), np.ascontiguousarray(v0),
                                torch_mask, False, upstream)
    expect_close(out, reference[0], rtol=RTOL, atol=ATOL, call=call, hint=hint)
    out.backward(upstream)
    for index, (name, ours) in enumerate((("q", q), ("k", k), ("v", v)), start=1):
        expect_close(ours.grad, reference[index], rtol=RTOL, atol=ATOL, call=f"{name}.grad after {call}.backward(g)",
                     hint=hint)


def nothing_above_diagonal(out, width) -> bool:
    """out = dropout(causal weights) @ [I | 2I]: query i's weights on keys j > i are exactly 0 in both halves."""
    out = np.asarray(out, dtype=np.float64)
    first, second = out[..., :width], out[..., width:]
    return first.shape == second.shape and bool(np.all(np.triu(first, 1) == 0) and np.all(np.triu(second, 1) == 0))


def test_is_causal_combines_with_a_mask():
    """is_causal=True together with a boolean attn_mask allows only what both allow"""
    expect_equal(np.asarray(causal_mask(2, 3)), np.array([[True, False, False], [True, True, False]]),
                 call="causal_mask(2, key_len=3)", hint="the (Tq, Tk) triangle aligned at the top left, like torch")
    rng = np.random.default_rng(51)
    allowed = rng.random((2, 1, 5, 5)) < 0.7
    allowed[..., 0] = True
    q0, k0, v0 = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    against_torch(q0, k0, v0, {"attn_mask": allowed, "is_causal": True}, allowed & np.tril(np.ones((5, 5), bool)),
                  "scaled_dot_product_attention(q, k, v, attn_mask=bool (2, 1, 5, 5), is_causal=True)",
                  "add the causal triangle's -inf to the mask's bias; do not let one replace the other")


def test_huge_scores_and_non_contiguous_inputs():
    """Scores around 1e5 stay finite and exact, and transposed (non-contiguous) inputs work"""
    rng = np.random.default_rng(52)
    q0 = (300.0 * rng.standard_normal((2, 4, 6))).transpose(0, 2, 1)    # (2, 6, 4), a strided view
    k0 = (300.0 * rng.standard_normal((2, 4, 7))).transpose(0, 2, 1)
    v0 = rng.standard_normal((2, 3, 7)).transpose(0, 2, 1)
    against_torch(q0, k0, v0, {"is_causal": True}, np.tril(np.ones((6, 7), bool)),
                  "scaled_dot_product_attention(huge, transposed q, k, v, is_causal=True)",
                  "module 02's stable Softmax subtracts the row maximum, so huge scores cannot overflow")


def test_empty_sequence_gives_zeros():
    """A padding length of 0 masks every key: that sequence's outputs are 0 (as torch), not nan"""
    rng = np.random.default_rng(53)
    q0, k0, v0 = (rng.standard_normal((2, 2, 3, 4)) for _ in range(3))
    mask = padding_mask([0, 3], 3)
    expect_equal(np.asarray(mask)[0], np.zeros((1, 1, 3), bool), call="padding_mask([0, 3], 3)[0]",
                 hint="a sequence of length 0 has no real token")
    with np.errstate(invalid="ignore", divide="ignore"):
        against_torch(q0, k0, v0, {"attn_mask": np.array([[False] * 3, [True] * 3])[:, None, None, :]},
                      np.array([[False] * 3, [True] * 3])[:, None, None, :],
                      "scaled_dot_product_attention(q, k, v, attn_mask=padding of lengths [0, 3])",
                      "rows with no allowed key: 0 in the bias before the softmax, weights times 0 after")


def test_integer_mask_is_rejected():
    """A 0/1 integer mask is ambiguous and raises a TypeError (use bool: True = allowed)"""
    q0 = np.random.default_rng(56).standard_normal((1, 3, 2))
    q = Tensor(q0)
    expect_raises(TypeError, lambda: scaled_dot_product_attention(q, q, q, attn_mask=np.tril(np.ones((3, 3), dtype=np.int64))),
                  call="scaled_dot_product_attention(q, k, v, attn_mask=int64 0/1 matrix)",
                  hint="only boolean masks (True = allowed) and float masks (added to the scores) are accepted")
    expect_close(scaled_dot_product_attention(q, q, q, attn_mask=np.tril(np.ones((3, 3), dtype=bool))),
                 torch_attention(q0, q0, q0, np.tril(np.ones((3, 3), dtype=bool)), False, np.zeros((1, 3, 2)))[0],
                 rtol=RTOL, atol=ATOL, call="scaled_dot_product_attention(q, k, v, attn_mask=the same matrix as bool)",
                 hint="a boolean mask is the right way to say it")


def test_dropout_weights_and_masks():
    """In training, MultiheadAttention returns the undropped weights, and dropout never revives a masked key"""
    ours, params = make_mha(8, 2, seed=57, dropout=0.5)
    x0 = np.random.default_rng(58).standard_normal((2, 6, 8))
    ours.eval()
    evaluated = ours(Tensor(x0))
    ours.train()
    manual_seed(1)
    out, weights = ours(Tensor(x0), need_weights=True)
    expect_close(weights, torch_mha(params, [x0], np.zeros((2, 6, 8)), 2, dropout=0.5)["weights"], rtol=RTOL, atol=ATOL,
                 call="MultiheadAttention(8, 2, dropout=0.5).train()(x, need_weights=True)[1]",
                 hint="the weights returned are the softmax before dropout (dropout only changes what is read from v)")
    expect_that((evaluated, out), different, 1e-3, call="MultiheadAttention(8, 2, dropout=0.5): eval()(x) and train()(x)",
                expected="different outputs (attention weights dropped in training)",
                hint="in training mode pass dropout_p=self.dropout to the attention")
    rng = np.random.default_rng(59)
    eye = np.eye(5)
    v0 = np.broadcast_to(np.concatenate([eye, 2 * eye], axis=1), (2, 2, 5, 10)).copy()
    manual_seed(2)
    dropped = scaled_dot_product_attention(Tensor(rng.standard_normal((2, 2, 5, 3))), Tensor(rng.standard_normal((2, 2, 5, 3))),
                                           Tensor(v0), is_causal=True, dropout_p=0.3)
    expect_that(dropped, nothing_above_diagonal, 5, call="scaled_dot_product_attention(q, k, v = [I | 2I], is_causal=True, dropout_p=0.3)",
                expected="exactly 0 weight on every future key", hint="dropout scales the weights; it cannot undo -inf")


def test_multihead_wrong_width_raises():
    """An input whose last axis is not embed_dim raises a ValueError"""
    mha = MultiheadAttention(8, 2)
    expect_raises(ValueError, lambda: mha(Tensor(np.ones((2, 3, 6), dtype=np.float32))),
                  call="MultiheadAttention(8, 2)(x of shape (2, 3, 6))",
                  hint="inputs are (B, T, embed_dim); say which shape was expected")
    ours, params = make_mha(8, 2, seed=60)
    x0 = np.random.default_rng(61).standard_normal((1, 3, 8))
    expect_close(ours(Tensor(x0)), torch_mha(params, [x0], np.zeros((1, 3, 8)), 2)["out"], rtol=RTOL, atol=ATOL,
                 call="MultiheadAttention(8, 2)(x of shape (1, 3, 8))", hint="(B, T, embed_dim) is the right shape")


def test_single_query_reads_a_long_sequence():
    """One query (Tq = 1) reading 9 keys with a float mask matches torch, weights and all"""
    rng = np.random.default_rng(62)
    q0, k0, v0 = rng.standard_normal((3, 1, 4)), rng.standard_normal((3, 9, 4)), rng.standard_normal((3, 9, 2))
    bias = rng.standard_normal((3, 1, 9))
    out, weights = scaled_dot_product_attention(Tensor(q0), Tensor(k0), Tensor(v0), attn_mask=bias, return_weights=True)
    expect_close(weights, softmax(q0 @ np.swapaxes(k0, -1, -2) / 2.0 + bias), rtol=RTOL, atol=ATOL,
                 call="scaled_dot_product_attention(q (3, 1, 4), k (3, 9, 4), v, attn_mask=float (3, 1, 9))[1]",
                 hint="softmax over the 9 keys (the last axis), not over the single query")
    expect_close(out, torch_attention(q0, k0, v0, bias, False, np.zeros((3, 1, 2)))[0], rtol=RTOL, atol=ATOL,
                 call="scaled_dot_product_attention(q (3, 1, 4), k (3, 9, 4), v (3, 9, 2), attn_mask=float)[0]",
                 hint="out = weights @ v")
