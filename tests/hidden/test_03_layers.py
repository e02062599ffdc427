"""Hidden checks of module 03: edge cases of Linear, the registry, load_state_dict and Dropout."""

import numpy as np
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.tensor import Tensor, manual_seed


def test_linear_without_bias():
    """Linear(bias=False) has only a weight, matches torch, and works on a single vector"""
    rng = np.random.default_rng(10)
    layer = Linear(4, 3, bias=False)
    expect_equal([name for name, _ in layer.named_parameters()], ["weight"],
                 call="Linear(4, 3, bias=False).named_parameters()", hint="no bias parameter when bias=False")
    weight = rng.standard_normal((3, 4))
    layer.weight.data = weight
    for shape in ((5, 4), (4,)):
        x = rng.standard_normal(shape)
        expect_close(layer(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight)), rtol=1e-10,
                     call=f"Linear(4, 3, bias=False)(x of shape {shape})",
                     hint="without a bias the output is just x @ weight.T")


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


def test_load_state_dict_unexpected_key_and_in_place():
    """load_state_dict rejects unknown names, changes nothing on error, and loads in place"""
    model = Sequential(Linear(3, 2))
    weight, bias = model[0].weight, model[0].bias
    before = weight.data.copy()
    state = {"0.weight": np.full((2, 3), 5.0), "0.bias": np.zeros(2), "1.weight": np.zeros((2, 2))}
    expect_raises(KeyError, lambda: model.load_state_dict(state), call="load_state_dict(state with extra '1.weight')",
                  message_contains="1.weight", hint="name the unexpected keys too")
    expect_equal(weight.data, before, call="the model after a failed load_state_dict",
                 hint="check every name and shape before changing anything")
    bad_shape = {"0.weight": np.full((2, 3), 5.0), "0.bias": np.zeros(3)}
    expect_raises(ValueError, lambda: model.load_state_dict(bad_shape),
                  call="load_state_dict({'0.weight': fine, '0.bias': zeros(3)}) into Linear(3, 2)",
                  message_contains="0.bias", hint="name the key whose shape does not fit")
    expect_equal(weight.data, before, call="the model after load_state_dict failed on '0.bias'",
                 hint="check every name and shape before changing anything, so a failed load leaves the model as it was")
    del state["1.weight"]
    model.load_state_dict(state)
    expect_true(model[0].weight is weight and model[0].bias is bias, call="load_state_dict(float64 state)",
                expected="the same parameter Tensor objects", got="new objects",
                hint="copy into the existing arrays (tensor.data[...] = value): an optimizer holds these tensors")
    expect_equal(str(weight.dtype), "float32", call="load_state_dict(float64 state); weight.dtype",
                 hint="copying into the existing array keeps the parameter's dtype")
    expect_equal(weight.data, np.full((2, 3), 5.0, dtype=np.float32), call="weight after load_state_dict",
                 hint="copy the state's values in")


def test_dropout_mask_is_random_and_seeded():
    """Dropout keeps shape and dtype, draws a new mask each call, and repeats after manual_seed"""
    x = Tensor(np.ones((4, 5, 6)))
    layer = Dropout(0.5)
    manual_seed(3)
    first = layer(x)
    second = layer(x)
    manual_seed(3)
    again = layer(x)
    expect_equal(first.shape, (4, 5, 6), call="Dropout(0.5)(float64 x of shape (4, 5, 6)).shape", hint="same shape")
    expect_equal(str(first.dtype), "float64", call="Dropout(0.5)(float64 x).dtype",
                 hint="make the mask in the input's dtype")
    expect_true(not np.array_equal(first.data, second.data), call="Dropout(0.5)(x), called twice",
                expected="different masks", got="the same mask", hint="draw a fresh mask on every call")
    expect_equal(again.data, first.data, call="manual_seed(3); Dropout(0.5)(x) (twice)",
                 hint="draw the mask from tinytorch.tensor.generator()")


def test_sequential_slice():
    """A slice of a Sequential is a Sequential of the same layer objects, renumbered from 0"""
    layers = [Linear(2, 3), Linear(3, 4), Linear(4, 1)]
    tail = Sequential(*layers)[1:]
    expect_true(isinstance(tail, Sequential) and len(tail) == 2 and tail[0] is layers[1] and tail[1] is layers[2],
                call="Sequential(a, b, c)[1:]", expected="Sequential(b, c) of the same objects",
                got=repr(type(tail).__name__), hint="build a new Sequential from the sliced list of layers")
    expect_equal([name for name, _ in tail.named_parameters()], ["0.weight", "0.bias", "1.weight", "1.bias"],
                 call="Sequential(a, b, c)[1:].named_parameters()", hint="the new Sequential numbers from 0")
