"""Hidden checks for module 05 (autograd): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises
from tinytorch.activations import GELU, Softmax
from tinytorch.autograd import Value
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time


def _torch_grads(f, arrays, upstream):
    leaves = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    f(*leaves).backward(torch.tensor(upstream))
    return [leaf.grad for leaf in leaves]


def test_fancy_index_pairs_with_repeats_and_masks():
    """Repeated (row, column) pairs and a mask after a slice both scatter-add like torch"""
    rng = np.random.default_rng(21)
    x0 = rng.standard_normal((4, 5))
    rows, cols = np.array([0, 3, 0, 0, 2]), np.array([1, 4, 1, 1, 0])
    x = Tensor(x0, requires_grad=True)
    upstream = rng.standard_normal(5)
    x[Tensor(rows), Tensor(cols)].backward(upstream)
    (expected,) = _torch_grads(lambda t: t[torch.tensor(rows), torch.tensor(cols)], [x0], upstream)
    expect_close(x.grad, expected, rtol=1e-12, atol=1e-12,
                 call="x.grad after x[[0, 3, 0, 0, 2], [1, 4, 1, 1, 0]].backward(g)",
                 hint="the pair (0, 1) is picked three times: np.add.at adds all three gradients")
    mask = x0[1:] > 0
    x = Tensor(x0, requires_grad=True)
    upstream = rng.standard_normal(int(mask.sum()))
    x[1:][Tensor(mask)].backward(upstream)
    (expected,) = _torch_grads(lambda t: t[1:][torch.tensor(mask)], [x0], upstream)
    expect_close(x.grad, expected, rtol=1e-12, atol=1e-12, call="x.grad after x[1:][mask].backward(g)",
                 hint="a boolean mask picks positions too; the slice's gradient then goes back into rows 1..3")


def test_matmul_broadcasting_batches_on_both_sides():
    """(3, 1, 2, 4) @ (5, 4, 2) and a vector @ a batch give torch's gradients"""
    rng = np.random.default_rng(22)
    for a_shape, b_shape in (((3, 1, 2, 4), (5, 4, 2)), ((4,), (3, 2, 4, 5)), ((3, 1, 2, 4), (4,))):
        a0, b0 = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        a, b = Tensor(a0, requires_grad=True), Tensor(b0, requires_grad=True)
        out = a @ b
        upstream = rng.standard_normal(out.shape)
        out.backward(upstream)
        expected_a, expected_b = _torch_grads(lambda x, y: x @ y, [a0, b0], upstream)
        for name, got, expected in (("a", a, expected_a), ("b", b, expected_b)):
            expect_close(got.grad, expected, rtol=1e-10, atol=1e-12,
                         call=f"{name}.grad after (a @ b).backward(g), a: {a_shape}, b: {b_shape}",
                         hint="batch axes broadcast on both sides are summed back with unbroadcast")


def test_max_ties_split_the_gradient():
    """Ties over several axes at once (a tuple axis, keepdims) split the gradient as torch.amax/amin do"""
    x0 = np.array([[[1.0, 4.0, 4.0], [4.0, 0.0, 2.0]], [[4.0, -1.0, 3.0], [0.5, 0.5, 0.5]]])
    upstream = np.array([[[6.0]], [[-3.0]]])
    for reduction, torch_fn in (("max", torch.amax), ("min", torch.amin)):
        x = Tensor(x0, requires_grad=True)
        getattr(x, reduction)(axis=(1, -1), keepdims=True).backward(upstream)
        (expected,) = _torch_grads(lambda t: torch_fn(t, dim=(1, 2), keepdim=True), [x0], upstream)
        expect_close(x.grad, expected, rtol=1e-12, atol=1e-12,
                     call=f"x.grad after x.{reduction}(axis=(1, -1), keepdims=True).backward(g), x: (2, 2, 3) with ties",
                     hint="count the winners over all reduced axes together, and give each an equal share")
    x = Tensor(x0, requires_grad=True)
    x.min().backward()
    (expected,) = _torch_grads(lambda t: torch.amin(t), [x0], np.array(1.0))
    expect_close(x.grad, expected, call="x.grad after x.min().backward()", hint="one minimum: all of it goes there")


