"""Checkpoint 03: Module, Linear, Sequential, Dropout.

Oracles: torch.nn.functional.linear and torch.nn.Sequential in float64 (values, parameter
names and order), closed-form initialisation statistics on large layers, and the defining
properties of a parameter registry, a state_dict and inverted dropout.

Every value compared with an expected value comes from weights this file sets itself, drawn
from its own seeded generator: a layer's random initialisation is only ever judged by its
statistics, so a correct layer that draws its numbers differently is never rejected.
"""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.tensor import Tensor, manual_seed

RTOL = 1e-10
# Tests of the registry and of state_dict compare float32 parameters; any correct order of
# the float32 sums stays far inside these.
F32_RTOL, F32_ATOL = 1e-5, 1e-6


def relu(t):
    """A plain-function activation: Sequential accepts any callable."""
    return t.maximum(0.0)


def set_params(layer, weight, bias=None):
    """Replace `layer`'s numbers by the test's own float64 `weight` (and `bias`)."""
    layer.weight.data = weight
    if bias is not None:
        layer.bias.data = bias


def torch_linear(weight, bias):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


# -- the MLP Sequential(Linear(4, 6), relu, Linear(6, 2)), with the test's own numbers --------

MLP_SHAPES = {"0.weight": (6, 4), "0.bias": (6,), "2.weight": (2, 6), "2.bias": (2,)}


def mlp_params(seed):
    """A state dict for the MLP: float32 numbers from the test's generator `seed`."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in MLP_SHAPES.items()}


def mlp_layers(seed):
    """Linear(4, 6), relu, Linear(6, 2) holding mlp_params(seed), written into each Linear's own arrays."""
    first, second = Linear(4, 6), Linear(6, 2)
    params = mlp_params(seed)
    first.weight.data[...] = params["0.weight"]
    first.bias.data[...] = params["0.bias"]
    second.weight.data[...] = params["2.weight"]
    second.bias.data[...] = params["2.bias"]
    return [first, relu, second]


def mlp(seed):
    """The MLP holding mlp_params(seed)."""
    return Sequential(*mlp_layers(seed))


def mlp_numpy(seed, x):
    """What the MLP holding mlp_params(seed) computes, in numpy."""
    p = {name: value.astype(np.float64) for name, value in mlp_params(seed).items()}
    hidden = np.maximum(x @ p["0.weight"].T + p["0.bias"], 0.0)
    return hidden @ p["2.weight"].T + p["2.bias"]


def mlp_input(seed):
    return np.random.default_rng(seed).standard_normal((3, 4))


class Block(Module):
    """A nested model: an own parameter and constant, a Sequential body, a list of heads, a function."""

    def __init__(self):
        super().__init__()
        self.body = Sequential(Linear(3, 5), relu, Dropout(0.5))
        self.heads = [Linear(5, 2), Linear(5, 1)]
        self.act = relu
        self.scale = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)  # an own parameter
        self.offset = Tensor(np.zeros(2, dtype=np.float32))  # requires_grad=False: a constant, not a parameter


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Dropout(0.5))
        self.heads = torch.nn.ModuleList([torch.nn.Linear(5, 2), torch.nn.Linear(5, 1)])
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("offset", torch.zeros(2))


# -- predicates, judged on the trusted side over the values your code produced ----------------


def std_within(weight, expected_std, tolerance):
    return abs(np.asarray(weight, dtype=np.float64).std() / expected_std - 1) < tolerance


def mean_near_zero(weight, bound):
    return abs(np.asarray(weight, dtype=np.float64).mean()) < bound


def fraction_within(weight, radius, fraction, tolerance):
    return abs(np.mean(np.abs(weight) < radius) - fraction) < tolerance


def all_within(weight, bound):
    return weight.size > 0 and np.abs(weight).max() <= bound * (1 + 1e-6)


def reaches(weight, bound):
    return weight.size > 0 and np.abs(weight).max() > 0.99 * bound


def variance_within(weight, expected_variance, tolerance):
    return abs(np.asarray(weight, dtype=np.float64).var() / expected_variance - 1) < tolerance


def uniform_spread(weight, bound):
    """Within [-bound, bound] and not all the same number."""
    return all_within(weight, bound) and weight.std() > 0


def same_arrays(pair):
    first, second = pair
    return np.shape(first) == np.shape(second) and np.array_equal(first, second)


