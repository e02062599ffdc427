"""Checkpoint 03: Module, Linear, Sequential, Dropout.

Oracles: torch.nn.functional.linear and torch.nn.Sequential in float64 (values, parameter
names and order), closed-form initialisation statistics on large layers, and the defining
properties of a parameter registry, a state_dict and inverted dropout.
"""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.tensor import Tensor, manual_seed

RTOL = 1e-10


def relu(t):
    """A plain-function activation: Sequential accepts any callable."""
    return t.maximum(0.0)


def float64_params(layer, rng):
    """Give `layer` float64 weights (and bias) from `rng`; return them as numpy arrays."""
    weight = rng.standard_normal((layer.out_features, layer.in_features))
    layer.weight.data = weight
    bias = None
    if layer.bias is not None:
        bias = rng.standard_normal(layer.out_features)
        layer.bias.data = bias
    return weight, bias


def torch_linear(weight, bias):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


class Block(Module):
    """A nested model: a Sequential body, a list of heads and an activation function."""

    def __init__(self):
        super().__init__()
        self.body = Sequential(Linear(3, 5), relu, Dropout(0.5))
        self.heads = [Linear(5, 2), Linear(5, 1)]
        self.act = relu


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Dropout(0.5))
        self.heads = torch.nn.ModuleList([torch.nn.Linear(5, 2), torch.nn.Linear(5, 1)])


# -- Linear -------------------------------------------------------------------------------


def test_linear_shapes():
    """Linear(4, 3) has weight (3, 4) and bias (3,), float32 parameters, and maps (5, 4) to (5, 3)"""
    layer = Linear(4, 3)
    expect_equal(layer.weight.shape, (3, 4), call="Linear(4, 3).weight.shape",
                 hint="PyTorch's layout: weight is (out_features, in_features)")
    expect_equal(layer.bias.shape, (3,), call="Linear(4, 3).bias.shape", hint="one bias per output")
    for name in ("weight", "bias"):
        tensor = getattr(layer, name)
        expect_true(isinstance(tensor, Tensor) and tensor.requires_grad,
                    call=f"Linear(4, 3).{name}", expected="a Tensor with requires_grad=True",
                    got=f"{type(tensor).__name__} (requires_grad={getattr(tensor, 'requires_grad', None)})",
                    hint="requires_grad=True is what makes a tensor a parameter")
        expect_equal(str(tensor.dtype), "float32", call=f"Linear(4, 3).{name}.dtype",
                     hint="parameters are float32, like PyTorch's")
    out = layer(Tensor(np.ones((5, 4), dtype=np.float32)))
    expect_true(isinstance(out, Tensor), call="Linear(4, 3)(Tensor of shape (5, 4))",
                expected="a Tensor", got=type(out).__name__, hint="compute with Tensor operations: x @ weight.T + bias")
    expect_equal(out.shape, (5, 3), call="Linear(4, 3)(Tensor of shape (5, 4)).shape",
                 hint="(N, in_features) @ (in_features, out_features) -> (N, out_features)")


def test_linear_matches_torch():
    """Linear's forward equals torch.nn.functional.linear in float64"""
    rng = np.random.default_rng(0)
    layer = Linear(4, 3)
    weight, bias = float64_params(layer, rng)
    x = rng.standard_normal((6, 4))
    expected = F.linear(torch.tensor(x), torch.tensor(weight), torch.tensor(bias))
    expect_close(layer(Tensor(x)), expected, rtol=RTOL, call="Linear(4, 3)(x of shape (6, 4)), float64 weights",
                 hint="y = x @ weight.T + bias, with weight of shape (out_features, in_features)")


@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       in_features=st.integers(1, 5), out_features=st.integers(1, 5), seed=st.integers(0, 1000))
def test_linear_any_leading_axes(lead, in_features, out_features, seed):
    """Linear works on inputs of shape (..., in_features), like torch"""
    rng = np.random.default_rng(seed)
    layer = Linear(in_features, out_features)
    weight, bias = float64_params(layer, rng)
    x = rng.standard_normal((*lead, in_features))
    expected = F.linear(torch.tensor(x), torch.tensor(weight), torch.tensor(bias))
    expect_close(layer(Tensor(x)), expected, rtol=RTOL,
                 call=f"Linear({in_features}, {out_features})(x of shape {x.shape})",
                 hint="leading axes are a batch: @ broadcasts over them and the bias broadcasts along the last axis")


