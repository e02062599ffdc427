"""Hidden checks for module 15 (quantization): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises
# the checkpoint's oracles and helpers: both files test against one reference
from tests.checkpoints.test_15_quantization import (
    f32,
    linear,
    off_ties,
    spec_of,
    torch_apply,
    torch_fake_quant,
    torch_layer,
    torch_model,
    torch_qparams,
    torch_weight,
)
from tests.checkpoints.common import torch64
from tinytorch.activations import ReLU
from tinytorch.autograd import no_grad
from tinytorch.layers import Dropout, Sequential
from tinytorch.quantization import (
    EPS,
    QuantizedLinear,
    choose_qparams,
    dequantize,
    fake_quantize,
    integer_matmul,
    minmax_range,
    percentile_range,
    quantize,
    quantize_per_channel,
    quantize_per_tensor,
)
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time


def shared_oracle(weight, bias, calibration, x):
    """Linear -> ReLU -> the same Linear: one observer sees the inputs of both uses."""
    spec = ("linear", weight, bias)
    seen = []
    for batch in calibration:
        h = torch.tensor(batch)
        seen.append(h.numpy().copy())
        h = torch.relu(torch_apply(spec, h, torch.float32))
        seen.append(h.numpy().copy())
    scale, zero_point = torch_qparams(seen)
    w_hat = torch_weight(weight)
    h = torch64(x)
    for i in range(2):
        h = torch_apply(("linear", w_hat, bias), torch64(torch_fake_quant(h.numpy(), scale, zero_point)[0]), torch.float64)
        if i == 0:
            h = torch.relu(h)
    return h.numpy()


def test_all_zero_range_uses_eps():
    """An all-zero range gets scale EPS (not 0), like torch's observers, and zero comes back as 0"""
    for symmetric in (False, True):
        scale, zero_point = choose_qparams(0.0, 0.0, symmetric=symmetric)
        expected_scale, expected_zero_point = torch_qparams([np.zeros(4)], symmetric)
        expect_close(scale, expected_scale, rtol=1e-6, atol=0.0, call=f"choose_qparams(0.0, 0.0, symmetric={symmetric})[0]",
                     hint=f"scale = max(scale, EPS) with EPS = {EPS:.3g}: a zero scale would divide by zero")
        expect_equal(int(zero_point), expected_zero_point, call=f"choose_qparams(0.0, 0.0, symmetric={symmetric})[1]",
                     hint="the zero point follows from the (EPS) scale as usual")
        back = dequantize(quantize_per_tensor(np.zeros(3, dtype=np.float32), scale, zero_point), scale, zero_point)
        expect_equal(np.asarray(back.data).tolist(), [0.0, 0.0, 0.0],
                     call=f"round trip of zeros with choose_qparams(0.0, 0.0, symmetric={symmetric})",
                     hint="zero is exact whatever the scale")


