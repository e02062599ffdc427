"""Hidden checks for module 12 (attention): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.attention import MultiheadAttention, causal_mask, padding_mask, scaled_dot_product_attention
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def against_torch(q0, k0, v0, ours_kwargs, torch_mask, call, hint):
    """Compare output and q/k/v gradients with torch's math kernel in float64."""
    q, k, v = (Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in (q0, k0, v0))
    out = scaled_dot_product_attention(q, k, v, **ours_kwargs)
    tq, tk, tv = (torch.tensor(np.ascontiguousarray(a, dtype=np.float64), requires_grad=True) for a in (q0, k0, v0))
    with sdpa_kernel(SDPBackend.MATH):
        expected = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=None if torch_mask is None else torch.tensor(torch_mask))
    expect_close(out, expected.detach(), rtol=RTOL, atol=ATOL, call=call, hint=hint)
    upstream = np.random.default_rng(0).standard_normal(tuple(expected.shape))
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for name, ours, theirs in (("q", q, tq), ("k", k, tk), ("v", v, tv)):
        expect_close(ours.grad, theirs.grad, rtol=RTOL, atol=ATOL, call=f"{name}.grad after {call}.backward(g)", hint=hint)


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
        against_torch(q0, k0, v0, {"attn_mask": mask}, np.asarray(mask),
                      "scaled_dot_product_attention(q, k, v, attn_mask=padding_mask([0, 3], 3))",
                      "rows with no allowed key: 0 in the bias before the softmax, weights times 0 after")


def test_integer_mask_is_rejected():
    """A 0/1 integer mask is ambiguous and raises a TypeError (use bool: True = allowed)"""
    q = Tensor(np.ones((1, 3, 2)))
    expect_raises(TypeError, lambda: scaled_dot_product_attention(q, q, q, attn_mask=np.tril(np.ones((3, 3), dtype=np.int64))),
                  call="scaled_dot_product_attention(q, k, v, attn_mask=int64 0/1 matrix)",
                  hint="only boolean masks (True = allowed) and float masks (added to the scores) are accepted")


def test_dropout_only_in_training():
    """MultiheadAttention(dropout=0.5) matches torch in eval mode and drops attention in training"""
    rng = np.random.default_rng(54)
    mha = MultiheadAttention(8, 2, dropout=0.5)
    theirs = torch.nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True, dtype=torch.float64)
    layers = (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj)
    for layer in layers:
        layer.weight = Tensor(0.5 * rng.standard_normal((8, 8)), requires_grad=True)
        layer.bias = Tensor(0.5 * rng.standard_normal(8), requires_grad=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.tensor(np.concatenate([layer.weight.data for layer in layers[:3]])))
        theirs.in_proj_bias.copy_(torch.tensor(np.concatenate([layer.bias.data for layer in layers[:3]])))
        theirs.out_proj.weight.copy_(torch.tensor(mha.out_proj.weight.data))
        theirs.out_proj.bias.copy_(torch.tensor(mha.out_proj.bias.data))
    theirs.eval()
    x0 = rng.standard_normal((2, 6, 8))
    mha.eval()
    evaluated = mha(Tensor(x0))
    expected, _ = theirs(*(torch.tensor(x0),) * 3)
    expect_close(evaluated, expected.detach(), rtol=RTOL, atol=ATOL, call="MultiheadAttention(8, 2, dropout=0.5).eval()(x)",
                 hint="in evaluation mode dropout does nothing")
    mha.train()
    trained = mha(Tensor(x0))
    expect_true(not np.allclose(trained.data, evaluated.data), call="MultiheadAttention(8, 2, dropout=0.5).train()(x)",
                expected="an output different from eval mode (attention weights dropped)", got="the eval-mode output",
                hint="in training mode pass dropout_p=self.dropout to the attention, which drops weights before @ v")


def test_multihead_wrong_width_raises():
    """An input whose last axis is not embed_dim raises a ValueError"""
    mha = MultiheadAttention(8, 2)
    expect_raises(ValueError, lambda: mha(Tensor(np.ones((2, 3, 6), dtype=np.float32))),
                  call="MultiheadAttention(8, 2)(x of shape (2, 3, 6))",
                  hint="inputs are (B, T, embed_dim); say which shape was expected")