def different_arrays(pair):
    first, second = pair
    return np.shape(first) == np.shape(second) and not np.array_equal(first, second)


def mentions_all(message, *parts):
    return all(part in message for part in parts)


def zero_fraction_near(out, p, tolerance):
    return abs(np.mean(out == 0) - p) < tolerance


def zero_or_scaled(out, x, p):
    """Every element is dropped (0) or kept and scaled by 1 / (1 - p); x has no zeros."""
    if out.shape != x.shape:
        return False
    kept = out != 0
    return bool(kept.any()) and np.allclose(out[kept], x[kept] / (1 - p), rtol=1e-5)


def mean_ratio_near_one(out, x, tolerance):
    return abs(np.asarray(out, dtype=np.float64).mean() / x.mean() - 1) < tolerance


def mask_varies_along_rows_and_columns(out):
    """Not one mask repeated down every row or across every column: each element draws its own."""
    dropped = out == 0
    return not np.all(dropped == dropped[:1]) and not np.all(dropped == dropped[:, :1])


# -- Linear -------------------------------------------------------------------------------


def test_linear_shapes():
    """Linear(4, 3) has weight (3, 4) and bias (3,), float32 parameters, and maps (5, 4) to (5, 3)"""
    layer = Linear(4, 3)
    expect_equal(layer.weight.shape, (3, 4), call="Linear(4, 3).weight.shape",
                 hint="PyTorch's layout: weight is (out_features, in_features)")
    expect_equal(layer.bias.shape, (3,), call="Linear(4, 3).bias.shape", hint="one bias per output")
    for name in ("weight", "bias"):
        tensor = getattr(layer, name)
        expect_equal(isinstance(tensor, Tensor), True, call=f"isinstance(Linear(4, 3).{name}, Tensor)",
                     hint="parameters are Tensors")
        expect_equal(getattr(tensor, "requires_grad", None), True, call=f"Linear(4, 3).{name}.requires_grad",
                     hint="requires_grad=True is what makes a tensor a parameter")
        expect_equal(str(tensor.dtype), "float32", call=f"Linear(4, 3).{name}.dtype",
                     hint="parameters are float32, like PyTorch's")
    rng = np.random.default_rng(11)
    layer.weight.data[...] = rng.standard_normal((3, 4))
    layer.bias.data[...] = rng.standard_normal(3)
    out = layer(Tensor(np.ones((5, 4), dtype=np.float32)))
    expect_equal(isinstance(out, Tensor), True, call="isinstance(Linear(4, 3)(Tensor of shape (5, 4)), Tensor)",
                 hint="compute with Tensor operations: x @ weight.T + bias")
    expect_equal(out.shape, (5, 3), call="Linear(4, 3)(Tensor of shape (5, 4)).shape",
                 hint="(N, in_features) @ (in_features, out_features) -> (N, out_features)")
    expect_close(out, _ones_through_linear(11), rtol=F32_RTOL, atol=F32_ATOL,
                 call="Linear(4, 3) with the test's weight and bias, applied to np.ones((5, 4))",
                 hint="each output is the sum of a row of weight plus its bias: y = x @ weight.T + bias")
    plain = Linear(4, 3, bias=False)
    expect_equal([name for name, _ in plain.named_parameters()], ["weight"],
                 call="Linear(4, 3, bias=False).named_parameters()", hint="bias=False: no bias parameter, bias is None")
    expect_equal(plain.bias is None, True, call="Linear(4, 3, bias=False).bias is None",
                 hint="store None as the bias when bias=False, and skip adding it in forward")


def _ones_through_linear(seed):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((3, 4)).astype(np.float32).astype(np.float64)
    bias = rng.standard_normal(3).astype(np.float32).astype(np.float64)
    return np.ones((5, 4)) @ weight.T + bias


