"""Hidden checks for module 14 (profiling): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import tinytorch.spatial as spatial
from grader.expect import expect_close, expect_equal, expect_raises
# the checkpoint's oracles and helpers: both files test against one reference
from tests.checkpoints.test_14_profiling import (
    SMALL_GPT,
    random64,
    torch_attention_flops,
    torch_count,
    torch_flops,
    torch_gpt_flops,
)
from tinytorch.activations import ReLU
from tinytorch.layers import Linear, Module, Sequential
from tinytorch.profiling import (
    FlopCounter,
    Timing,
    attention_flops,
    conv2d_flops,
    conv2d_output_size,
    count_parameters,
    gpt_forward_flops,
    profile,
)
from tinytorch.tensor import Tensor
from tinytorch.transformers import GPTConfig


def test_vector_products_with_batch_axes():
    """(K,) @ (B, K, N), (B, M, K) @ (K,) and a direct call of spatial.conv2d are counted"""
    rng = np.random.default_rng(11)
    with FlopCounter() as counter:
        Tensor(rng.standard_normal(4)) @ Tensor(rng.standard_normal((3, 4, 5)))
    expect_equal(counter.flops, 2 * 3 * 5 * 4, call="(4,) @ (3, 4, 5)", hint="2 * out.size * K, out of shape (3, 5)")
    with FlopCounter() as counter:
        Tensor(rng.standard_normal((2, 6, 4))) @ Tensor(rng.standard_normal(4))
    expect_equal(counter.flops, 2 * 2 * 6 * 4, call="(2, 6, 4) @ (4,)", hint="2 * out.size * K, out of shape (2, 6)")
    images, weight = rng.standard_normal((1, 2, 6, 5)), rng.standard_normal((3, 2, 2, 3))
    with FlopCounter() as counter:
        spatial.conv2d(Tensor(images), Tensor(weight), None, 1, 1)
    expect_equal(counter.flops,
                 torch_flops(lambda: F.conv2d(torch.tensor(images), torch.tensor(weight), stride=1, padding=1)),
                 call="tinytorch.spatial.conv2d(images (1, 2, 6, 5), weight (3, 2, 2, 3), None, 1, 1)",
                 hint="the wrapper of conv2d replaces the attribute of the module tinytorch.spatial")


class Holder(Module):
    """Tensors in a list attribute, one of them shared with a child, and a frozen one."""

    def __init__(self) -> None:
        super().__init__()
        self.child = Linear(3, 2)
        self.table = [Tensor(np.zeros((4, 5)), requires_grad=True), self.child.weight]
        self.frozen = Tensor(np.zeros(7))


def test_count_parameters_inside_lists_and_shared_across_modules():
    """tensors inside list attributes count, a tensor two modules hold counts once, frozen ones on request"""
    reference = nn.Module()
    reference.child = nn.Linear(3, 2)
    reference.table = nn.ParameterList([nn.Parameter(torch.zeros(4, 5)), reference.child.weight])
    reference.frozen = nn.Parameter(torch.zeros(7), requires_grad=False)
    expect_equal(count_parameters(Holder()), torch_count(reference), call="count_parameters(Holder())",
                 hint="open lists and tuples; count each Tensor once by id, frozen ones too")
    expect_equal(count_parameters(Holder(), trainable_only=True), torch_count(reference, trainable_only=True),
                 call="count_parameters(Holder(), trainable_only=True)", hint="requires_grad tensors only")


def test_conv_closed_forms_with_rectangular_settings():
    """conv2d_flops with tuple kernel, stride and padding and no bias; impossible settings are ValueErrors"""
    expect_equal(conv2d_flops(3, 5, (1, 4), 7, 9, stride=(3, 2), padding=(0, 2), batch=2, bias=False),
                 torch_flops(lambda: F.conv2d(random64(2, 3, 7, 9), random64(5, 3, 1, 4), stride=(3, 2), padding=(0, 2))),
                 call="conv2d_flops(3, 5, (1, 4), 7, 9, stride=(3, 2), padding=(0, 2), batch=2, bias=False)",
                 hint="kernel, stride and padding are (height, width) pairs")
    expect_raises(ValueError, lambda: conv2d_output_size(6, 6, 3, padding=-1), call="conv2d_output_size(6, 6, 3, padding=-1)",
                  hint="padding < 0 is a ValueError")
    expect_raises(ValueError, lambda: conv2d_flops(1, 1, (2, 6), 5, 5, padding=(0, 0)),
                  call="conv2d_flops(1, 1, (2, 6), 5, 5)", hint="a kernel wider than the input is a ValueError")


def test_attention_flops_of_a_cached_step():
    """attention_flops of one new token over a long cache, and without projections"""
    expect_equal(attention_flops(1, 16, batch=4, kv_len=30),
                 torch_attention_flops(4, 1, 30, 16, 4, projections=True),
                 call="attention_flops(1, 16, batch=4, kv_len=30)",
                 hint="one query over 30 keys; only the new token is projected")
    expect_equal(attention_flops(6, 8, projections=False), torch_attention_flops(1, 6, 6, 8, 2, projections=False),
                 call="attention_flops(6, 8, projections=False)", hint="scores and weighted sum only")


def test_profile_of_a_layer_used_twice():
    """a layer called twice gets one row with the FLOPs and bytes of both calls"""
    shared = Linear(4, 4)
    model = Sequential(shared, ReLU(), shared, Linear(4, 2))
    rows = profile(model, Tensor(np.ones((3, 4), dtype=np.float32)))
    expect_equal([(r.name, r.parameters, r.flops, r.output_shape, r.activation_bytes) for r in rows],
                 [("0", 20, 2 * torch_flops(lambda: F.linear(random64(3, 4), random64(4, 4))), (3, 4), 2 * 3 * 4 * 4),
                  ("3", 10, torch_flops(lambda: F.linear(random64(3, 4), random64(2, 4))), (3, 2), 3 * 2 * 4)],
                 call="profile(Sequential(shared, ReLU(), shared, Linear(4, 2)), x (3, 4)) rows",
                 hint="one row per module (modules() lists it once), its calls added up")


class Pair(Module):
    """A leaf that returns two tensors."""

    def forward(self, x):
        return x @ Tensor(np.ones((3, 5))), x


def test_profile_of_a_leaf_model_with_a_tuple_output():
    """a model without sub-modules is one row named (model); a tuple output's bytes add up"""
    rows = profile(Pair(), Tensor(np.ones((2, 3))))
    expect_equal([(r.name, r.kind, r.flops, r.output_shape, r.activation_bytes) for r in rows],
                 [("(model)", "Pair", 2 * 2 * 5 * 3, ((2, 5), (2, 3)), (10 + 6) * 8)],
                 call="profile(Pair(), x of shape (2, 3), float64)", hint="sum the bytes of every tensor of a tuple")


def test_timing_interpolates_percentiles():
    """Timing.from_times: linear percentiles for an even count, zero spread for one time"""
    times = [4.0, 1.0, 3.0, 2.0]
    expect_close((Timing.from_times(times).median, Timing.from_times(times).iqr),
                 (np.median(times), np.percentile(times, 75) - np.percentile(times, 25)),
                 call="Timing.from_times([4.0, 1.0, 3.0, 2.0])", hint="median 2.5, IQR 3.25 - 1.75 = 1.5")
    expect_close((Timing.from_times([0.5]).median, Timing.from_times([0.5]).iqr), (0.5, 0.0),
                 call="Timing.from_times([0.5])", hint="one time: it is the median, and there is no spread")


def test_gpt_forward_flops_full_context():
    """gpt_forward_flops of a SwiGLU, RoPE, bias-free GPT at the full context, batch 3"""
    config = GPTConfig(**{**SMALL_GPT, "mlp": "swiglu", "position": "rope", "bias": False, "n_layer": 1})
    expect_equal(gpt_forward_flops(config, 12, batch=3), torch_gpt_flops(config, 3, 12),
                 call=f"gpt_forward_flops({config}, 12, batch=3)", hint="seq_len == block_size is allowed")
