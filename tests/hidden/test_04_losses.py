"""Hidden checks for module 04 (losses): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import math

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises
from tinytorch.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, entropy, kl_divergence
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time


def test_cross_entropy_refuses_negative_labels():
    """A label of -1 raises a ValueError instead of silently meaning the last class; labels 0 and 2 are fine"""
    logits = Tensor(np.array([[0.0, 1.0, 2.0], [3.0, 0.0, -3.0]]))
    expect_raises(ValueError, lambda: CrossEntropyLoss()(logits, Tensor(np.array([0, -1]))),
                  call="CrossEntropyLoss()(logits of shape (2, 3), Tensor([0, -1]))", message_contains="-1",
                  hint="numpy reads index -1 as the last class; check 0 <= label < C before indexing")
    expect_close(CrossEntropyLoss(reduction="sum")(logits, Tensor(np.array([0, 2]))),
                 torch.nn.CrossEntropyLoss(reduction="sum")(torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, -3.0]],
                                                                         dtype=torch.float64), torch.tensor([0, 2])),
                 rtol=1e-10, atol=1e-12, call="CrossEntropyLoss(reduction='sum')(logits of shape (2, 3), Tensor([0, 2]))",
                 hint="the sum of log(sum(exp(x))) - x[label] over the rows")


def test_cross_entropy_ignores_a_constant_added_to_a_row():
    """Adding a large constant to every logit of a row leaves cross-entropy unchanged"""
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(4, 5)) * 3
    labels = np.array([0, 4, 2, 2])
    offsets = np.array([[1e4], [-1e4], [5e3], [0.0]])
    expected = torch.nn.CrossEntropyLoss(reduction="none")(torch.tensor(logits), torch.tensor(labels))
    expect_close(CrossEntropyLoss(reduction="none")(Tensor(logits), Tensor(labels)), expected, rtol=1e-10, atol=1e-12,
                 call="CrossEntropyLoss(reduction='none')(logits, labels)",
                 hint="log(sum(exp(x - max))) - (x[label] - max) per row")
    expect_close(CrossEntropyLoss(reduction="none")(Tensor(logits + offsets), Tensor(labels)), expected,
                 rtol=1e-8, atol=1e-8,
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
    # one oracle for all three: the same loss, computed by torch from the logits
    expected = torch.nn.BCEWithLogitsLoss(reduction="none")(torch.tensor(x), torch.tensor(y))
    expect_close(with_logits, expected, rtol=1e-10, atol=1e-12,
                 call=f"BCEWithLogitsLoss(reduction='none')(x = {x.tolist()}, y = {y.tolist()})",
                 hint="max(x, 0) - x*y + log(1 + exp(-|x|))")
    expect_close(probabilities, expected, rtol=1e-9, atol=1e-12,
                 call=f"BCELoss(reduction='none')(sigmoid(x), y) at x = {x.tolist()}",
                 hint="the logits form is the same loss as BCE of sigmoid(x), only computed stably")
    expect_close(two_class, expected, rtol=1e-9, atol=1e-12,
                 call=f"CrossEntropyLoss on logits (0, x) at x = {x.tolist()}",
                 hint="softmax of (0, x) gives class 1 the probability sigmoid(x)")


def test_losses_accept_lists_and_arrays():
    """Losses accept Python lists and numpy arrays as well as Tensors, and return Tensors"""
    got = MSELoss()([1.0, 2.0], [0.5, 3.0])
    expect_equal(isinstance(got, Tensor), True, call="isinstance(MSELoss()([1.0, 2.0], [0.5, 3.0]), Tensor)",
                 hint="start forward with _as_tensor(prediction) and _as_tensor(target, like=prediction)")
    expect_close(got, np.float64(0.625), rtol=1e-6, call="MSELoss()([1.0, 2.0], [0.5, 3.0])",
                 hint="(0.25 + 1) / 2; Python floats become a float32 Tensor")
    expect_close(CrossEntropyLoss()(np.array([[1.0, 2.0, 3.0]]), np.array([2])),
                 np.float64(math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3), rtol=1e-10,
                 call="CrossEntropyLoss()(np.array([[1., 2., 3.]]), np.array([2]))",
                 hint="a numpy array of logits and one of labels work as Tensors do")
    expect_close(BCEWithLogitsLoss()(np.array([0.0, 0.0]), [1.0, 0.0]), np.float64(math.log(2)), rtol=1e-6,
                 call="BCEWithLogitsLoss()(np.array([0., 0.]), [1.0, 0.0])", hint="a logit of 0 costs ln 2 either way")


def test_entropy_and_kl_of_three_axes():
    """entropy and kl_divergence reduce the chosen axis of a 3-D batch"""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.1, 1.0, size=(2, 3, 4))
    q = rng.uniform(0.1, 1.0, size=(2, 3, 4))
    p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
    expect_close(entropy(Tensor(p), axis=1), torch.special.entr(torch.tensor(p)).sum(1), rtol=1e-10, atol=1e-12,
                 call="entropy(p of shape (2, 3, 4), axis=1)", hint="reduce axis 1: the result has shape (2, 4)")
    expect_close(kl_divergence(Tensor(p), Tensor(q), axis=1),
                 torch.nn.functional.kl_div(torch.tensor(q).log(), torch.tensor(p), reduction="none").sum(1),
                 rtol=1e-10, atol=1e-12, call="kl_divergence(p, q of shape (2, 3, 4), axis=1)",
                 hint="reduce axis 1: the result has shape (2, 4)")