def test_linear_matches_torch():
    """Linear's forward equals torch.nn.functional.linear in float64"""
    rng = np.random.default_rng(0)
    weight, bias, x = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal((6, 4))
    layer = Linear(4, 3)
    set_params(layer, weight, bias)
    expect_close(layer(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight), torch.tensor(bias)), rtol=RTOL,
                 call="Linear(4, 3)(x of shape (6, 4)), float64 weights",
                 hint="y = x @ weight.T + bias, with weight of shape (out_features, in_features)")
    plain = Linear(4, 3, bias=False)
    set_params(plain, weight)
    expect_close(plain(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight)), rtol=RTOL,
                 call="Linear(4, 3, bias=False)(x of shape (6, 4)), float64 weights",
                 hint="without a bias the output is just x @ weight.T")


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       in_features=st.integers(1, 5), out_features=st.integers(1, 5), seed=st.integers(0, 1000))
def test_linear_any_leading_axes(lead, in_features, out_features, seed):
    """Linear works on inputs of shape (..., in_features), like torch"""
    rng = np.random.default_rng(seed)
    weight, bias = rng.standard_normal((out_features, in_features)), rng.standard_normal(out_features)
    x = rng.standard_normal((*lead, in_features))
    layer = Linear(in_features, out_features)
    set_params(layer, weight, bias)
    expect_close(layer(Tensor(x)), F.linear(torch.tensor(x), torch.tensor(weight), torch.tensor(bias)), rtol=RTOL,
                 call=f"Linear({in_features}, {out_features})(x of shape {x.shape})",
                 hint="leading axes are a batch: @ broadcasts over them and the bias broadcasts along the last axis")


def test_kaiming_statistics():
    """Kaiming init: normal, mean 0, std sqrt(2 / in_features); bias zero"""
    manual_seed(0)
    layer = Linear(800, 200)
    std = np.sqrt(2 / 800)
    expect_that(layer.weight, std_within, std, 0.03, call="Linear(800, 200).weight.std()",
                expected=f"{std:.4f} (sqrt(2 / in_features)) within 3%",
                hint="Kaiming (He) normal: std = sqrt(2 / fan_in), fan_in = in_features")
    expect_that(layer.weight, mean_near_zero, 0.05 * std, call="Linear(800, 200).weight.mean()",
                expected=f"about 0 (within {0.05 * std:.5f})", hint="draw from a normal with mean 0")
    expect_that(layer.weight, fraction_within, std, 0.6827, 0.01,
                call="fraction of Linear(800, 200).weight within one std of 0",
                expected="about 0.683, as for a normal distribution",
                hint="Kaiming init draws from a normal distribution (generator().normal), not a uniform one")
    expect_equal(layer.bias.data, np.zeros(200, dtype=np.float32), call="Linear(800, 200).bias",
                 hint="biases start at zero")


def test_xavier_statistics():
    """Xavier init: uniform on [-a, a] with a = sqrt(6 / (in + out)), variance 2 / (in + out)"""
    manual_seed(0)
    layer = Linear(600, 400, init="xavier")
    bound = np.sqrt(6 / 1000)
    expect_that(layer.weight, all_within, bound, call="Linear(600, 400, init='xavier').weight, largest |value|",
                expected=f"every value within +-{bound:.5f}",
                hint="Xavier (Glorot) uniform: bound a = sqrt(6 / (in_features + out_features))")
    expect_that(layer.weight, reaches, bound, call="Linear(600, 400, init='xavier').weight, largest |value|",
                expected=f"values reaching close to +-{bound:.5f}", hint="draw uniformly from the whole interval [-a, a]")
    expect_that(layer.weight, variance_within, 2 / 1000, 0.03, call="Linear(600, 400, init='xavier').weight.var()",
                expected=f"{2 / 1000:.5f} (2 / (in + out)) within 3%",
                hint="a uniform on [-a, a] has variance a^2 / 3 = 2 / (in + out)")
    expect_that(layer.weight, mean_near_zero, 0.05 * bound, call="Linear(600, 400, init='xavier').weight.mean()",
                expected="about 0", hint="the interval [-a, a] is centred on 0")
    expect_equal(layer.bias.data, np.zeros(400, dtype=np.float32), call="Linear(600, 400, init='xavier').bias",
                 hint="biases start at zero")


def test_bad_init_name():
    """An unknown init name is a ValueError that lists the choices; the two known names work"""
    expect_raises(ValueError, lambda: Linear(3, 2, init="he"), call="Linear(3, 2, init='he')",
                  message_contains="kaiming", hint="name the valid choices: kaiming, xavier")
    expect_raises(ValueError, lambda: Linear(3, 2, init="glorot"), call="Linear(3, 2, init='glorot')",
                  message_contains="xavier", hint="name the valid choices: kaiming, xavier")
    manual_seed(2)
    expect_that(Linear(30, 20, init="xavier").weight, uniform_spread, np.sqrt(6 / 50),
                call="Linear(30, 20, init='xavier').weight",
                expected=f"values spread within +-{np.sqrt(6 / 50):.4f}",
                hint="init='xavier' draws uniformly from [-a, a], a = sqrt(6 / (in + out))")
    expect_that(Linear(30, 20, init="kaiming").weight, std_within, np.sqrt(2 / 30), 0.15,
                call="Linear(30, 20, init='kaiming').weight.std()",
                expected=f"about {np.sqrt(2 / 30):.4f} (sqrt(2 / 30))", hint="init='kaiming' is the default, spelled out")