def test_kaiming_statistics():
    """Kaiming init: normal, mean 0, std sqrt(2 / in_features); bias zero"""
    manual_seed(0)
    layer = Linear(800, 200)
    weight = layer.weight.data.astype(np.float64)
    expected_std = np.sqrt(2 / 800)
    expect_true(abs(weight.std() / expected_std - 1) < 0.03, call="Linear(800, 200).weight.std()",
                expected=f"{expected_std:.4f} (sqrt(2 / in_features)) within 3%", got=f"{weight.std():.4f}",
                hint="Kaiming (He) normal: std = sqrt(2 / fan_in), fan_in = in_features")
    expect_true(abs(weight.mean()) < 0.05 * expected_std, call="Linear(800, 200).weight.mean()",
                expected="about 0", got=f"{weight.mean():.5f}", hint="draw from a normal with mean 0")
    within = np.mean(np.abs(weight) < expected_std)
    expect_true(abs(within - 0.6827) < 0.01, call="fraction of Linear(800, 200).weight within one std",
                expected="about 0.683, as for a normal distribution", got=f"{within:.3f}",
                hint="Kaiming init draws from a normal distribution (generator().normal), not a uniform one")
    expect_equal(layer.bias.data, np.zeros(200, dtype=np.float32), call="Linear(800, 200).bias",
                 hint="biases start at zero")


def test_xavier_statistics():
    """Xavier init: uniform on [-a, a] with a = sqrt(6 / (in + out)), variance 2 / (in + out)"""
    manual_seed(0)
    layer = Linear(600, 400, init="xavier")
    weight = layer.weight.data.astype(np.float64)
    bound = np.sqrt(6 / 1000)
    expect_true(np.abs(weight).max() <= bound * (1 + 1e-6), call="Linear(600, 400, init='xavier').weight",
                expected=f"every value within +-{bound:.5f}", got=f"largest |value| {np.abs(weight).max():.5f}",
                hint="Xavier (Glorot) uniform: bound a = sqrt(6 / (in_features + out_features))")
    expect_true(np.abs(weight).max() > 0.99 * bound, call="Linear(600, 400, init='xavier').weight",
                expected=f"values reaching close to +-{bound:.5f}", got=f"largest |value| {np.abs(weight).max():.5f}",
                hint="draw uniformly from the whole interval [-a, a]")
    expect_true(abs(weight.var() / (2 / 1000) - 1) < 0.03, call="Linear(600, 400, init='xavier').weight.var()",
                expected=f"{2 / 1000:.5f} (2 / (in + out)) within 3%", got=f"{weight.var():.5f}",
                hint="a uniform on [-a, a] has variance a^2 / 3 = 2 / (in + out)")
    expect_equal(layer.bias.data, np.zeros(400, dtype=np.float32), call="Linear(600, 400, init='xavier').bias",
                 hint="biases start at zero")


def test_bad_init_name():
    """An unknown init name is a ValueError that lists the choices"""
    expect_raises(ValueError, lambda: Linear(3, 2, init="he"), call="Linear(3, 2, init='he')",
                  message_contains="kaiming", hint="name the valid choices: kaiming, xavier")
    expect_raises(ValueError, lambda: Linear(3, 2, init="glorot"), call="Linear(3, 2, init='glorot')",
                  message_contains="xavier", hint="name the valid choices: kaiming, xavier")


