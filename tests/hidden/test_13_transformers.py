"""Hidden checks for module 13 (transformers): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_that
# the checkpoint's torch reference GPT and predicates: both files test against one oracle
from tests.checkpoints.test_13_transformers import (
    different,
    greedy_reference,
    identical,
    numpy_params,
    only_tokens,
    t64,
    to_float64,
    torch_gpt,
    torch_params,
    torch_rope,
    torch_run,
)
from tinytorch.autograd import no_grad
from tinytorch.losses import CrossEntropyLoss
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.transformers import GPT, GPTConfig, apply_rope, sample_next_token, top_k_filter, top_p_filter

torch.set_num_threads(1)

DEEP_RTOL, DEEP_ATOL = 1e-8, 1e-10


def masked_stay_masked(filtered, logits) -> bool:
    """Every -inf logit is still -inf after filtering."""
    filtered, logits = np.asarray(filtered, dtype=np.float64), np.asarray(logits, dtype=np.float64)
    return filtered.shape == logits.shape and bool(np.all(np.isneginf(filtered[np.isneginf(logits)])))


def test_untied_gpt_without_biases_matches_torch():
    """tie_weights=False, bias=False: its own lm_head, no biases anywhere; logits, gradients and count match"""
    config = GPTConfig(vocab_size=10, block_size=6, n_layer=2, n_head=2, n_embd=8, bias=False, tie_weights=False)
    manual_seed(3)
    model = GPT(config)
    d, L, V = 8, 2, 10
    expect_equal(model.num_parameters(), 12 * L * d * d + 2 * V * d + 6 * d + 2 * L * d + d,
                 call="GPT(bias=False, tie_weights=False).num_parameters()",
                 hint="no Linear or LayerNorm biases; wte and lm_head are two matrices")
    rng = np.random.default_rng(21)
    to_float64(model, rng, 0.05)
    idx, targets = rng.integers(0, V, (2, 2, 6))
    logits = model(idx)
    reference = torch_run(lambda p: torch_gpt(idx, p, config), numpy_params(model), targets=targets)
    expect_close(logits, reference["out"], rtol=DEEP_RTOL, atol=DEEP_ATOL, call="untied GPT without biases: logits",
                 hint="the head uses lm_head.weight, not wte.weight, when tie_weights=False")
    CrossEntropyLoss()(logits.reshape(-1, V), Tensor(targets.reshape(-1))).backward()
    for name, tensor in model.named_parameters():
        expect_close(tensor.grad, reference["params"][name], rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call=f"{name}.grad (untied, no biases)", hint="wte.weight now only gets the gradient of the lookup")


def test_rope_offset_continues_the_positions():
    """apply_rope(x[..., 5:9, :], offset=5) equals rows 5..8 of apply_rope(x); float32 gradients stay float32"""
    x0 = np.random.default_rng(22).standard_normal((2, 12, 8))
    expect_close(apply_rope(Tensor(x0[:, 5:9]), offset=5), torch_rope(t64(x0)).numpy()[:, 5:9], rtol=1e-12, atol=1e-14,
                 call="apply_rope(x[:, 5:9], offset=5)", hint="positions run offset, offset + 1, ...")
    x = Tensor(x0.astype(np.float32), requires_grad=True)
    apply_rope(x).sum().backward()
    expect_equal(x.grad.dtype, np.dtype(np.float32), call="apply_rope(float32 x).sum().backward(): x.grad.dtype",
                 hint="cast cos and sin to x's dtype")
    expect_close(x.grad, torch_run(lambda tx, p: torch_rope(tx), {}, [x0], np.ones(x0.shape))["inputs"][0],
                 rtol=1e-5, atol=1e-5, call="x.grad of apply_rope(x).sum() in float32",
                 hint="rotate the gradient back by the opposite angle")


def test_generate_inputs_and_long_prompts():
    """generate accepts lists and Tensors, returns the prompt for 0 new tokens, crops a prompt beyond block_size"""
    config = GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=8)
    model = GPT(config)
    to_float64(model, np.random.default_rng(23), 0.3)
    prompt = np.array([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]])
    expect_equal(np.asarray(model.generate(prompt.tolist(), 0)), prompt, call="model.generate(prompt as a list, 0)",
                 hint="no new tokens: the prompt itself")
    got = np.asarray(model.generate(Tensor(prompt), 3, greedy=True))
    expect_equal(got, greedy_reference(model, prompt, 3, config),
                 call="model.generate(Tensor(prompt of length 6), 3, greedy=True) with block_size=4",
                 hint="crop before the first step too: tokens[:, -block_size:]")
    single = np.concatenate([np.asarray(model.generate(prompt[i:i + 1], 3, greedy=True)) for i in range(2)])
    expect_that((got, single), identical, call="greedy generation of a batch vs each row alone",
                expected="the same tokens", hint="rows do not interact")


def test_sampling_helpers_on_more_axes_and_masked_logits():
    """Filters and sampling work on (..., V) arrays, keep the dtype and never revive -inf logits"""
    inf = -np.inf
    logits = np.array([[[0.0, inf, 2.0, 1.0], [inf, inf, 5.0, 4.0]], [[3.0, 1.0, inf, 1.0], [0.5, 0.4, 0.3, inf]]],
                      dtype=np.float32)
    k2 = top_k_filter(logits, 2)
    expect_equal(k2.dtype, np.dtype(np.float32), call="top_k_filter(float32 logits, 2).dtype", hint="keep the dtype")
    expect_equal(np.isfinite(k2), np.array([[[False, False, True, True], [False, False, True, True]],
                                            [[True, True, False, True], [True, True, False, False]]]),
                 call="np.isfinite(top_k_filter(logits (2, 2, 4) with -inf entries, 2))",
                 hint="the k-th largest of each row along the last axis; tied 1.0s both stay")
    expect_that(top_p_filter(logits, 0.9), masked_stay_masked, logits, call="top_p_filter(logits with -inf, 0.9)",
                expected="masked tokens stay -inf", hint="a -inf logit has probability 0")
    tokens = sample_next_token(logits, top_p=0.9, rng=np.random.default_rng(5))
    expect_equal(np.shape(tokens), (2, 2), call="sample_next_token(logits (2, 2, 4), top_p=0.9).shape",
                 hint="one token per row: the shape without the last axis")
    draws = sample_next_token(np.tile(logits[0, 1], (5000, 1)), rng=np.random.default_rng(6))
    expect_that(draws, only_tokens, [2, 3], call="5000 draws from [-inf, -inf, 5, 4]", expected="only tokens 2 and 3",
                hint="probability 0 must never be drawn: normalise the cumulative sum to end at exactly 1")


def test_dropout_acts_in_training_only():
    """With dropout, training forwards differ; in eval mode the model equals the same weights without dropout"""
    config = GPTConfig(vocab_size=9, block_size=6, n_layer=2, n_head=2, n_embd=8, dropout=0.3)
    noisy = GPT(config)
    to_float64(noisy, np.random.default_rng(24))
    idx = np.random.default_rng(8).integers(0, 9, (2, 6))
    noisy.train()
    manual_seed(4)
    with no_grad():
        a, b = noisy(idx).data, noisy(idx).data
    expect_that((a, b), different, 1e-6, call="two training-mode forwards of GPT(dropout=0.3)", expected="different logits",
                hint="Dropout(config.dropout) on the embeddings, in attention and in the MLP")
    noisy.eval()
    with no_grad():
        expect_close(noisy(idx), torch_gpt(idx, torch_params(noisy), config).detach(), rtol=DEEP_RTOL, atol=DEEP_ATOL,
                     call="GPT(dropout=0.3).eval()(idx) against the same weights without dropout",
                     hint="in eval mode dropout is the identity, in attention too")