def test_manual_seed_repeats_initialisation():
    """manual_seed makes a Linear layer's initial weights repeat; without it they differ"""
    manual_seed(7)
    first = Linear(5, 4).weight.data.copy()
    second = Linear(5, 4).weight.data.copy()
    manual_seed(7)
    again = Linear(5, 4).weight.data.copy()
    expect_that((first, again), same_arrays, call="manual_seed(7); Linear(5, 4).weight (first layer, twice)",
                expected="the same weights after the same seed",
                hint="draw the weights from tinytorch.tensor.generator(), the generator manual_seed resets")
    expect_that((first, second), different_arrays, call="Linear(5, 4).weight, two layers in a row",
                expected="different weights", hint="each layer draws new numbers; do not reseed inside Linear")
    expect_that(first, std_within, np.sqrt(2 / 5), 0.8, call="manual_seed(7); Linear(5, 4).weight.std()",
                expected=f"roughly {np.sqrt(2 / 5):.3f}", hint="Kaiming normal: std = sqrt(2 / in_features)")


# -- Sequential -----------------------------------------------------------------------------


def test_sequential_matches_torch():
    """Sequential(Linear, relu, Linear) computes what torch.nn.Sequential computes"""
    rng = np.random.default_rng(1)
    w1, b1, w2, b2 = (rng.standard_normal(shape) for shape in ((6, 4), (6,), (2, 6), (2,)))
    x = rng.standard_normal((5, 4))
    first, second = Linear(4, 6), Linear(6, 2)
    set_params(first, w1, b1)
    set_params(second, w2, b2)
    model = Sequential(first, relu, second)
    reference = torch.nn.Sequential(torch_linear(w1, b1), torch.nn.ReLU(), torch_linear(w2, b2))
    expect_close(model(Tensor(x)), reference(torch.tensor(x)), rtol=RTOL,
                 call="Sequential(Linear(4, 6), relu, Linear(6, 2))(x of shape (5, 4))",
                 hint="apply the layers in order, each output feeding the next layer")


