"""Hidden checks for module 16 (compression): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal
# the checkpoint's builders and oracles: both files test against one reference
from tests.checkpoints.test_16_compression import (
    linear_with,
    torch_distillation,
    torch_global_masks,
    torch_kl_soft,
    torch_pruned,
)
from tests.checkpoints.common import torch64
from tinytorch.compression import (
    apply_masks,
    distillation_loss,
    factorize_linear,
    global_unstructured,
    l1_unstructured,
    ln_structured,
    mask_gradients,
    model_sparsity,
    rank_for_energy,
    soft_target_loss,
)
from tinytorch.layers import Sequential
from tinytorch.spatial import Conv2d
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

RTOL, ATOL = 1e-10, 1e-12


def test_amount_zero_and_everything():
    """amount=0 attaches an all-True mask and prunes nothing; amount=1.0 prunes every weight"""
    rng = np.random.default_rng(101)
    w0 = rng.standard_normal((3, 4))
    kept = linear_with(w0)
    l1_unstructured(kept, "weight", amount=0.0)
    expect_equal(np.asarray(getattr(kept, "weight_mask", None)), np.ones((3, 4), bool),
                 call="l1_unstructured(layer, amount=0.0); layer.weight_mask",
                 hint="pruning nothing still records the (all True) mask, as torch does")
    expect_equal(kept.weight.data, w0, call="layer.weight after amount=0.0", hint="nothing is pruned")
    gone = linear_with(w0)
    l1_unstructured(gone, "weight", amount=1.0)
    gone.weight.data += 2.0
    apply_masks(gone)
    expect_close(model_sparsity(gone), 1.0, rtol=0, atol=0, call="amount=1.0, then every weight moved, apply_masks",
                 hint="a float 1.0 is the fraction 100%")


def test_mask_gradients_skips_parameters_without_gradient():
    """mask_gradients leaves alone a pruned layer that got no gradient and masks the others"""
    rng = np.random.default_rng(102)
    w_a, w_b, x0, g0 = (rng.standard_normal(s) for s in ((4, 3), (2, 4), (5, 3), (5, 4)))
    first, second = linear_with(w_a), linear_with(w_b)
    model = Sequential(first, second)
    l1_unstructured(first, "weight", amount=0.5)
    l1_unstructured(second, "weight", amount=0.5)
    first(Tensor(x0)).backward(g0)    # only the first layer takes part
    mask_gradients(model)
    expect_close(first.weight.grad, (g0.T @ x0) * torch_pruned(w_a, ("l1", 0.5))[0], rtol=RTOL, atol=ATOL,
                 call="first.weight.grad after mask_gradients(model) (second.grad is None)",
                 hint="skip a parameter whose .grad is None; mask the rest")
    expect_equal(second.weight.grad, None, call="second.weight.grad after mask_gradients(model)",
                 hint="no gradient stays no gradient")


def test_distillation_with_extreme_logits():
    """Confident logits (+-300, softmax underflows to exact zeros) give finite losses equal to torch's"""
    s0 = np.array([[300.0, -300.0, 0.0], [-250.0, 280.0, 10.0]])
    t0 = np.array([[-300.0, 300.0, 1.0], [290.0, -310.0, 0.0]])
    labels = np.array([2, 0])
    student = Tensor(s0, requires_grad=True)
    loss = distillation_loss(student, Tensor(t0), Tensor(labels), temperature=1.0, alpha=0.6)
    reference = torch_distillation(s0, t0, labels, 1.0, 0.6)
    expect_close(loss, reference[0], rtol=1e-9, atol=1e-9, call="distillation_loss(+-300 logits, temperature=1.0, alpha=0.6)",
                 hint="log q from LogSoftmax (never log of a softmax that underflowed to 0); 0 log 0 = 0 via xlogy")
    loss.backward()
    expect_close(student.grad, reference[1], rtol=1e-9, atol=1e-9, call="student.grad for the +-300 logits",
                 hint="finite gradients: no log(0) anywhere in the graph")