def test_shared_layer_is_quantized_once():
    """A Linear used twice gets one observer (seeing both inputs) and one QuantizedLinear in both places"""
    rng = np.random.default_rng(41)
    shared = linear(5, 5, rng, scale=2.0)
    model = Sequential(shared, ReLU(), shared)
    calibration = [rng.standard_normal((6, 5)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((3, 5)).astype(np.float32)
    weight, bias = shared.weight.data.copy(), shared.bias.data.copy()
    quantized = quantize(model, calibration)
    expect_equal(quantized[0] is quantized[2], True, call="quantize(Sequential(shared, ReLU(), shared))[0] is ...[2]",
                 hint="key observers and quantized layers by id(layer): a shared layer stays shared")
    expect_close(quantized(Tensor(x)), shared_oracle(weight, bias, calibration, x), rtol=1e-5, atol=1e-5,
                 call="quantize(Sequential(shared, ReLU(), shared), batches)(x)",
                 hint="one observer for the shared layer, so its range covers the inputs of both uses")


def test_quantize_a_bare_layer():
    """quantize(Linear(...)) itself returns a QuantizedLinear calibrated on the batches"""
    rng = np.random.default_rng(42)
    layer = linear(6, 3, rng)
    calibration = [rng.standard_normal((10, 6)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((4, 6)).astype(np.float32)
    quantized = quantize(layer, calibration)
    expect_equal(type(quantized).__name__, "QuantizedLinear", call="type(quantize(Linear(6, 3), batches))",
                 hint="the model may itself be the layer: _layer_slots reports it too")
    expect_close(quantized(Tensor(x)), torch_layer("linear", x, layer.weight.data, layer.bias.data,
                                                   *torch_qparams(calibration)), rtol=1e-5, atol=1e-5,
                 call="quantize(Linear(6, 3), batches)(x)", hint="calibrate the layer's own input")


def test_quantized_linear_takes_float64_vectors():
    """QuantizedLinear on a single float64 vector (no batch axis) gives float32 (out_features,)"""
    rng = np.random.default_rng(43)
    float_layer = linear(9, 4, rng)
    scale = f32(0.04)
    x = off_ties(rng.uniform(-3.0, 3.0, 9), scale).astype(np.float64)
    out = QuantizedLinear(float_layer, scale, -10)(Tensor(x))
    expect_equal((out.shape, out.dtype), ((4,), np.dtype(np.float32)), call="QuantizedLinear(Linear(9, 4), ...)(float64 x (9,))",
                 hint="any leading axes, even none; the output is float32")
    expect_close(out, torch_layer("linear", x[None], float_layer.weight.data, float_layer.bias.data, scale, -10)[0],
                 rtol=1e-5, atol=1e-5, call="QuantizedLinear(Linear(9, 4), 0.04, -10)(x (9,))",
                 hint="integer_matmul of a 1-D q_x gives the (out,) sums")
    q_x = np.array([-128, 127, 5], dtype=np.int8)
    expect_equal(np.asarray(integer_matmul(q_x, -128, np.array([[127, -127, 1]], dtype=np.int8)).data).tolist(),
                 [0 * 127 + 255 * -127 + 133], call="integer_matmul([-128, 127, 5], -128, [[127, -127, 1]])",
                 hint="(q_x - z) * q_w summed in int32")


def test_percentile_100_and_negative_axes():
    """percentile_range(x, 100) is the min/max range; per-channel helpers accept negative axes"""
    rng = np.random.default_rng(44)
    x = rng.standard_normal((3, 4, 5))
    lo, hi = percentile_range(x, 100.0, axis=-1)
    expect_close(np.stack([lo, hi]), np.stack([x.reshape(-1, 5).min(axis=0), x.reshape(-1, 5).max(axis=0)]),
                 rtol=0.0, atol=1e-15, call="percentile_range(x (3, 4, 5), 100.0, axis=-1)",
                 hint="the 0th and 100th percentiles are the minimum and maximum; axis -1 is the last axis")
    mlo, mhi = minmax_range(x, axis=-2)
    expect_close(np.stack([mlo, mhi]), np.stack([x.transpose(1, 0, 2).reshape(4, -1).min(axis=1),
                                                 x.transpose(1, 0, 2).reshape(4, -1).max(axis=1)]),
                 rtol=0.0, atol=0.0, call="minmax_range(x (3, 4, 5), axis=-2)", hint="axis -2 is axis 1 here")
    scales, zero_points = np.array([0.01, 0.02, 0.03, 0.04]), np.array([3, -3, 0, 9])
    x32 = off_ties(x, scales, axis=-2)
    q = quantize_per_channel(x32, scales, zero_points, axis=-2)
    expect_close(dequantize(q, scales, zero_points, axis=-2),
                 scales[:, None] * (np.clip(np.round(x32.astype(np.float64) / scales[:, None]) + zero_points[:, None],
                                            -128, 127) - zero_points[:, None]),
                 rtol=1e-6, atol=1e-7, call="dequantize(quantize_per_channel(x, 4 scales, axis=-2), ..., axis=-2)",
                 hint="a negative axis counts from the end: axis % x.ndim")


def test_fake_quantize_records_only_when_asked():
    """fake_quantize under no_grad records nothing, and float32 gradients stay float32"""
    rng = np.random.default_rng(45)
    scale = f32(0.1)
    x0 = off_ties(rng.uniform(-20.0, 20.0, 16), scale)
    x = Tensor(x0, requires_grad=True)
    with no_grad():
        quiet = fake_quantize(x, scale, 4)
    expect_equal(bool(quiet.requires_grad), False, call="fake_quantize(x, 0.1, 4) under no_grad().requires_grad",
                 hint="record the FakeQuantizeFn only when needs_grad(x)")
    out = fake_quantize(x, scale, 4)
    out.backward(np.ones(16, dtype=np.float32))
    expect_equal(x.grad.dtype, np.dtype(np.float32), call="x.grad.dtype after fake_quantize(float32 x).backward()",
                 hint="multiply the gradient by a boolean mask: float32 stays float32")
    expect_close(x.grad, torch_fake_quant(x0, scale, 4)[1], rtol=0.0, atol=0.0, call="x.grad after fake_quantize(x in [-20, 20], 0.1, 4)",
                 hint="1 inside the grid [-13.2, 12.3], 0 outside")


def test_calibration_runs_in_eval_mode():
    """quantize calibrates with dropout off (evaluation mode) and leaves the caller's model in training mode"""
    rng = np.random.default_rng(46)
    model = Sequential(linear(6, 12, rng, scale=2.0), ReLU(), Dropout(0.5), linear(12, 3, rng))
    calibration = [rng.standard_normal((16, 6)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((4, 6)).astype(np.float32)
    spec = spec_of(Sequential(model[0], model[1], model[3]))  # the model without its dropout
    quantized = quantize(model, calibration)
    expect_close(quantized(Tensor(x)), torch_model(spec, calibration, x), rtol=1e-5, atol=1e-5,
                 call="quantize(Sequential(Linear, ReLU, Dropout(0.5), Linear), batches)(x)",
                 hint="call .eval() on the copy before calibrating: dropout would scale the observed activations by 2")
    expect_equal(model.training, True, call="model.training after quantize(model, batches)",
                 hint="put the copy in evaluation mode, not the caller's model")
    expect_raises(ValueError, lambda: quantize(model, calibration, method="mean"),
                  call="quantize(model, batches, method='mean')", hint="the Observer refuses an unknown method")
