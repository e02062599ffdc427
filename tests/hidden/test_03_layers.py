"""Hidden checks of module 03: edge cases of Linear, the registry, load_state_dict and Dropout.

As in the checkpoint, every value compared with an expected value comes from numbers this file
sets itself; random initialisation and dropout masks are judged by predicates only.
"""

import re

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.test_03_layers import different_arrays, same_arrays
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.tensor import Tensor, manual_seed


def zero_or_doubled(out, x):
    """Dropout(0.5) of x (no zeros in x): each element 0 or 2 * x, some of each."""
    if out.shape != x.shape:
        return False
    kept = out != 0
    return bool(kept.any()) and not bool(kept.all()) and np.allclose(out[kept], 2 * x[kept], rtol=1e-12)


def names_key(message, key):
    """`key` appears in `message` as a whole name (not only inside a longer one, as '0.b' in '0.bias')."""
    return re.search(r"(?<![\w.])" + re.escape(key) + r"(?![\w.])", message) is not None


def test_linear_without_bias_on_a_single_vector():
    """Linear(bias=False) works on a single vector (no batch axis), like torch"""
    rng = np.random.default_rng(10)
    weight, x = rng.standard_normal((3, 4)), rng.standard_normal(4)
    layer = Linear(4, 3, bias=False)
    layer.weight.data = weight
    expect_close(layer(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight)), rtol=1e-10,
                 call="Linear(4, 3, bias=False)(x of shape (4,))",
                 hint="x @ weight.T works for a single vector too: (4,) @ (4, 3) -> (3,)")
    single = Linear(4, 1)
    single.weight.data = weight[:1]
    single.bias.data = np.array([0.5])
    expect_close(single(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight[:1]), torch.tensor(np.array([0.5]))),
                 rtol=1e-10, call="Linear(4, 1)(x of shape (4,))", hint="one output keeps its axis: shape (1,)")


def test_own_parameters_come_first():
    """A module's own parameters are listed before its children's, as torch orders them"""

    class Scaled(Module):
        def __init__(self):
            super().__init__()
            self.fc = Linear(2, 3)
            self.scale = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
            self.constant = Tensor(np.ones(3, dtype=np.float32))  # requires_grad=False: not a parameter

    class TorchScaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 3)
            self.scale = torch.nn.Parameter(torch.ones(3))

    expect_equal([name for name, _ in Scaled().named_parameters()],
                 [name for name, _ in TorchScaled().named_parameters()],
                 call="Scaled().named_parameters() (fc = Linear(2, 3), then scale, then a constant)",
                 hint="own tensors with requires_grad=True first, then each child's; other tensors are not parameters")
    expect_equal(list(Scaled().state_dict()), ["scale", "fc.weight", "fc.bias"], call="Scaled().state_dict().keys()",
                 hint="a state_dict saves the parameters only, in named_parameters order")


def _weights(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)


def test_load_state_dict_keeps_objects_and_dtype():
    """load_state_dict copies into the same parameter objects and keeps their float32 dtype"""
    layer = Linear(3, 2)
    weight, bias = layer.weight, layer.bias
    layer.weight.data[...], layer.bias.data[...] = _weights(20)
    model = Sequential(layer)
    model.load_state_dict({"0.weight": np.full((2, 3), 5.0), "0.bias": np.arange(2.0)})
    expect_equal([model[0].weight is weight, model[0].bias is bias], [True, True],
                 call="load_state_dict(float64 state): the parameters are the same Tensor objects",
                 hint="copy into the existing arrays (tensor.data[...] = value): an optimizer holds these tensors")
    expect_equal(str(weight.dtype), "float32", call="load_state_dict(float64 state); weight.dtype",
                 hint="copying into the existing array keeps the parameter's dtype")
    expect_equal(weight.data, np.full((2, 3), 5.0, dtype=np.float32), call="weight after load_state_dict",
                 hint="copy the state's values in")
    expect_equal(bias.data, np.arange(2.0, dtype=np.float32), call="bias after load_state_dict",
                 hint="copy the state's values in")