def test_distillation_keeps_the_students_dtype():
    """A float32 student with a float64 teacher gives a float32 loss, close to torch's"""
    rng = np.random.default_rng(104)
    s0, t0 = rng.standard_normal((4, 6)).astype(np.float32), rng.standard_normal((4, 6))
    loss = soft_target_loss(Tensor(s0), Tensor(t0), temperature=2.0)
    expect_equal(str(loss.dtype), "float32", call="soft_target_loss(float32 student, float64 teacher, 2.0).dtype",
                 hint="the student decides the dtype: convert the teacher's logits to it")
    expect_close(loss, torch_kl_soft(s0.astype(np.float64), t0.astype(np.float32).astype(np.float64), 2.0)[0],
                 rtol=1e-4, atol=1e-6, call="soft_target_loss(float32 student, float64 teacher, 2.0)",
                 hint="the same formula, in float32")


def test_ln_structured_negative_dim_and_counts():
    """ln_structured with dim=-1 and an int amount on a 3-D weight, then all channels, as torch"""
    rng = np.random.default_rng(105)
    w0 = rng.standard_normal((3, 4, 5))
    conv_like = linear_with(np.zeros((1, 1)))
    conv_like.weight.data = w0.copy()
    ln_structured(conv_like, "weight", amount=2, n=1, dim=-1)
    expect_equal(np.asarray(getattr(conv_like, "weight_mask", None)), torch_pruned(w0, ("ln", 2, 1, -1))[0],
                 call="ln_structured(weight (3, 4, 5), amount=2, n=1, dim=-1)",
                 hint="dim=-1 is the last axis: 5 channels, 2 of smallest L1 norm pruned")
    ln_structured(conv_like, "weight", amount=1.0, n=2, dim=-1)
    expect_equal(conv_like.weight.data, np.zeros((3, 4, 5)), call="then ln_structured(amount=1.0, dim=-1)",
                 hint="all 3 channels still alive are pruned")


def test_global_pruning_of_conv_and_linear_together():
    """global_unstructured over a Conv2d (4-D weight) and a Linear matches torch"""
    rng = np.random.default_rng(106)
    w_conv, w_lin = 0.3 * rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((3, 16))
    conv = Conv2d(2, 4, kernel_size=3)
    conv.weight.data = w_conv.copy()
    linear = linear_with(w_lin)
    global_unstructured([(conv, "weight"), (linear, "weight")], amount=0.45)
    expected = torch_global_masks([w_conv, w_lin], 0.45)
    expect_equal(conv.weight.data, w_conv * expected[0], call="the Conv2d weight after global_unstructured(conv, linear, 0.45)",
                 hint="flatten each weight whatever its shape, and reshape each piece of the mask back to it")
    expect_equal(np.asarray(getattr(linear, "weight_mask", None)), expected[1], call="linear.weight_mask",
                 hint="the pieces follow the order of the parameters given")


def test_factorize_without_bias_and_energy_of_a_tensor():
    """factorize_linear of a layer without bias has no bias; rank_for_energy accepts a Tensor"""
    rng = np.random.default_rng(107)
    w0 = rng.standard_normal((4, 6))
    small = factorize_linear(linear_with(w0), 4)
    expect_equal([name for name, _ in small.named_parameters()], ["0.weight", "1.weight"],
                 call="factorize_linear(Linear(6, 4, bias=False), 4).named_parameters() names",
                 hint="bias=layer.bias is not None for the second layer")
    x0 = rng.standard_normal((2, 6))
    expect_close(small(Tensor(x0)), (torch64(x0) @ torch64(w0).T).numpy(), rtol=1e-9, atol=1e-12,
                 call="factorize_linear(Linear(6, 4, bias=False), rank 4)(x)", hint="full rank is the layer itself")
    s = torch.linalg.svdvals(torch64(w0)).numpy()
    expect_equal(rank_for_energy(Tensor(w0), 0.999999), int(np.searchsorted(np.cumsum(s ** 2) / np.sum(s ** 2), 0.999999) + 1),
                 call="rank_for_energy(Tensor w (4, 6), 0.999999)", hint="a Tensor's numbers are in .data")