def test_float32_model_gets_float32_gradients_close_to_torch():
    """A float32 MLP with GELU and Softmax gets float32 gradients close to torch's float32 ones"""
    rng = np.random.default_rng(23)
    first, second = Linear(5, 8), Linear(8, 4)
    # the weights come from the test's generator, not from Linear's random initialisation
    for layer in (first, second):
        layer.weight.data[...] = 0.5 * rng.standard_normal(layer.weight.shape)
        layer.bias.data[...] = 0.1 * rng.standard_normal(layer.bias.shape)
    model = Sequential(first, GELU(), second, Softmax(dim=-1))
    x = rng.standard_normal((6, 5)).astype(np.float32)
    weights = rng.standard_normal(4).astype(np.float32)
    (model(Tensor(x)) * Tensor(weights)).sum().backward()
    twin = [torch.tensor(t.data, requires_grad=True) for t in (first.weight, first.bias, second.weight, second.bias)]
    h = torch.nn.functional.gelu(torch.tensor(x) @ twin[0].T + twin[1], approximate="tanh")
    (torch.softmax(h @ twin[2].T + twin[3], dim=-1) * torch.tensor(weights)).sum().backward()
    for name, ours, theirs in zip(("0.weight", "0.bias", "2.weight", "2.bias"),
                                  (first.weight, first.bias, second.weight, second.bias), twin):
        expect_equal(ours.grad.dtype, np.dtype(np.float32), call=f"model.{name}.grad.dtype",
                     hint="a float32 parameter gets a float32 gradient")
        expect_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-5, call=f"model.{name}.grad (float32)",
                     hint="GELU's and Softmax's fused backward rules, through two Linear layers")


def test_value_reflected_operations_and_fresh_backward():
    """Numbers on the left of Value operations, and a second backward() giving the same gradients"""
    a, b = Value(1.7), Value(-0.6)
    out = (1 - a) * (2 / b) + (3 + a) ** 2 - 0.5 * (a / 4)
    ta, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.7, -0.6))
    (((1 - ta) * (2 / tb) + (3 + ta) ** 2 - 0.5 * (ta / 4))).backward()
    out.backward()
    out.backward()
    for name, value, reference in (("a", a, ta), ("b", b, tb)):
        expect_close(value.grad, reference.grad.item(), rtol=1e-10,
                     call=f"{name}.grad after calling backward() twice on (1 - a) * (2 / b) + (3 + a)**2 - 0.5 * (a / 4)",
                     hint="backward() sets every grad in the graph to 0 before seeding the output with 1.0, "
                          "so a second call gives the same numbers")


def test_backward_errors_are_runtime_errors():
    """backward() without a graph, or with a grad of the wrong shape, raises RuntimeError"""
    plain = Tensor(np.array(2.0))
    expect_raises(RuntimeError, lambda: plain.backward(), call="Tensor(2.0).backward() (requires_grad=False)",
                  hint="no input required grad, so there is nothing to differentiate: say so")
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = (x * 2.0).sum(axis=0)
    expect_raises(RuntimeError, lambda: y.backward(np.ones((2, 3))),
                  call="(x * 2).sum(axis=0).backward(grad of shape (2, 3)) for an output of shape (3,)",
                  hint="grad must have the output's shape")
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]), requires_grad=True)
    CrossEntropyLoss()(x, Tensor(np.array([0, 2]))).backward()
    expect_close(x.grad, _cross_entropy_grad(x.data, np.array([0, 2])), rtol=1e-10, atol=1e-12,
                 call="x.grad after CrossEntropyLoss()(x, [0, 2]).backward(), after the errors",
                 hint="after the errors, a valid backward still works: (softmax(x) - onehot) / N")


def _cross_entropy_grad(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """torch's gradient of the mean cross-entropy (only called inside an expected argument)."""
    logits = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).backward()
    return logits.grad