def test_manual_seed_repeats_initialisation():
    """manual_seed makes a Linear layer's initial weights repeat; without it they differ"""
    manual_seed(7)
    first = Linear(5, 4).weight.data.copy()
    second = Linear(5, 4).weight.data.copy()
    manual_seed(7)
    again = Linear(5, 4).weight.data.copy()
    expect_equal(again, first, call="manual_seed(7); Linear(5, 4).weight (twice)",
                 hint="draw the weights from tinytorch.tensor.generator(), the generator manual_seed resets")
    expect_true(not np.array_equal(first, second), call="Linear(5, 4).weight, two layers in a row",
                expected="different weights", got="identical weights",
                hint="each layer draws new numbers; do not reseed inside Linear")


# -- Sequential -----------------------------------------------------------------------------


def test_sequential_matches_torch():
    """Sequential(Linear, relu, Linear) computes what torch.nn.Sequential computes"""
    rng = np.random.default_rng(1)
    first, second = Linear(4, 6), Linear(6, 2)
    w1, b1 = float64_params(first, rng)
    w2, b2 = float64_params(second, rng)
    model = Sequential(first, relu, second)
    reference = torch.nn.Sequential(torch_linear(w1, b1), torch.nn.ReLU(), torch_linear(w2, b2))
    x = rng.standard_normal((5, 4))
    expect_close(model(Tensor(x)), reference(torch.tensor(x)), rtol=RTOL,
                 call="Sequential(Linear(4, 6), relu, Linear(6, 2))(x of shape (5, 4))",
                 hint="apply the layers in order, each output feeding the next layer")


def test_sequential_behaves_like_a_list():
    """len(), indexing (also negative) and iteration of a Sequential give its layers in order"""
    layers = [Linear(2, 3), relu, Linear(3, 1)]
    model = Sequential(*layers)
    expect_equal(len(model), 3, call="len(Sequential(Linear, relu, Linear))", hint="one per layer, activations too")
    expect_true(model[0] is layers[0] and model[1] is layers[1] and model[-1] is layers[2],
                call="Sequential(a, b, c)[0], [1], [-1]", expected="a, b, c (the same objects)",
                got=f"{model[0]!r}, {model[1]!r}, {model[-1]!r}", hint="index the stored layers like a list")
    got = list(model)
    expect_true(len(got) == 3 and all(g is l for g, l in zip(got, layers)),
                call="list(Sequential(a, b, c))", expected="[a, b, c]", got=repr(got),
                hint="__iter__ yields the layers in order")


