"""Hidden checks for module 04 (losses): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.expect import expect_close, expect_raises, expect_true
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, kl_divergence
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time


def test_cross_entropy_refuses_negative_labels():
    """A label of -1 raises a ValueError instead of silently meaning the last class"""
    logits, labels = Tensor(np.zeros((2, 3))), Tensor(np.array([0, -1]))
    expect_raises(ValueError, lambda: CrossEntropyLoss()(logits, labels),
                  call="CrossEntropyLoss()(Tensor(np.zeros((2, 3))), Tensor([0, -1]))", message_contains="-1",
                  hint="numpy reads index -1 as the last class; check 0 <= label < C before indexing")


def test_cross_entropy_ignores_a_constant_added_to_a_row():
    """Adding a large constant to every logit of a row leaves cross-entropy unchanged"""
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(4, 5)) * 3
    labels = np.array([0, 4, 2, 2])
    offsets = np.array([[1e4], [-1e4], [5e3], [0.0]])
    base = CrossEntropyLoss(reduction="none")(Tensor(logits), Tensor(labels))
    shifted = CrossEntropyLoss(reduction="none")(Tensor(logits + offsets), Tensor(labels))
    expected = torch.nn.CrossEntropyLoss(reduction="none")(torch.tensor(logits), torch.tensor(labels))
    expect_close(base, expected, rtol=1e-10, atol=1e-12, call="CrossEntropyLoss(reduction='none')(logits, labels)",
                 hint="log(sum(exp(x - max))) - (x[label] - max) per row")
    expect_close(shifted, expected, rtol=1e-8, atol=1e-8,
                 call="CrossEntropyLoss(reduction='none')(logits + [[1e4], [-1e4], [5e3], [0]], labels)",
                 hint="softmax ignores a constant added to a row; so must the loss, even at 1e4 (subtract the row max)")


def test_binary_losses_agree():
    """BCEWithLogits(x) = BCE(sigmoid(x)) = two-class cross-entropy of logits (0, x)"""
    x = np.array([-6.0, -1.5, 0.0, 0.3, 2.0, 7.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    with_logits = BCEWithLogitsLoss(reduction="none")(Tensor(x), Tensor(y))
    probabilities = BCELoss(reduction="none")(Tensor(1 / (1 + np.exp(-x))), Tensor(y))
    two_class = CrossEntropyLoss(reduction="none")(Tensor(np.stack([np.zeros_like(x), x], axis=1)),
                                                    Tensor(y.astype(np.int64)))
    expect_close(with_logits, probabilities, rtol=1e-9, atol=1e-12,
                 call=f"BCEWithLogitsLoss vs BCELoss(sigmoid(x)) at x = {x.tolist()}",
                 hint="the logits form is the same loss as BCE of sigmoid(x), only computed stably")
    expect_close(two_class, with_logits, rtol=1e-9, atol=1e-12,
                 call=f"CrossEntropyLoss on logits (0, x) vs BCEWithLogitsLoss(x) at x = {x.tolist()}",
                 hint="softmax of (0, x) gives class 1 the probability sigmoid(x)")


def test_kl_with_zeros_in_p_and_q():
    """KL ignores outcomes with p = 0 (even where q = 0 too) and is infinite where only q is 0"""
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])
    got = kl_divergence(Tensor(p), Tensor(q))
    expect_close(got, np.float64(0.5 * math.log(2) + 0.5 * math.log(2 / 3)), rtol=1e-10, atol=1e-12,
                 call="kl_divergence(Tensor([0.5, 0.5, 0.0]), Tensor([0.25, 0.75, 0.0]))",
                 hint="a term with p = 0 is 0 whatever q is; 0 * log(0 / 0) must not become nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        infinite = kl_divergence(Tensor(np.array([0.5, 0.5])), Tensor(np.array([1.0, 0.0])))
    expect_true(bool(np.isposinf(infinite.data)), call="kl_divergence(Tensor([0.5, 0.5]), Tensor([1.0, 0.0]))",
                expected="inf", got=str(infinite.data),
                hint="q gives probability 0 to an outcome p says happens: the divergence is infinite, "
                     "so do not clamp q")


def test_bce_refuses_values_outside_0_1():
    """BCELoss raises a ValueError for a 'probability' outside [0, 1] (logits passed by mistake)"""
    expect_raises(ValueError, lambda: BCELoss()(Tensor(np.array([0.5, 2.0])), Tensor(np.array([1.0, 0.0]))),
                  call="BCELoss()(Tensor([0.5, 2.0]), Tensor([1.0, 0.0]))",
                  hint="BCELoss takes probabilities; check 0 <= p <= 1 and point to BCEWithLogitsLoss for logits")