def test_sequential_behaves_like_a_list():
    """len(), indexing (also negative), slicing and iteration of a Sequential give its layers in order"""
    layers = mlp_layers(3)
    model = Sequential(*layers)
    x = mlp_input(4)
    expect_equal(len(model), 3, call="len(Sequential(Linear, relu, Linear))", hint="one per layer, activations too")
    expect_close(model[-1](model[1](model[0](Tensor(x)))), mlp_numpy(3, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="model[-1](model[1](model[0](x))), model = Sequential(Linear(4, 6), relu, Linear(6, 2))",
                 hint="index the stored layers like a list; -1 is the last one")
    expect_equal([layer is model[-3 + i] for i, layer in enumerate(layers)], [True, True, True],
                 call="Sequential(a, b, c)[-3], [-2], [-1] are a, b, c",
                 hint="negative indices count from the end, as for a list; return the stored objects")
    expect_equal([got is layer for got, layer in zip(model, layers)] + [len(list(model))], [True, True, True, 3],
                 call="list(Sequential(a, b, c)) is [a, b, c]", hint="__iter__ yields the layers in order")
    tail = model[1:]
    expect_equal(type(tail).__name__, "Sequential", call="type(Sequential(a, b, c)[1:])",
                 hint="a slice is a new Sequential (not a list), so it can be called like a model")
    expect_equal([len(tail)] + [got is layer for got, layer in zip(tail, layers[1:])], [2, True, True],
                 call="Sequential(a, b, c)[1:] holds b, c", hint="the same layer objects, renumbered from 0")
    hidden = model[:1](Tensor(x))
    expect_close(tail(hidden), mlp_numpy(3, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="model[1:](model[:1](x))", hint="the two halves of a model, run one after the other, are the model")


def test_parameter_names_match_torch():
    """named_parameters of Sequential(Linear, relu, Linear) has torch's names, order and shapes"""
    model = Sequential(Linear(4, 6), relu, Linear(6, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    got = [(name, tuple(tensor.shape)) for name, tensor in model.named_parameters()]
    expect_equal(got, [(name, tuple(p.shape)) for name, p in reference.named_parameters()],
                 call="Sequential(Linear(4, 6), relu, Linear(6, 2)).named_parameters()",
                 hint="a layer's position is its name: '0.weight', '0.bias', '2.weight', '2.bias'")
    params = model.parameters()
    expect_equal([p is q for p, q in zip(params, [model[0].weight, model[0].bias, model[2].weight, model[2].bias])]
                 + [len(params)], [True, True, True, True, 4],
                 call="Sequential(...).parameters() are the layers' own weight, bias, weight, bias",
                 hint="an optimizer updates these tensors in place, so return them, not copies")


def test_shared_layer_counted_once():
    """A layer used twice, or a weight shared by two layers, is counted once under its first name"""
    shared = Linear(3, 3)
    model = Sequential(shared, relu, shared)
    torch_shared = torch.nn.Linear(3, 3)
    reference = torch.nn.Sequential(torch_shared, torch.nn.ReLU(), torch_shared)
    expect_equal([name for name, _ in model.named_parameters()], [name for name, _ in reference.named_parameters()],
                 call="Sequential(shared, relu, shared).named_parameters()",
                 hint="skip a tensor you have already listed (compare by identity, id(tensor))")
    expect_equal(model.num_parameters(), 12, call="Sequential(shared, relu, shared).num_parameters()",
                 hint="3*3 weights + 3 biases, counted once")
    expect_equal([child is shared for child in model.children()], [True],
                 call="Sequential(shared, relu, shared).children() is [shared]",
                 hint="list each child Module once, like torch; relu is a plain function, not a Module")
    first, second = Linear(3, 3), Linear(3, 3)
    second.weight = first.weight  # tied weights, as a GPT ties its embedding and output layers
    torch_first, torch_second = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    torch_second.weight = torch_first.weight
    tied = Sequential(first, second)
    expect_equal([name for name, _ in tied.named_parameters()],
                 [name for name, _ in torch.nn.Sequential(torch_first, torch_second).named_parameters()],
                 call="Sequential(a, b) with b.weight = a.weight: named_parameters()",
                 hint="a tensor shared by two layers is listed once, under the first name found")
    expect_equal(tied.num_parameters(), 15, call="Sequential(a, b) with b.weight = a.weight: num_parameters()",
                 hint="9 shared weights + 3 + 3 biases")


def test_nested_names_and_children():
    """Parameters of nested modules and of modules in a list get dotted names, as in torch"""
    model = Block()
    expect_equal([name for name, _ in model.named_parameters()],
                 [name for name, _ in TorchBlock().named_parameters()],
                 call="Block().named_parameters() (body = Sequential(...), heads = [Linear, Linear], "
                      "scale: requires_grad=True, offset: requires_grad=False)",
                 hint="own tensors with requires_grad=True first, then each child's with its attribute name as "
                      "prefix (a list item's prefix is name.index); a tensor without requires_grad is no parameter")
    expect_equal(model.num_parameters(), sum(p.numel() for p in TorchBlock().parameters()),
                 call="Block().num_parameters()", hint="the numbers of every parameter: 2 + (3*5 + 5) + (5*2 + 2) + (5 + 1)")
    children = model.children()
    expect_equal([type(c).__name__ for c in children], ["Sequential", "Linear", "Linear"],
                 call="[type(c).__name__ for c in Block().children()]",
                 hint="children are the Modules among the attributes (and inside lists); a plain function is not one")
    expect_equal([c is e for c, e in zip(children, [model.body, *model.heads])], [True, True, True],
                 call="Block().children() is [body, heads[0], heads[1]]", hint="return the sub-modules themselves")


def test_modules_depth_first_each_once():
    """modules() lists the model, then every nested module depth first, each once"""
    model = Block()
    expect_equal([type(m).__name__ for m in model.modules()],
                 ["Block", "Sequential", "Linear", "Dropout", "Linear", "Linear"],
                 call="[type(m).__name__ for m in Block().modules()]",
                 hint="the module itself, then each child followed by everything inside it (depth first)")
    shared = Linear(2, 2)
    inner = Sequential(shared, relu)
    outer = Sequential(inner, shared)
    expect_equal([m is e for m, e in zip(outer.modules(), [outer, inner, shared])] + [len(outer.modules())],
                 [True, True, True, 3], call="Sequential(Sequential(shared, relu), shared).modules()",
                 hint="a module reachable along two paths is listed once: remember the ones you have seen")


def test_num_parameters_of_mlp():
    """num_parameters of a 784-256-10 MLP is 203,530, as torch counts"""
    model = Sequential(Linear(784, 256), relu, Linear(256, 10))
    reference = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    expect_equal(model.num_parameters(), sum(p.numel() for p in reference.parameters()),
                 call="Sequential(Linear(784, 256), relu, Linear(256, 10)).num_parameters()",
                 hint="in*out + out for each Linear: 784*256 + 256 + 256*10 + 10")


class Scale(Module):
    def forward(self, x, factor=1.0, *, shift=0.0):
        return x * factor + shift


def test_call_passes_arguments_to_forward():
    """module(...) calls forward with every positional and keyword argument"""
    got = Scale()(Tensor(np.array([1.0, 2.0])), 3.0, shift=1.0)
    expect_close(got, np.array([4.0, 7.0]), call="Scale()(Tensor([1., 2.]), 3.0, shift=1.0)",
                 hint="__call__(*args, **kwargs) returns self.forward(*args, **kwargs)")


# -- state_dict -------------------------------------------------------------------------------


def test_state_dict_round_trip():
    """A state_dict holds copies of the numbers; loaded into a fresh model it gives the same outputs"""
    model = mlp(5)
    state = model.state_dict()
    expect_equal(list(state), ["0.weight", "0.bias", "2.weight", "2.bias"], call="model.state_dict().keys()",
                 hint="one entry per parameter, named and ordered as in named_parameters()")
    expect_equal([type(value).__name__ for value in state.values()], ["ndarray"] * 4,
                 call="[type(v).__name__ for v in model.state_dict().values()]", hint="store tensor.data.copy()")
    for name in MLP_SHAPES:
        expect_equal(state[name], mlp_params(5)[name], call=f"model.state_dict()[{name!r}]",
                     hint="the parameter's numbers, as a numpy array")
    fresh = Sequential(Linear(4, 6), relu, Linear(6, 2))
    fresh.load_state_dict(state)
    x = mlp_input(2)
    expect_close(fresh(Tensor(x)), mlp_numpy(5, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="fresh.load_state_dict(model.state_dict()); fresh(x)",
                 hint="copy every value into the parameter of the same name")
    for value in state.values():
        value[...] = 0.0
    expect_close(fresh(Tensor(x)), mlp_numpy(5, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="fresh.load_state_dict(state); then state's arrays are zeroed; fresh(x)",
                 hint="copy the values into the existing arrays (tensor.data[...] = value); rebinding "
                      "tensor.data to the caller's array lets every later change of the caller's dict reach the model")


def test_state_dict_values_are_copies():
    """state_dict returns copies: changing the model later does not change a saved state, nor back"""
    model = mlp(8)
    state = model.state_dict()
    model[0].weight.data[...] = 42.0
    expect_equal(state["0.weight"], mlp_params(8)["0.weight"], call="state = model.state_dict(); model[0].weight.data[...] = 42",
                 hint="a checkpoint must not follow later updates: return tensor.data.copy()")
    state["0.bias"][...] = -1.0
    expect_equal(model[0].bias.data, mlp_params(8)["0.bias"], call="state['0.bias'][...] = -1; model[0].bias",
                 hint="editing a saved state must not reach into the model")


def test_load_state_dict_missing_or_unexpected_key():
    """load_state_dict refuses a missing or an unexpected name with a KeyError naming it, and changes nothing"""
    model = mlp(6)
    missing = mlp_params(7)
    del missing["2.bias"]
    expect_raises(KeyError, lambda: model.load_state_dict(missing), call="load_state_dict(state without '2.bias')",
                  message_contains="2.bias", hint="compare the model's names with the state's and name what is missing")
    unexpected = mlp_params(7)
    unexpected["3.weight"] = np.zeros((2, 2), dtype=np.float32)
    expect_raises(KeyError, lambda: model.load_state_dict(unexpected),
                  call="load_state_dict(state with an extra '3.weight')", message_contains="3.weight",
                  hint="a name the model does not have is a mistake too (a state saved from another model): name it")
    x = mlp_input(9)
    expect_close(model(Tensor(x)), mlp_numpy(6, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="model(x) after the two refused loads", hint="check every name before changing anything")
    model.load_state_dict(mlp_params(7))
    expect_close(model(Tensor(x)), mlp_numpy(7, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="model.load_state_dict(a complete state); model(x)", hint="a complete state loads every value")


def test_load_state_dict_wrong_shape():
    """load_state_dict with a wrongly shaped value raises ValueError naming the key and both shapes"""
    model = mlp(10)
    state = mlp_params(11)
    state["0.weight"] = np.zeros((4, 6), dtype=np.float32)
    error = expect_raises(ValueError, lambda: model.load_state_dict(state),
                          call="load_state_dict({'0.weight': zeros((4, 6)), ...}) into Linear(4, 6)",
                          message_contains="0.weight", hint="check each value's shape against the parameter's")
    expect_that(str(error), mentions_all, "(4, 6)", "(6, 4)", call="the ValueError's message",
                expected="both shapes, (4, 6) and (6, 4)", hint="say which shape the state has and which the model expects")
    late = mlp_params(11)
    late["2.bias"] = np.zeros(3, dtype=np.float32)
    expect_raises(ValueError, lambda: model.load_state_dict(late),
                  call="load_state_dict(state whose last entry, '2.bias', has shape (3,))", message_contains="2.bias",
                  hint="name the key whose shape does not fit")
    x = mlp_input(12)
    expect_close(model(Tensor(x)), mlp_numpy(10, x), rtol=F32_RTOL, atol=F32_ATOL,
                 call="model(x) after load_state_dict failed on '2.bias'",
                 hint="check every name and shape before changing anything, so a failed load leaves the model as it was")


# -- train / eval, zero_grad ---------------------------------------------------------------------


def test_train_eval_reach_every_module():
    """eval() and train() set `training` on every nested module and return the model"""
    model = Block()
    every = [model, model.body, model.body[0], model.body[2], *model.heads]
    expect_equal([m.training for m in every], [True] * 6, call="Block(): training of every module inside",
                 hint="Module.__init__ sets training = True")
    returned = model.eval()
    expect_equal(returned is model, True, call="model.eval() is model",
                 hint="return self, so that model = Model().eval() works")
    expect_equal([m.training for m in every], [False] * 6, call="Block().eval(): training of every module inside",
                 hint="walk every child, and the children's children: the Sequential, the layers inside it, the heads")
    rng = np.random.default_rng(13)
    weight, bias, x = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal((4, 3))
    set_params(model.body[0], weight, bias)
    expect_close(model.body(Tensor(x)), np.maximum(x @ weight.T + bias, 0.0), rtol=RTOL,
                 call="Block().eval().body(x): Linear, relu, Dropout(0.5) in evaluation mode",
                 hint="eval() must reach the Dropout inside the Sequential, which then passes its input through")
    model.train()
    expect_equal([m.training for m in every], [True] * 6, call="Block().eval().train(): training of every module inside",
                 hint="train(mode=True) sets training = mode recursively")


def test_zero_grad_clears_every_gradient():
    """zero_grad sets .grad to None on every parameter, nested ones included, and leaves the values alone"""
    model = Block()
    params = model.parameters()
    expect_equal(len(params), 7, call="len(Block().parameters())",
                 hint="scale, then body.0 and the two heads, weight and bias each; offset is not a parameter")
    rng = np.random.default_rng(14)
    for p in params:
        p.data[...] = rng.standard_normal(p.shape)
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    model.zero_grad()
    expect_equal([p.grad is None for p in params], [True] * 7, call="Block().zero_grad(): grad is None for every parameter",
                 hint="loop over self.parameters() and set grad = None")
    expect_equal(np.concatenate([p.data.ravel() for p in params]), _block_values(14),
                 call="the parameters' values after Block().zero_grad()",
                 hint="zero_grad forgets gradients; the weights themselves stay as they are")


def _block_values(seed):
    rng = np.random.default_rng(seed)
    shapes = [(2,), (5, 3), (5,), (2, 5), (2,), (1, 5), (1,)]
    return np.concatenate([rng.standard_normal(shape).astype(np.float32).ravel() for shape in shapes])


# -- Dropout -------------------------------------------------------------------------------------


def dropout_input(seed, shape, low=None, high=None):
    rng = np.random.default_rng(seed)
    if low is None:
        return rng.standard_normal(shape).astype(np.float32)
    return rng.uniform(low, high, size=shape).astype(np.float32)


def test_dropout_eval_is_identity():
    """Dropout in eval mode returns the input values unchanged"""
    layer = Dropout(0.5).eval()
    expect_equal(layer(Tensor(dropout_input(3, (50, 20)))).data, dropout_input(3, (50, 20)),
                 call="Dropout(0.5).eval()(x)", hint="in evaluation mode dropout does nothing: return the input")


def test_dropout_training_statistics():
    """Dropout(p) in training zeroes about a fraction p and scales survivors by 1/(1-p)"""
    x = dropout_input(4, (200, 500), 1.0, 2.0)
    for p in (0.2, 0.5):
        manual_seed(0)
        out = Dropout(p)(Tensor(x))
        expect_equal(out.shape, (200, 500), call=f"Dropout({p})(x).shape", hint="same shape as the input")
        expect_equal(str(out.dtype), "float32", call=f"Dropout({p})(float32 x).dtype",
                     hint="make the mask in the input's dtype (keep.astype(x.dtype))")
        expect_that(out, zero_fraction_near, p, 0.01,
                    call=f"fraction of zeros in Dropout({p})(x), x of 100,000 values between 1 and 2",
                    expected=f"about {p}", hint="zero each element with probability p (keep it when random >= p)")
        expect_that(out, zero_or_scaled, x, p, call=f"Dropout({p})(x): every element",
                    expected=f"0, or the input times 1 / (1 - {p}) = {1 / (1 - p):.4g}",
                    hint="inverted dropout: survivors are multiplied by 1 / (1 - p)")
        expect_that(out, mean_ratio_near_one, x, 0.02, call=f"Dropout({p})(x).mean()",
                    expected="about the input's mean", hint="scaling by 1/(1-p) keeps the expected value of every element")
        expect_that(out, mask_varies_along_rows_and_columns, call=f"the zeros of Dropout({p})(x)",
                    expected="a fresh random choice for every element",
                    hint="draw a mask of the input's full shape, generator().random(x.shape)")


def test_dropout_mask_is_random_and_seeded():
    """Dropout draws a new mask on every call, and manual_seed repeats them"""
    x = Tensor(np.ones((4, 5, 6), dtype=np.float32))
    layer = Dropout(0.5)
    manual_seed(3)
    first = layer(x).data.copy()
    second = layer(x).data.copy()
    manual_seed(3)
    again = layer(x).data.copy()
    expect_that((first, again), same_arrays, call="manual_seed(3); Dropout(0.5)(x) (the first call, twice)",
                expected="the same mask after the same seed",
                hint="draw the mask from tinytorch.tensor.generator(), the generator manual_seed resets, "
                     "not from np.random")
    expect_that((first, second), different_arrays, call="Dropout(0.5)(x), called twice in a row",
                expected="different masks", hint="draw a fresh mask on every call")
    expect_that(first, zero_or_scaled, np.ones((4, 5, 6)), 0.5, call="Dropout(0.5)(ones of shape (4, 5, 6))",
                expected="0 or 2 everywhere", hint="survivors are multiplied by 1 / (1 - p)")


def test_dropout_zero_probability_is_identity():
    """Dropout(0.0) in training mode returns the input values unchanged"""
    layer = Dropout(0.0)
    expect_equal(layer.training, True, call="Dropout(0.0).training", hint="a new module is in training mode")
    expect_equal(layer(Tensor(dropout_input(5, (10, 10)))).data, dropout_input(5, (10, 10)),
                 call="Dropout(0.0)(x) in training mode", hint="p = 0 drops nothing")


def test_dropout_invalid_probability():
    """Dropout rejects p outside [0, 1) with a ValueError; p = 0.9 is fine"""
    for p in (1.0, -0.1, 1.5):
        expect_raises(ValueError, lambda p=p: Dropout(p), call=f"Dropout({p})",
                      hint="p is a probability of dropping, 0 <= p < 1 (p = 1 would divide by zero)")
    manual_seed(6)
    expect_that(Dropout(0.9)(Tensor(np.ones((20, 20), dtype=np.float32))), zero_or_scaled,
                np.ones((20, 20)), 0.9, call="Dropout(0.9)(ones of shape (20, 20))", expected="0 or 10 everywhere",
                hint="0.9 is a valid probability: drop 90% and multiply the survivors by 1 / (1 - 0.9)")