def test_parameter_names_match_torch():
    """named_parameters of Sequential(Linear, relu, Linear) has torch's names, order and shapes"""
    model = Sequential(Linear(4, 6), relu, Linear(6, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    got = [(name, tuple(tensor.shape)) for name, tensor in model.named_parameters()]
    expected = [(name, tuple(p.shape)) for name, p in reference.named_parameters()]
    expect_equal(got, expected, call="Sequential(Linear(4, 6), relu, Linear(6, 2)).named_parameters()",
                 hint="a layer's position is its name: '0.weight', '0.bias', '2.weight', '2.bias'")
    params = model.parameters()
    expect_true(len(params) == 4 and params[0] is model[0].weight and params[3] is model[2].bias,
                call="Sequential(...).parameters()", expected="the layers' own Tensor objects, in order",
                got=repr([type(p).__name__ for p in params]),
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
    children = model.children()
    expect_true(len(children) == 1 and children[0] is shared, call="Sequential(shared, relu, shared).children()",
                expected="[shared] (once; relu is a plain function, not a Module)",
                got=repr([type(c).__name__ for c in children]), hint="list each child Module once, like torch")
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
                 call="Block().named_parameters() (body = Sequential(...), heads = [Linear, Linear])",
                 hint="recurse into each child with its attribute name as prefix; a list item's prefix is name.index")
    children = model.children()
    expect_true(len(children) == 3 and children[0] is model.body and children[1] is model.heads[0]
                and children[2] is model.heads[1],
                call="Block().children()", expected="[body, heads[0], heads[1]]",
                got=repr([type(c).__name__ for c in children]),
                hint="children are the Modules among the attributes (and inside lists); a plain function is not one")


def test_num_parameters_of_mlp():
    """num_parameters of a 784-256-10 MLP is 203,530, as torch counts"""
    model = Sequential(Linear(784, 256), relu, Linear(256, 10))
    reference = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    expect_equal(model.num_parameters(), sum(p.numel() for p in reference.parameters()),
                 call="Sequential(Linear(784, 256), relu, Linear(256, 10)).num_parameters()",
                 hint="in*out + out for each Linear: 784*256 + 256 + 256*10 + 10")


def test_call_passes_arguments_to_forward():
    """module(...) calls forward with every positional and keyword argument"""

    class Scale(Module):
        def forward(self, x, factor=1.0, *, shift=0.0):
            return x * factor + shift

    got = Scale()(Tensor(np.array([1.0, 2.0])), 3.0, shift=1.0)
    expect_close(got, np.array([4.0, 7.0]), call="Scale()(Tensor([1., 2.]), 3.0, shift=1.0)",
                 hint="__call__(*args, **kwargs) returns self.forward(*args, **kwargs)")


# -- state_dict -------------------------------------------------------------------------------


def test_state_dict_round_trip():
    """A state_dict loaded into a freshly built model gives identical outputs"""
    manual_seed(1)
    model = Sequential(Linear(4, 6), relu, Linear(6, 2))
    state = model.state_dict()
    expect_equal(list(state), ["0.weight", "0.bias", "2.weight", "2.bias"], call="model.state_dict().keys()",
                 hint="one entry per parameter, named and ordered as in named_parameters()")
    for name, value in state.items():
        expect_true(isinstance(value, np.ndarray), call=f"model.state_dict()[{name!r}]",
                    expected="a numpy array", got=type(value).__name__, hint="store tensor.data.copy()")
    fresh = Sequential(Linear(4, 6), relu, Linear(6, 2))
    fresh.load_state_dict(state)
    x = Tensor(np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32))
    expect_equal(fresh(x).data, model(x).data, call="fresh.load_state_dict(model.state_dict()); fresh(x)",
                 hint="copy every value into the parameter of the same name")


def test_state_dict_values_are_copies():
    """state_dict returns copies: changing the model later does not change a saved state, nor back"""
    model = Sequential(Linear(2, 2))
    state = model.state_dict()
    saved = state["0.weight"].copy()
    model[0].weight.data[...] = 42.0
    expect_equal(state["0.weight"], saved, call="state = model.state_dict(); model[0].weight.data[...] = 42",
                 hint="a checkpoint must not follow later updates: return tensor.data.copy()")
    state["0.bias"][...] = -1.0
    expect_equal(model[0].bias.data, np.zeros(2, dtype=np.float32), call="state['0.bias'][...] = -1",
                 hint="editing a saved state must not reach into the model")


def test_load_state_dict_missing_key():
    """load_state_dict with a missing name raises KeyError naming it"""
    model = Sequential(Linear(3, 2), relu, Linear(2, 1))
    state = model.state_dict()
    del state["2.bias"]
    expect_raises(KeyError, lambda: model.load_state_dict(state), call="load_state_dict(state without '2.bias')",
                  message_contains="2.bias", hint="compare the model's names with the state's and name what is missing")


def test_load_state_dict_wrong_shape():
    """load_state_dict with a wrongly shaped value raises ValueError naming the key and both shapes"""
    model = Sequential(Linear(3, 2))
    state = model.state_dict()
    state["0.weight"] = np.zeros((3, 2), dtype=np.float32)
    error = expect_raises(ValueError, lambda: model.load_state_dict(state),
                          call="load_state_dict({'0.weight': zeros((3, 2)), ...}) into Linear(3, 2)",
                          message_contains="0.weight", hint="check each value's shape against the parameter's")
    message = str(error)
    expect_true("(3, 2)" in message and "(2, 3)" in message, call="the ValueError's message",
                expected="both shapes, (3, 2) and (2, 3)", got=message,
                hint="say which shape the state has and which the model expects")


# -- train / eval, zero_grad ---------------------------------------------------------------------


def test_train_eval_reach_every_module():
    """eval() and train() set `training` on every nested module and return the model"""
    model = Block()
    every = [model, model.body, model.body[0], model.body[2], *model.heads]
    expect_true(all(m.training for m in every), call="Block()", expected="training == True everywhere",
                got=repr([m.training for m in every]), hint="Module.__init__ sets training = True")
    returned = model.eval()
    expect_true(returned is model, call="model.eval()", expected="the model itself",
                got=repr(type(returned).__name__), hint="return self, so that model = Model().eval() works")
    expect_true(not any(m.training for m in every), call="Block().eval()",
                expected="training == False in the model, its Sequential, the layers inside it and the listed heads",
                got=repr([m.training for m in every]), hint="walk every child, and the children's children")
    model.train()
    expect_true(all(m.training for m in every), call="Block().eval().train()", expected="training == True everywhere",
                got=repr([m.training for m in every]), hint="train(mode=True) sets training = mode recursively")


def test_zero_grad_clears_every_gradient():
    """zero_grad sets .grad to None on every parameter, nested ones included"""
    model = Block()
    params = model.parameters()
    expect_equal(len(params), 6, call="len(Block().parameters())", hint="body.0 and two heads, weight and bias each")
    for p in params:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    model.zero_grad()
    expect_true(all(p.grad is None for p in params), call="Block().zero_grad()", expected="every .grad is None",
                got=repr([None if p.grad is None else "a Tensor" for p in params]),
                hint="loop over self.parameters() and set grad = None")


# -- Dropout -------------------------------------------------------------------------------------


def test_dropout_eval_is_identity():
    """Dropout in eval mode returns the input values unchanged"""
    x = np.random.default_rng(3).standard_normal((50, 20)).astype(np.float32)
    layer = Dropout(0.5).eval()
    expect_equal(layer(Tensor(x)).data, x, call="Dropout(0.5).eval()(x)",
                 hint="in evaluation mode dropout does nothing: return the input")


def test_dropout_training_statistics():
    """Dropout(p) in training zeroes about a fraction p and scales survivors by 1/(1-p)"""
    manual_seed(0)
    x = np.random.default_rng(4).uniform(1.0, 2.0, size=(200, 500)).astype(np.float32)
    for p in (0.2, 0.5):
        out = Dropout(p)(Tensor(x)).data
        expect_equal(out.shape, x.shape, call=f"Dropout({p})(x).shape", hint="same shape as the input")
        zeroed = np.mean(out == 0)
        expect_true(abs(zeroed - p) < 0.01, call=f"fraction of zeros in Dropout({p})(x), x of 100,000 ones-to-twos",
                    expected=f"about {p}", got=f"{zeroed:.4f}", hint="zero each element with probability p")
        kept = out != 0
        expect_close(out[kept], x[kept] / (1 - p), rtol=1e-5, call=f"surviving values of Dropout({p})(x)",
                     hint="inverted dropout: survivors are multiplied by 1 / (1 - p)")
        expect_true(abs(out.mean() / x.mean() - 1) < 0.02, call=f"Dropout({p})(x).mean()",
                    expected=f"about {x.mean():.4f} (the input's mean)", got=f"{out.mean():.4f}",
                    hint="scaling by 1/(1-p) keeps the expected value of every element")


def test_dropout_zero_probability_is_identity():
    """Dropout(0.0) in training mode returns the input values unchanged"""
    x = np.random.default_rng(5).standard_normal((10, 10)).astype(np.float32)
    layer = Dropout(0.0)
    expect_true(layer.training, call="Dropout(0.0).training", expected="True", got=repr(layer.training),
                hint="a new module is in training mode")
    expect_equal(layer(Tensor(x)).data, x, call="Dropout(0.0)(x) in training mode", hint="p = 0 drops nothing")


def test_dropout_invalid_probability():
    """Dropout rejects p outside [0, 1) with a ValueError"""
    for p in (1.0, -0.1, 1.5):
        expect_raises(ValueError, lambda p=p: Dropout(p), call=f"Dropout({p})",
                      hint="p is a probability of dropping, 0 <= p < 1 (p = 1 would divide by zero)")