def test_load_state_dict_unexpected_and_missing_together():
    """A state with one missing and one unexpected name is refused, naming both, and changes nothing"""
    model = Sequential(Linear(3, 2))
    model[0].weight.data[...], model[0].bias.data[...] = _weights(21)
    state = {"0.weight": np.zeros((2, 3)), "0.b": np.zeros(2)}
    error = expect_raises(KeyError, lambda: model.load_state_dict(state), call="load_state_dict({'0.weight', '0.b'})",
                          message_contains="0.bias", hint="name the missing keys")
    expect_that(str(error), names_key, "0.b", call="the KeyError's message",
                expected="a message that also names the unexpected key '0.b'", hint="name the unexpected keys too")
    expect_equal(np.concatenate([model[0].weight.data.ravel(), model[0].bias.data]),
                 np.concatenate([array.ravel() for array in _weights(21)]),
                 call="the model's weight and bias after the refused load", hint="check every name before changing anything")


def test_dropout_keeps_float64_and_any_shape():
    """Dropout keeps the shape and dtype of a float64 input of three axes; eval() between calls changes nothing"""
    x = np.random.default_rng(22).uniform(1.0, 2.0, size=(4, 5, 6))
    manual_seed(3)
    out = Dropout(0.5)(Tensor(x))
    expect_equal(out.shape, (4, 5, 6), call="Dropout(0.5)(float64 x of shape (4, 5, 6)).shape", hint="same shape")
    expect_equal(str(out.dtype), "float64", call="Dropout(0.5)(float64 x).dtype",
                 hint="make the mask in the input's dtype")
    expect_that(out, zero_or_doubled, x, call="Dropout(0.5)(float64 x)", expected="0 or 2 * x everywhere, some of each",
                hint="survivors are multiplied by 1 / (1 - p) = 2")
    manual_seed(3)
    layer = Dropout(0.5)
    first = layer(Tensor(x)).data.copy()
    layer.eval()
    middle = layer(Tensor(x)).data.copy()
    layer.train()
    second = layer(Tensor(x)).data.copy()
    manual_seed(3)
    again = layer(Tensor(x)).data.copy()
    expect_that((first, again), same_arrays, call="manual_seed(3); Dropout(0.5)(x), twice",
                expected="the same mask", hint="draw the mask from tinytorch.tensor.generator()")
    expect_that((first, second), different_arrays, call="Dropout(0.5)(x), eval()(x), train()(x)",
                expected="a different mask after switching back to training", hint="draw a fresh mask on every call")
    expect_equal(middle, np.random.default_rng(22).uniform(1.0, 2.0, size=(4, 5, 6)),
                 call="Dropout(0.5).eval()(x) between two training calls", hint="evaluation mode returns the input")


def test_sequential_slice():
    """A slice of a Sequential is a Sequential of the same layer objects, renumbered from 0"""
    layers = [Linear(2, 3), Linear(3, 4), Linear(4, 1)]
    model = Sequential(*layers)
    tail = model[1:]
    expect_equal([type(tail).__name__, len(tail), tail[0] is layers[1], tail[1] is layers[2]],
                 ["Sequential", 2, True, True], call="Sequential(a, b, c)[1:]",
                 hint="build a new Sequential from the sliced list of layers")
    expect_equal([name for name, _ in tail.named_parameters()], ["0.weight", "0.bias", "1.weight", "1.bias"],
                 call="Sequential(a, b, c)[1:].named_parameters()", hint="the new Sequential numbers from 0")
    expect_equal([len(model[::2]), model[::2][1] is layers[2], len(model[5:])], [2, True, 0],
                 call="Sequential(a, b, c)[::2] and [5:]", hint="slices behave as for a list, steps and empty ones too")
