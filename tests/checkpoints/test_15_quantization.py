"""Checkpoint 15: int8 quantization, calibration, fake quantization, quantized layers and models.

Oracles: torch.quantize_per_tensor / torch.quantize_per_channel (`int_repr()`) on the same
float32 inputs; PyTorch's MinMaxObserver and PerChannelMinMaxObserver for scales and zero
points (affine with quant range -128..127, symmetric with -127..127); torch.amin / amax and
torch.quantile (float64) for the calibration ranges; torch.fake_quantize_per_channel_affine
in float64 for fake quantization and its straight-through gradient (a one-channel view for
the per-tensor case: torch's per-tensor kernel rounds its result to float32); exact int64
products for the int32 accumulation; and, for the quantized layers and models, a float64
PyTorch model that fake-quantizes every layer's input and weight with the parameters its own
observers found. Closed forms where they teach (zero is exact, the range's ends map to -128
and 127, 4x smaller weights).

Rounding: the lesson rounds half to even (np.round), as torch does, but a correct
implementation may round a value lying *exactly* on a half either way (and float32 / float64
arithmetic, `x / s` or `x * (1 / s)`, moves a value within a hair of a half to either side).
So no test depends on a tie: inputs quantized with a known scale are moved (by `off_ties`) at
least a tenth of a step away from every half, and the inputs of the whole-model tests were
checked to stay more than 0.002 of a step away from one at every quantized layer (a hundred
times what float32 rather than float64 arithmetic, in any order, can move a value).

Every weight comes from this file's own generators: layers are built, then their weights are
replaced, so nothing depends on how a student's Linear or Conv2d draws its initial numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import blobs, show, torch64
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Module, Sequential
from tinytorch.quantization import (
    EPS,
    Observer,
    QuantizedConv2d,
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
    weight_nbytes,
)
from tinytorch.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.tensor import Tensor

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

QUANTIZE_HINT = "q = clamp(round(x / scale) + zero_point, -128, 127), as int8"
LAYER_HINT = ("quantize x with (input_scale, input_zero_point), integer_matmul with qweight, then "
              "sums * input_scale * weight_scale (one scale per output channel) + bias")


def f32(value: float) -> float:
    """The float32 number nearest `value`, as a Python float (torch keeps scales in float32)."""
    return float(np.float32(value))


def off_ties(x, scale, axis=None) -> np.ndarray:
    """x as float32, each value moved (by at most a tenth of a step) so that x / scale is at least
    0.1 away from a half-integer: every correct rounding gives the same integer."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        s = s.reshape(shape)
    u = x / s
    frac = u - np.floor(u)
    u = np.where(np.abs(frac - 0.5) < 0.1, np.floor(u) + np.where(frac < 0.5, 0.4, 0.6), u)
    return (u * s).astype(np.float32)


def weights_off_ties(w, per_channel=True) -> np.ndarray:
    """A weight moved off the ties of its own symmetric min/max grid (amax / 127, per row or per tensor)."""
    w = np.asarray(w, dtype=np.float32)
    if per_channel:
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        return off_ties(w, amax / np.float32(127), axis=0)
    return off_ties(w, np.abs(w).max() / np.float32(127))


def tensor_nbytes(value) -> int:
    return int(np.asarray(value.data if isinstance(value, Tensor) else value).nbytes)


# -- the oracles (PyTorch) -------------------------------------------------------------------


def torch_quantize(x, scale, zero_point) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates its quantized tensors; their values are the oracle
        q = torch.quantize_per_tensor(torch.tensor(np.asarray(x, dtype=np.float32)), float(scale), int(zero_point),
                                      torch.qint8)
        return q.int_repr().numpy()


def torch_quantize_channels(x, scales, zero_points, axis) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_channel(torch.tensor(np.asarray(x, dtype=np.float32)),
                                       torch.tensor(np.asarray(scales, dtype=np.float64)),
                                       torch.tensor(np.asarray(zero_points, dtype=np.int64)), axis, torch.qint8)
        return q.int_repr().numpy()


def observer(symmetric: bool, axis=None):
    """PyTorch's observer for our scheme: affine on -128..127, or symmetric on -127..127."""
    if axis is None:
        if symmetric:
            return MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127)
        return MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_affine)
    if symmetric:
        return PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                        quant_min=-127, quant_max=127)
    return PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=torch.per_channel_affine)


def torch_qparams(batches, symmetric=False, axis=None):
    """(scale, zero_point) of PyTorch's observer after seeing every batch (float32), as numpy."""
    watcher = observer(symmetric, axis)
    for batch in batches:
        watcher(torch.tensor(np.asarray(batch, dtype=np.float32)))
    scale, zero_point = watcher.calculate_qparams()
    if axis is None:
        return float(scale.item()), int(zero_point.item())
    return scale.numpy().astype(np.float64), zero_point.numpy().astype(np.int64)


def torch_range_qparams(lo, hi, symmetric=False):
    """PyTorch's qparams for the range [lo, hi] (an observer shown just its two ends)."""
    return torch_qparams([np.array([lo, hi])], symmetric)


def torch_fake_quant(x, scale, zero_point, axis=None, upstream=None):
    """torch.fake_quantize_per_channel_affine in float64 (one channel for the per-tensor case):
    (values, gradient of sum(values * upstream))."""
    t = torch64(x, requires_grad=True)
    if axis is None:
        view, axis_used = t.reshape(1, -1), 0
        scales, zero_points = [scale], [zero_point]
    else:
        view, axis_used, scales, zero_points = t, axis, scale, zero_point
    out = torch.fake_quantize_per_channel_affine(
        view, torch.tensor(np.asarray(scales, dtype=np.float32)), torch.tensor(np.asarray(zero_points, dtype=np.int32)),
        axis_used, -128, 127).reshape(t.shape)
    out.backward(torch.ones_like(out) if upstream is None else torch64(upstream))
    return out.detach().numpy(), t.grad.numpy()


def torch_weight(weight, per_channel=True):
    """The weight as a quantized layer sees it: symmetric min/max, fake-quantized, float64."""
    weight = np.asarray(weight, dtype=np.float32)
    if per_channel:
        scales, _ = torch_qparams([weight], symmetric=True, axis=0)
        return torch_fake_quant(weight, scales, np.zeros(len(scales), dtype=np.int64), axis=0)[0]
    scale, _ = torch_qparams([weight], symmetric=True)
    return torch_fake_quant(weight, scale, 0)[0]


def torch_layer(kind, x, weight, bias, input_scale, input_zero_point, per_channel=True, stride=1, padding=0):
    """A float64 torch Linear/Conv2d on fake-quantized input and weight: what the int8 layer computes."""
    x_hat = torch64(torch_fake_quant(x, input_scale, input_zero_point)[0])
    w_hat = torch64(torch_weight(weight, per_channel))
    b = None if bias is None else torch64(bias)
    if kind == "linear":
        return F.linear(x_hat, w_hat, b).numpy()
    return F.conv2d(x_hat, w_hat, b, stride=stride, padding=padding).numpy()


def torch_apply(layer, h, dtype):
    """One layer of a spec (see torch_model) in torch, in float."""
    kind = layer[0]
    if kind == "linear":
        return F.linear(h, torch.tensor(layer[1], dtype=dtype), torch.tensor(layer[2], dtype=dtype))
    if kind == "conv":
        return F.conv2d(h, torch.tensor(layer[1], dtype=dtype), torch.tensor(layer[2], dtype=dtype),
                        stride=layer[3], padding=layer[4])
    if kind == "relu":
        return torch.relu(h)
    if kind == "maxpool":
        return F.max_pool2d(h, layer[1])
    return h.reshape(h.shape[0], -1)  # flatten


def torch_model_float(spec, x):
    """The float model of a spec, in float64."""
    h = torch64(x)
    for layer in spec:
        h = torch_apply(layer, h, torch.float64)
    return h.numpy()


def torch_model(spec, calibration, x, method="minmax", percentile=99.99, per_channel=True):
    """The quantized model's output by PyTorch: calibrate the float32 model with PyTorch's observers
    (or torch.quantile for percentiles) on each Linear/Conv2d input, then run it in float64 with
    every such input and weight fake-quantized. spec: ("linear", W, b), ("conv", W, b, stride,
    padding), ("relu",), ("maxpool", k), ("flatten",)."""
    seen = {i: [] for i, layer in enumerate(spec) if layer[0] in ("linear", "conv")}
    for batch in calibration:
        h = torch.tensor(np.asarray(batch, dtype=np.float32))
        for i, layer in enumerate(spec):
            if i in seen:
                seen[i].append(h.numpy().copy())
            h = torch_apply(layer, h, torch.float32)
    qparams = {}
    for i, arrays in seen.items():
        if method == "minmax":
            qparams[i] = torch_qparams(arrays)
        else:
            flat = torch.tensor(np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64))
            lo = torch.quantile(flat, (100.0 - percentile) / 100.0).item()
            hi = torch.quantile(flat, percentile / 100.0).item()
            qparams[i] = torch_range_qparams(lo, hi)
    h = torch64(x)
    for i, layer in enumerate(spec):
        if i in qparams:
            h = torch64(torch_fake_quant(h.numpy(), *qparams[i])[0])
            layer = (layer[0], torch_weight(layer[1], per_channel), *layer[2:])
            h = torch_apply(layer, h, torch.float64)
        else:
            h = torch_apply(layer, h, torch.float64)
    return h.numpy()


def torch_reduced(x, reduce, axis):
    """torch's amin/amax (reduce) of x over every axis but `axis` (all axes when None)."""
    t = torch64(x)
    if axis is None:
        return getattr(t, reduce)().numpy()
    return getattr(t, reduce)(dim=tuple(a for a in range(x.ndim) if a != axis)).numpy()


def torch_percentile(x, percentile, axis):
    """torch.quantile of x (per slice along `axis`), float64."""
    t = torch64(x)
    rows = t.reshape(-1) if axis is None else t.movedim(axis, 0).reshape(x.shape[axis], -1)
    return torch.quantile(rows, percentile / 100.0, dim=None if axis is None else 1).numpy()


# -- predicates, judged on the trusted side over the values your code produced ----------------


def within_half_step(pair, scale) -> bool:
    """(x_hat, x): every round-trip value within half a step (plus float32 rounding) of x."""
    x_hat, x = (np.asarray(a, dtype=np.float64) for a in pair)
    slack = 1e-6 * (np.abs(x) + scale)
    return x_hat.shape == x.shape and bool(np.all(np.abs(x_hat - x) <= scale / 2 + slack))


def row_errors_within(pair, bounds) -> bool:
    """(x_hat, x): the largest error of row r is at most bounds[r]."""
    x_hat, x = (np.asarray(a, dtype=np.float64) for a in pair)
    if x_hat.shape != x.shape:
        return False
    worst = np.abs(x_hat - x).max(axis=1)
    return bool(np.all(worst <= np.asarray(bounds)))


def much_smaller(pair, factor) -> bool:
    """(a, b): a positive and at least `factor` times smaller than b."""
    a, b = (float(np.asarray(v)) for v in pair)
    return 0 < a and a * factor <= b


def relative_error_below(got, reference, bound) -> bool:
    """||got - reference|| <= bound * ||reference||, same shape."""
    got, reference = np.asarray(got, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return got.shape == reference.shape and bool(np.linalg.norm(got - reference) <= bound * np.linalg.norm(reference))


def keeps_accuracy(logits, labels, float_accuracy, max_drop) -> bool:
    """Accuracy of argmax(logits) at most max_drop below the float model's."""
    logits = np.asarray(logits)
    if logits.shape != (len(labels), 3):
        return False
    return float((logits.argmax(axis=1) == np.asarray(labels)).mean()) >= float_accuracy - max_drop


def identical(pair) -> bool:
    first, second = (np.asarray(a) for a in pair)
    return first.shape == second.shape and first.size > 0 and bool(np.array_equal(first, second))


def at_least(value, bound) -> bool:
    return float(value) >= bound


# -- models with the test's own weights ----------------------------------------------------------


def linear(in_features, out_features, rng, bias=True, scale=1.0) -> Linear:
    """A Linear holding weights drawn here (off the ties of their own grid)."""
    layer = Linear(in_features, out_features, bias=bias)
    layer.weight.data = weights_off_ties(scale * rng.standard_normal((out_features, in_features)) / np.sqrt(in_features))
    if bias:
        layer.bias.data = (0.1 * rng.standard_normal(out_features)).astype(np.float32)
    return layer


def conv(c_in, c_out, kernel, rng, bias=True, **settings_) -> Conv2d:
    layer = Conv2d(c_in, c_out, kernel, bias=bias, **settings_)
    kh, kw = layer.kernel_size
    layer.weight.data = weights_off_ties(rng.standard_normal((c_out, c_in, kh, kw)) / np.sqrt(c_in * kh * kw))
    if bias:
        layer.bias.data = (0.1 * rng.standard_normal(c_out)).astype(np.float32)
    return layer


def spec_of(model) -> list:
    """The torch oracle's description of a Sequential built from Linear, Conv2d, ReLU, MaxPool2d, Flatten."""
    spec = []
    for layer in model:
        if isinstance(layer, Linear):
            spec.append(("linear", layer.weight.data.copy(), layer.bias.data.copy()))
        elif isinstance(layer, Conv2d):
            spec.append(("conv", layer.weight.data.copy(), layer.bias.data.copy(), layer.stride, layer.padding))
        elif isinstance(layer, MaxPool2d):
            spec.append(("maxpool", layer.kernel_size))
        elif isinstance(layer, Flatten):
            spec.append(("flatten",))
        else:
            spec.append(("relu",))
    return spec


def mlp(seed, sizes=(6, 16, 12, 4)) -> Sequential:
    rng = np.random.default_rng(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [linear(a, b, rng, scale=2.0)] + ([ReLU()] if i < len(sizes) - 2 else [])
    return Sequential(*layers)


# -- quantize, dequantize ----------------------------------------------------------------------


def test_quantize_per_tensor_matches_torch():
    """quantize_per_tensor gives torch.quantize_per_tensor's int8 values, clamped ends included"""
    rng = np.random.default_rng(200)
    for scale, zero_point in ((0.05, 0), (0.1, -20), (0.02, 37)):
        x = off_ties(rng.uniform(-9.0, 9.0, (4, 50)), scale)
        call = f"quantize_per_tensor(x (4, 50) in [-9, 9], scale={scale}, zero_point={zero_point})"
        q = quantize_per_tensor(Tensor(x), scale, zero_point)
        expect_equal(q.dtype, np.dtype(np.int8), call=f"{call}.dtype",
                     hint="the integers are int8: .astype(np.int8) after clamping")
        expect_equal(q.data, torch_quantize(x, scale, zero_point), call=call, hint=QUANTIZE_HINT)
        expect_equal(np.asarray(quantize_per_tensor(x, scale, zero_point).data), torch_quantize(x, scale, zero_point),
                     call=call.replace("x (4, 50)", "numpy x (4, 50)"), hint="accept numpy arrays as well as Tensors")


def test_quantize_clamps_and_rounds():
    """Values beyond the grid clamp to -128 and 127; inside it, to the nearest step"""
    x = np.array([-100.0, -13.8, -0.26, 0.0, 0.04, 0.33, 11.7, 50.0], dtype=np.float32)
    expect_equal(np.asarray(quantize_per_tensor(x, 0.1, 10).data), np.array([-128, -128, 7, 10, 10, 13, 127, 127]),
                 call=f"quantize_per_tensor({show(x)}, scale=0.1, zero_point=10)",
                 hint="round(x / scale) + zero_point, then clip to [-128, 127] (clip after adding the zero point, "
                      "and round, do not truncate: 0.33 / 0.1 = 3.3 -> 3, -0.26 / 0.1 = -2.6 -> -3)")
    expect_raises(ValueError, lambda: quantize_per_tensor(x, 0.0, 0), call="quantize_per_tensor(x, scale=0.0, zero_point=0)",
                  hint="a scale must be positive: dividing by 0 gives inf and nan")


@settings(max_examples=25)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), scale=st.floats(1e-3, 5.0),
       zero_point=st.integers(-128, 127), seed=st.integers(0, 10_000))
def test_quantize_any_values_matches_torch(shape, scale, zero_point, seed):
    """quantize_per_tensor matches torch for shapes, scales and zero points drawn at random"""
    rng = np.random.default_rng(seed)
    scale = f32(scale)
    x = off_ties(scale * rng.uniform(-300.0, 300.0, tuple(shape)), scale)
    expect_equal(np.asarray(quantize_per_tensor(Tensor(x), scale, zero_point).data), torch_quantize(x, scale, zero_point),
                 call=f"quantize_per_tensor(x {tuple(shape)}, scale={scale:.6g}, zero_point={zero_point})", hint=QUANTIZE_HINT)


def test_quantize_per_channel_matches_torch():
    """quantize_per_channel gives torch.quantize_per_channel's values along axis 0, 1, -1 and of a 4-D weight"""
    rng = np.random.default_rng(10)
    for shape, axis in (((4, 6), 0), ((3, 5), 1), ((3, 2, 3, 3), 0), ((2, 3, 4), -1)):
        channels = shape[axis]
        scales = np.array([f32(s) for s in rng.uniform(0.01, 0.2, channels)])
        zero_points = rng.integers(-40, 40, channels)
        x = off_ties(rng.uniform(-1.0, 1.0, shape) * 15.0 * scales.reshape([-1 if a == axis % len(shape) else 1
                                                                             for a in range(len(shape))]), scales, axis)
        call = f"quantize_per_channel(x {shape}, scales ({channels},), zero_points ({channels},), axis={axis})"
        q = quantize_per_channel(Tensor(x), scales, zero_points, axis)
        expect_equal(q.dtype, np.dtype(np.int8), call=f"{call}.dtype", hint="int8 integers")
        expect_equal(q.data, torch_quantize_channels(x, scales, zero_points, axis % len(shape)), call=call,
                     hint="slice c along `axis` uses scales[c] and zero_points[c]: reshape them to broadcast along "
                          "that axis (shape (1, C, 1) for axis 1 of a 3-D x)")


def test_quantize_per_channel_checks_lengths():
    """quantize_per_channel needs one scale and zero point per slice; the right lengths work"""
    x = off_ties(np.random.default_rng(11).uniform(-1, 1, (3, 4)), 0.05)
    expect_raises(ValueError, lambda: quantize_per_channel(x, np.full(4, 0.05), np.zeros(4, dtype=np.int64), axis=0),
                  call="quantize_per_channel(x (3, 4), scales (4,), zero_points (4,), axis=0)",
                  hint="axis 0 has 3 slices, so 3 scales: say which shapes were expected")
    expect_raises(ValueError, lambda: quantize_per_channel(x, np.full(1, 0.05), np.zeros(1, dtype=np.int64), axis=0),
                  call="quantize_per_channel(x (3, 4), scales (1,), zero_points (1,), axis=0)",
                  hint="one scale for 3 slices would broadcast silently: check scales.shape == (x.shape[axis],)")
    expect_equal(np.asarray(quantize_per_channel(x, np.full(4, 0.05), np.zeros(4, dtype=np.int64), axis=1).data),
                 torch_quantize_channels(x, np.full(4, 0.05), np.zeros(4), 1),
                 call="quantize_per_channel(x (3, 4), scales (4,), zero_points (4,), axis=1)", hint="axis 1 has 4 slices")


def test_dequantize_widens_before_subtracting():
    """dequantize gives scale * (q - zero_point) as float32, even when q - zero_point leaves int8's range"""
    q = np.array([[-128, -1, 0, 1, 127], [-128, -100, 0, 100, 127]], dtype=np.int8)
    for zero_point in (100, -100, 0):
        got = dequantize(Tensor(q), 0.25, zero_point)
        call = f"dequantize(q {show(q)}, scale=0.25, zero_point={zero_point})"
        expect_equal(got.dtype, np.dtype(np.float32), call=f"{call}.dtype", hint="dequantized values are float32")
        expect_close(got, 0.25 * (q.astype(np.float64) - zero_point), rtol=1e-7, atol=0.0, call=call,
                     hint="widen first: q.astype(np.int32) - zero_point (int8 arithmetic wraps: -128 - 100 is 28 in int8)")
    scales, zero_points = np.array([0.5, 0.125]), np.array([-3, 90])
    expect_close(dequantize(q, scales, zero_points, axis=0), scales[:, None] * (q.astype(np.float64) - zero_points[:, None]),
                 rtol=1e-7, atol=0.0, call="dequantize(q (2, 5), scales [0.5, 0.125], zero_points [-3, 90], axis=0)",
                 hint="per channel: row c uses scales[c], zero_points[c]")
    scales5, zero_points5 = np.array([0.5, 1.0, 2.0, 0.25, 4.0]), np.array([1, -2, 3, 120, -128])
    expect_close(dequantize(q, scales5, zero_points5, axis=1), scales5 * (q.astype(np.float64) - zero_points5),
                 rtol=1e-7, atol=0.0, call="dequantize(q (2, 5), 5 scales, 5 zero points, axis=1)",
                 hint="along axis 1 the parameters broadcast as (1, 5)")


@settings(max_examples=30)
@given(scale=st.floats(1e-3, 10.0), zero_point=st.integers(-128, 127), seed=st.integers(0, 10_000))
def test_round_trip_error_within_half_a_step(scale, zero_point, seed):
    """dequantize(quantize(x)) is within half a step of every x inside the grid"""
    rng = np.random.default_rng(seed)
    x = (scale * (rng.uniform(-128.0, 127.0, 40) - zero_point)).astype(np.float32)
    back = dequantize(quantize_per_tensor(x, scale, zero_point), scale, zero_point)
    expect_that((back, x), within_half_step, scale,
                call=f"dequantize(quantize_per_tensor(x, {scale:.4g}, {zero_point}), {scale:.4g}, {zero_point})",
                expected=f"every value within scale / 2 = {scale / 2:.4g} of x",
                hint="round to the nearest integer (np.round), do not truncate or floor")


# -- scales and zero points ---------------------------------------------------------------------


def test_choose_qparams_asymmetric_matches_torch():
    """choose_qparams(lo, hi) gives MinMaxObserver's affine scale and zero point (range stretched to 0)"""
    for lo, hi in ((-1.5, 2.5), (0.3, 4.0), (-3.0, -0.5), (-0.7, 0.05), (-6.1, 6.3)):
        scale, zero_point = choose_qparams(lo, hi)
        call = f"choose_qparams({lo}, {hi}, symmetric=False)"
        expected_scale, expected_zero_point = torch_range_qparams(lo, hi)
        expect_close(scale, expected_scale, rtol=1e-6, atol=0.0, call=f"{call}[0] (scale)",
                     hint="scale = (hi - lo) / 255 after lo = min(lo, 0), hi = max(hi, 0)")
        expect_equal(int(zero_point), expected_zero_point, call=f"{call}[1] (zero point)",
                     hint="zero_point = -128 - round(lo / scale), clamped to [-128, 127]: lo maps to -128")


def test_choose_qparams_symmetric_matches_torch():
    """choose_qparams(lo, hi, symmetric=True) gives max(|lo|, |hi|) / 127 and zero point 0, like torch's observer"""
    for lo, hi in ((-1.5, 2.5), (0.3, 4.0), (-3.0, -0.5), (-0.02, 0.01)):
        scale, zero_point = choose_qparams(lo, hi, symmetric=True)
        call = f"choose_qparams({lo}, {hi}, symmetric=True)"
        expect_close(scale, torch_range_qparams(lo, hi, symmetric=True)[0], rtol=1e-6, atol=0.0, call=f"{call}[0] (scale)",
                     hint="symmetric: scale = max(-lo, hi) / 127 (the integers -127..127), with lo <= 0 <= hi")
        expect_equal(int(zero_point), 0, call=f"{call}[1] (zero point)", hint="symmetric means zero_point = 0")


def test_choose_qparams_per_channel_matches_torch():
    """choose_qparams on arrays of ranges gives PerChannelMinMaxObserver's scales and zero points"""
    rng = np.random.default_rng(3)
    data = rng.standard_normal((6, 9)).astype(np.float32) * np.array([[3.0], [0.1], [1.0], [0.5], [2.0], [0.01]],
                                                                     dtype=np.float32)
    data[1] = np.abs(data[1])      # a channel that is all positive
    data[3] = -np.abs(data[3])     # and one all negative
    lo, hi = data.min(axis=1), data.max(axis=1)
    for symmetric in (False, True):
        scales, zero_points = choose_qparams(lo, hi, symmetric=symmetric)
        expected_scales, expected_zero_points = torch_qparams([data], symmetric, axis=0)
        call = f"choose_qparams(lo (6,), hi (6,), symmetric={symmetric})"
        expect_close(scales, expected_scales, rtol=1e-6, atol=0.0, call=f"{call}[0]",
                     hint="elementwise: one scale per channel, shape (6,)")
        expect_equal(np.asarray(zero_points).astype(np.int64), expected_zero_points, call=f"{call}[1]",
                     hint="one zero point per channel" + ("" if not symmetric else ", all 0 when symmetric"))


def test_zero_is_exact_and_the_ends_map_to_the_ends():
    """With choose_qparams' parameters, lo -> -128, hi -> 127 (or +-127 symmetric), and 0.0 comes back exactly"""
    lo, hi = -1.3, 2.9
    scale, zero_point = choose_qparams(lo, hi)
    x = np.array([lo, 0.0, hi], dtype=np.float32)
    q = quantize_per_tensor(x, scale, zero_point)
    expect_equal(np.asarray(q.data)[[0, 2]], np.array([-128, 127]), call=f"quantize_per_tensor([lo, hi]) with choose_qparams({lo}, {hi})",
                 hint="asymmetric: the whole int8 range, lo at -128 and hi at 127")
    expect_equal(float(np.asarray(dequantize(q, scale, zero_point).data)[1]), 0.0,
                 call=f"dequantize(quantize_per_tensor(0.0)) with choose_qparams({lo}, {hi})",
                 hint="0.0 is exactly representable: quantize(0) = zero_point, an integer, and dequantize gives 0 back")
    s_scale, s_zero = choose_qparams(lo, hi, symmetric=True)
    expect_equal(np.asarray(quantize_per_tensor(np.array([-2.9, 0.0, 2.9], dtype=np.float32), s_scale, s_zero).data),
                 np.array([-127, 0, 127]), call=f"quantize_per_tensor([-2.9, 0, 2.9]) with choose_qparams({lo}, {hi}, symmetric=True)",
                 hint="symmetric: +-amax map to +-127, 0 to 0")
    expect_raises(ValueError, lambda: choose_qparams(2.0, 1.0), call="choose_qparams(lo=2.0, hi=1.0)",
                  hint="lo > hi is not a range")
    expect_close(choose_qparams(0.0, 0.0)[0], EPS, rtol=1e-6, atol=0.0, call="choose_qparams(0.0, 0.0)[0]",
                 hint=f"an all-zero range would give scale 0 (and a division by zero): use max(scale, EPS), EPS = {EPS:.3g}")


# -- calibration -------------------------------------------------------------------------------


def test_minmax_range_matches_torch():
    """minmax_range gives the smallest and largest value, per tensor or per slice along an axis"""
    rng = np.random.default_rng(7)
    for shape, axis in (((5, 7), None), ((5, 7), 0), ((5, 7), 1), ((4, 3, 2, 2), 0), ((4, 3, 2, 2), 1)):
        x = rng.standard_normal(shape)
        lo, hi = minmax_range(Tensor(x), axis=axis)
        call = f"minmax_range(x {shape}, axis={axis})"
        expect_close(lo, torch_reduced(x, "amin", axis), rtol=0.0, atol=0.0, call=f"{call}[0]",
                     hint="per slice: reduce over every axis except `axis` (move it to the front, reshape to (C, -1))")
        expect_close(hi, torch_reduced(x, "amax", axis), rtol=0.0, atol=0.0, call=f"{call}[1]",
                     hint="the largest value of each slice")


def test_percentile_range_matches_torch_quantile():
    """percentile_range gives torch.quantile's (100 - p)-th and p-th percentiles (linear interpolation)"""
    rng = np.random.default_rng(5)
    for percentile, axis in ((99.0, None), (99.9, None), (95.0, 0), (90.0, 1)):
        x = rng.standard_normal((6, 300)) if axis != 1 else rng.standard_normal((300, 4)) * np.array([1.0, 5.0, 0.1, 2.0])
        lo, hi = percentile_range(Tensor(x), percentile, axis=axis)
        call = f"percentile_range(x {x.shape}, percentile={percentile}, axis={axis})"
        expect_close(lo, torch_percentile(x, 100.0 - percentile, axis), rtol=1e-10, atol=1e-12, call=f"{call}[0]",
                     hint="lo = np.percentile(values, 100 - p) (linear interpolation, numpy's default)")
        expect_close(hi, torch_percentile(x, percentile, axis), rtol=1e-10, atol=1e-12, call=f"{call}[1]",
                     hint="hi = np.percentile(values, p); per slice along `axis` when it is given")
    expect_raises(ValueError, lambda: percentile_range(x, 150.0), call="percentile_range(x, percentile=150.0)",
                  hint="a percentile lies between 50 and 100")


def test_percentile_protects_the_bulk_from_an_outlier():
    """With one huge outlier, percentile calibration gives the bulk a much finer step than min/max"""
    rng = np.random.default_rng(4)
    x = np.append(rng.standard_normal(5000), 80.0).astype(np.float32)
    minmax_scale, _ = choose_qparams(*minmax_range(x))
    percentile_scale, _ = choose_qparams(*percentile_range(x, 99.9))
    expect_that((percentile_scale, minmax_scale), much_smaller, 5.0,
                call="(scale from percentile_range(x, 99.9), scale from minmax_range(x)) for 5000 normals and one 80.0",
                expected="the percentile scale at least 5x smaller: the outlier no longer decides it",
                hint="min/max must cover 80.0; the 99.9th percentile ignores the few most extreme values")
    expect_close(percentile_scale, torch_range_qparams(*np.percentile(x.astype(np.float64), [0.1, 99.9]))[0],
                 rtol=1e-6, atol=0.0, call="choose_qparams(*percentile_range(x, 99.9))[0]",
                 hint="the range of the 0.1th and 99.9th percentiles, then (hi - lo) / 255")


def test_per_channel_is_finer_than_per_tensor():
    """Per-channel scales keep every row within half its own step; one scale for all cannot"""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((3, 64)) * np.array([[1.0], [0.05], [0.002]])).astype(np.float32)
    scales, zero_points = choose_qparams(*minmax_range(w, axis=0), symmetric=True)
    back = dequantize(quantize_per_channel(w, scales, zero_points, axis=0), scales, zero_points, axis=0)
    own_steps = np.abs(w).max(axis=1) / 127
    expect_that((back, w), row_errors_within, own_steps / 2 * (1 + 1e-5),
                call="per-channel round trip of w (3, 64) whose rows have sizes 1, 0.05, 0.002",
                expected="each row within half of its own step max|row| / 127",
                hint="choose_qparams(*minmax_range(w, axis=0), symmetric=True): one scale per row")
    scale, zero_point = choose_qparams(*minmax_range(w), symmetric=True)
    back_tensor = dequantize(quantize_per_tensor(w, scale, zero_point), scale, zero_point)
    expect_that((own_steps[2], np.abs(np.asarray(back_tensor.data) - w).max(axis=1)[2]), much_smaller, 50.0,
                call="(the smallest row's own step, its largest error with one scale for the whole tensor)",
                expected="the error more than 50x the row's own step (that is why weights get per-channel scales)",
                hint="per tensor: scale = max|w| / 127 of the whole matrix; the smallest row falls between two levels")


def test_observer_minmax_over_batches():
    """Observer('minmax') after several batches has the range and qparams of all of them, like MinMaxObserver"""
    rng = np.random.default_rng(6)
    batches = [rng.standard_normal((4, 5)).astype(np.float32) * s + m for s, m in ((1.0, 0.0), (3.0, 2.0), (0.5, -1.0))]
    watcher = Observer("minmax")
    for batch in batches:
        watcher.observe(Tensor(batch))
    lo, hi = watcher.range()
    everything = np.concatenate([b.reshape(-1) for b in batches])
    expect_close(np.array([lo, hi], dtype=np.float64), np.array([everything.min(), everything.max()], dtype=np.float64),
                 rtol=0.0, atol=0.0, call="Observer('minmax').range() after 3 batches",
                 hint="keep a running minimum and maximum over every batch: min(previous lo, batch min)")
    scale, zero_point = watcher.qparams()
    expected_scale, expected_zero_point = torch_qparams(batches)
    expect_close(scale, expected_scale, rtol=1e-6, atol=0.0, call="Observer('minmax').qparams()[0]",
                 hint="qparams is choose_qparams(*range())")
    expect_equal(int(zero_point), expected_zero_point, call="Observer('minmax').qparams()[1]", hint="asymmetric by default")
    expect_close(watcher.qparams(symmetric=True)[0], torch_qparams(batches, symmetric=True)[0], rtol=1e-6, atol=0.0,
                 call="Observer('minmax').qparams(symmetric=True)[0]", hint="pass symmetric on to choose_qparams")


def test_observer_percentile_over_batches():
    """Observer('percentile', 99) gives the percentiles of all batches together, whatever their shapes"""
    rng = np.random.default_rng(7)
    batches = [rng.standard_normal((20, 5)), rng.standard_normal((3, 10, 5)) * 2.0, rng.standard_normal(40) - 1.0]
    watcher = Observer("percentile", percentile=99.0)
    for batch in batches:
        watcher.observe(Tensor(batch))
    everything = torch.tensor(np.concatenate([b.reshape(-1) for b in batches]))
    expect_close(np.array(watcher.range(), dtype=np.float64),
                 np.array([torch.quantile(everything, 0.01).item(), torch.quantile(everything, 0.99).item()]),
                 rtol=1e-10, atol=1e-12, call="Observer('percentile', percentile=99.0).range() after 3 batches",
                 hint="a percentile of percentiles is not the percentile of everything: keep the values, "
                      "and take percentile_range of all of them together")


def test_observer_errors():
    """An unknown method and a range before any batch raise ValueError; one batch gives its range"""
    expect_raises(ValueError, lambda: Observer("histogram"), call="Observer('histogram')",
                  hint="the methods are 'minmax' and 'percentile'")
    expect_raises(ValueError, lambda: Observer("minmax").range(), call="Observer('minmax').range() before observe",
                  hint="nothing observed: there is no range yet")
    expect_raises(ValueError, lambda: Observer("percentile").range(), call="Observer('percentile').range() before observe",
                  hint="nothing observed: there is no range yet")
    watcher = Observer()
    watcher.observe(np.array([[0.5, -2.0], [3.0, 1.0]]))
    expect_close(np.array(watcher.range(), dtype=np.float64), np.array([-2.0, 3.0]), rtol=0.0, atol=0.0,
                 call="Observer().observe([[0.5, -2.0], [3.0, 1.0]]); range()", hint="the default method is min/max")


# -- fake quantization ---------------------------------------------------------------------------


def test_fake_quantize_per_tensor_matches_torch():
    """fake_quantize per tensor: torch's values and straight-through gradient (0 outside the grid), float64"""
    rng = np.random.default_rng(8)
    scale, zero_point = f32(0.05), 13
    # the grid is [-7.05, 5.7]; next to its ends: round(x / scale) + 13 = 127, 127 (from 127.3), 128 (from 127.7),
    # -128, -128 (from -128.3), -129 (from -128.7): the gradient passes for the first two of each three
    edges = np.array([5.7, 5.7 + 0.3 * scale, 5.7 + 0.7 * scale, -7.05, -7.05 - 0.3 * scale, -7.05 - 0.7 * scale])
    x0 = np.concatenate([off_ties(rng.uniform(-8.0, 8.0, 60), scale).astype(np.float64), edges]).reshape(6, 11)
    upstream = rng.standard_normal(x0.shape)
    x = Tensor(x0, requires_grad=True)
    out = fake_quantize(x, scale, zero_point)
    values, grad = torch_fake_quant(x0, scale, zero_point, upstream=upstream)
    call = f"fake_quantize(x (6, 11) in [-8, 8] and at the grid's ends, scale={scale:.6g}, zero_point={zero_point})"
    expect_equal(out.dtype, np.dtype(np.float64), call=f"{call}.dtype", hint="fake quantization keeps x's dtype")
    expect_close(out, values, rtol=1e-12, atol=1e-14, call=call,
                 hint="scale * (clamp(round(x / scale) + zero_point, -128, 127) - zero_point), in x's dtype")
    out.backward(upstream)
    expect_close(x.grad, grad, rtol=1e-12, atol=0.0, call=f"x.grad after {call}.backward(g)",
                 hint="straight-through: pass the gradient where -128 <= round(x / scale) + zero_point <= 127 (rounded, "
                      "before clamping; the ends included), 0 elsewhere")


def test_fake_quantize_per_channel_matches_torch():
    """fake_quantize per channel matches torch.fake_quantize_per_channel_affine, values and gradient"""
    rng = np.random.default_rng(20)
    for shape, axis in (((3, 8), 0), ((2, 4, 3), 1)):
        channels = shape[axis]
        scales = np.array([f32(s) for s in rng.uniform(0.01, 0.1, channels)])
        zero_points = rng.integers(-50, 50, channels)
        bcast = [-1 if a == axis else 1 for a in range(len(shape))]
        x0 = off_ties(rng.uniform(-1.0, 1.0, shape) * 200.0 * scales.reshape(bcast), scales, axis).astype(np.float64)
        upstream = rng.standard_normal(shape)
        x = Tensor(x0, requires_grad=True)
        out = fake_quantize(x, scales, zero_points, axis=axis)
        call = f"fake_quantize(x {shape}, scales ({channels},), zero_points ({channels},), axis={axis})"
        expect_close(out, torch_fake_quant(x0, scales, zero_points, axis=axis)[0], rtol=1e-12, atol=1e-14, call=call,
                     hint="slice c uses scales[c], zero_points[c]")
        out.backward(upstream)
        expect_close(x.grad, torch_fake_quant(x0, scales, zero_points, axis=axis, upstream=upstream)[1], rtol=1e-12,
                     atol=0.0, call=f"x.grad after {call}.backward(g)",
                     hint="the straight-through mask is per element, with each slice's own scale and zero point")


def test_fake_quantize_is_a_round_trip_in_float32():
    """fake_quantize of float32 values stays float32 and equals dequantize(quantize(x))"""
    rng = np.random.default_rng(9)
    x = off_ties(rng.uniform(-3.0, 3.0, 30), 0.02)
    out = fake_quantize(Tensor(x), 0.02, -5)
    expect_equal(out.dtype, np.dtype(np.float32), call="fake_quantize(float32 x, 0.02, -5).dtype",
                 hint="compute in x's dtype: a float64 scale must not turn float32 values into float64")
    expect_close(out, 0.02 * (np.clip(np.round(x / np.float32(0.02)) - 5, -128, 127) + 5), rtol=1e-6, atol=1e-7,
                 call="fake_quantize(float32 x in [-3, 3], 0.02, -5)", hint="dequantize(quantize(x)): values on the grid")


# -- integer arithmetic ---------------------------------------------------------------------------


def test_integer_matmul_is_exact_in_int32():
    """integer_matmul sums int8 products exactly in int32 (far beyond int16), with leading axes"""
    rng = np.random.default_rng(10)
    q_x = rng.integers(-128, 128, (2, 3, 64)).astype(np.int8)
    q_w = rng.integers(-127, 128, (5, 64)).astype(np.int8)
    for zero_point in (-7, 100):
        got = integer_matmul(Tensor(q_x), zero_point, Tensor(q_w))
        call = f"integer_matmul(q_x (2, 3, 64), {zero_point}, q_w (5, 64))"
        expect_equal(got.dtype, np.dtype(np.int32), call=f"{call}.dtype",
                     hint="accumulate in int32: widen both operands with .astype(np.int32) before the product")
        expected = ((torch.tensor(q_x, dtype=torch.int64) - zero_point) @ torch.tensor(q_w, dtype=torch.int64).T).numpy()
        expect_equal(np.asarray(got.data).astype(np.int64), expected, call=call,
                     hint="sum_k (q_x[..., k] - zero_point) * q_w[o, k]: in int8 both the subtraction and the sum wrap around")


def test_integer_matmul_worst_case_fits_int32():
    """784 worst-case products (255 * 127 each) sum to 25,390,920 exactly"""
    q_x = np.full((2, 784), -128, dtype=np.int8)
    q_w = np.full((3, 784), -127, dtype=np.int8)
    q_w[1] = 127
    got = integer_matmul(q_x, 127, q_w)
    expect_equal(np.asarray(got.data).astype(np.int64), np.array([[784 * 255 * 127, -784 * 255 * 127, 784 * 255 * 127]] * 2),
                 call="integer_matmul(all -128 (2, 784), zero_point=127, all -127 / 127 (3, 784))",
                 hint="(-128 - 127) * -127 = 32,385 per product, 784 of them: beyond int16 and beyond float32's exact "
                      "integers (2**24), well inside int32")


# -- quantized layers ----------------------------------------------------------------------------


def test_quantized_linear_weights_match_torch():
    """QuantizedLinear stores torch.quantize_per_channel's int8 weight, the observer's scales, and the bias"""
    rng = np.random.default_rng(12)
    float_layer = linear(7, 5, rng)
    float_layer.weight.data = weights_off_ties(float_layer.weight.data * np.array([[1.0], [0.1], [3.0], [0.02], [1.0]]))
    w, b = float_layer.weight.data.copy(), float_layer.bias.data.copy()
    layer = QuantizedLinear(float_layer, 0.05, 3)
    expected_scales, zeros = torch_qparams([w], symmetric=True, axis=0)
    expect_equal(layer.qweight.dtype, np.dtype(np.int8), call="QuantizedLinear(Linear(7, 5), 0.05, 3).qweight.dtype",
                 hint="qweight is an int8 Tensor")
    expect_equal(np.asarray(layer.qweight.data), torch_quantize_channels(w, expected_scales, zeros, 0),
                 call="QuantizedLinear(Linear(7, 5), 0.05, 3).qweight",
                 hint="symmetric per output channel: scales from choose_qparams(*minmax_range(w, axis=0), symmetric=True)")
    expect_close(layer.weight_scale, expected_scales, rtol=1e-6, atol=0.0, call="QuantizedLinear(...).weight_scale",
                 hint="one scale per output channel, max|row| / 127, shape (out_features,)")
    expect_close(layer.bias, b, rtol=0.0, atol=0.0, call="QuantizedLinear(...).bias", hint="the bias stays float32")
    expect_equal((layer.in_features, layer.out_features, layer.input_scale, layer.input_zero_point), (7, 5, 0.05, 3),
                 call="QuantizedLinear(Linear(7, 5), 0.05, 3): (in_features, out_features, input_scale, input_zero_point)",
                 hint="keep the layer's sizes and the input's parameters")
    per_tensor = QuantizedLinear(float_layer, 0.05, 3, per_channel=False)
    scale = torch_qparams([w], symmetric=True)[0]
    expect_equal(np.asarray(per_tensor.qweight.data), torch_quantize(w, scale, 0),
                 call="QuantizedLinear(Linear(7, 5), 0.05, 3, per_channel=False).qweight",
                 hint="per_channel=False: one symmetric scale, max|w| / 127, for the whole weight")
    expect_close(per_tensor.weight_scale, scale, rtol=1e-6, atol=0.0, call="QuantizedLinear(..., per_channel=False).weight_scale",
                 hint="a single scale, shape ()")


def test_quantized_linear_matches_torch():
    """QuantizedLinear's output equals a float64 torch Linear on fake-quantized input and weight"""
    rng = np.random.default_rng(13)
    input_scale, input_zero_point = f32(0.03), 5
    for bias, per_channel in ((True, True), (False, True), (True, False)):
        float_layer = linear(8, 6, rng, bias=bias)
        x = off_ties(rng.uniform(-4.2, 4.2, (2, 3, 8)), input_scale)  # some values beyond the grid [-4.0, 3.66]
        layer = QuantizedLinear(float_layer, input_scale, input_zero_point, per_channel=per_channel)
        out = layer(Tensor(x))
        call = (f"QuantizedLinear(Linear(8, 6, bias={bias}), {input_scale:.4g}, {input_zero_point}, "
                f"per_channel={per_channel})(x (2, 3, 8))")
        expect_equal(out.dtype, np.dtype(np.float32), call=f"{call}.dtype",
                     hint="the output is float32, like the float layer's")
        expect_close(out, torch_layer("linear", x, float_layer.weight.data, float_layer.bias.data if bias else None,
                                      input_scale, input_zero_point, per_channel), rtol=1e-5, atol=1e-5, call=call,
                     hint=LAYER_HINT)


def test_quantized_linear_is_close_to_the_float_layer():
    """On inputs inside its calibrated range, QuantizedLinear is within 1% of the float Linear"""
    rng = np.random.default_rng(14)
    float_layer = linear(64, 16, rng)
    x = rng.standard_normal((32, 64)).astype(np.float32)
    input_scale, input_zero_point = choose_qparams(x.min(), x.max())
    out = QuantizedLinear(float_layer, float(input_scale), int(input_zero_point))(Tensor(x))
    expect_that(out, relative_error_below, x.astype(np.float64) @ float_layer.weight.data.T.astype(np.float64)
                + float_layer.bias.data, 0.01,
                call="QuantizedLinear(Linear(64, 16), min/max qparams of x)(x (32, 64)) against x @ W.T + b",
                expected="relative error below 1%", hint=LAYER_HINT)


def test_quantized_linear_stores_a_quarter():
    """An int8 weight takes exactly a quarter of the float32 bytes; weight_nbytes adds 4 bytes per scale"""
    rng = np.random.default_rng(15)
    float_layer = linear(30, 12, rng)
    layer = QuantizedLinear(float_layer, 0.1, 0)
    expect_equal(tensor_nbytes(layer.qweight) * 4, 30 * 12 * 4, call="QuantizedLinear(Linear(30, 12), ...).qweight nbytes * 4",
                 hint="one byte per weight: int8")
    expect_equal(weight_nbytes(float_layer), 30 * 12 * 4, call="weight_nbytes(Linear(30, 12))",
                 hint="a float layer's weight: 4 bytes per float32 (the bias is not counted)")
    expect_equal(weight_nbytes(layer), 30 * 12 + 12 * 4, call="weight_nbytes(QuantizedLinear(Linear(30, 12)))",
                 hint="int8 weight (1 byte each) + weight_scale (12 float32 scales, 4 bytes each)")
    expect_equal(weight_nbytes(QuantizedLinear(float_layer, 0.1, 0, per_channel=False)), 30 * 12 + 4,
                 call="weight_nbytes(QuantizedLinear(Linear(30, 12), per_channel=False))",
                 hint="one float32 scale for the whole weight")


def test_quantized_conv2d_matches_torch():
    """QuantizedConv2d equals a float64 torch conv2d on fake-quantized input and weight (stride, padding)"""
    rng = np.random.default_rng(16)
    input_scale = f32(0.02)
    for kernel, stride, padding, input_zero_point, low in (
            (3, 2, 1, -128, 0.0),      # post-ReLU inputs: padding must use the zero point, not the integer 0
            ((2, 3), (1, 2), 0, 17, -2.5),
            (3, 1, (2, 1), 40, -2.5)):
        float_layer = conv(3, 4, kernel, rng, stride=stride, padding=padding)
        x = off_ties(rng.uniform(low, 2.5, (2, 3, 7, 6)), input_scale)
        layer = QuantizedConv2d(float_layer, input_scale, input_zero_point)
        out = layer(Tensor(x))
        call = (f"QuantizedConv2d(Conv2d(3, 4, {kernel}, stride={stride}, padding={padding}), {input_scale:.4g}, "
                f"{input_zero_point})(x (2, 3, 7, 6))")
        expect_equal(out.dtype, np.dtype(np.float32), call=f"{call}.dtype", hint="float32 output")
        expect_close(out, torch_layer("conv", x, float_layer.weight.data, float_layer.bias.data, input_scale,
                                      input_zero_point, stride=stride, padding=padding), rtol=1e-5, atol=1e-5, call=call,
                     hint="pad the quantized input with the zero point (the integer that means 0.0), take "
                          "sliding_windows, integer_matmul with qweight.reshape(C_out, -1), scale per output channel, "
                          "add the bias, and move the channels to axis 1")


def test_quantized_conv2d_weights_and_no_bias():
    """QuantizedConv2d keeps torch.quantize_per_channel's 4-D int8 weight and works without a bias"""
    rng = np.random.default_rng(17)
    float_layer = conv(2, 3, 3, rng, bias=False, padding=1)
    w = float_layer.weight.data.copy()
    layer = QuantizedConv2d(float_layer, f32(0.05), 0)
    expected_scales, zeros = torch_qparams([w], symmetric=True, axis=0)
    expect_equal(np.asarray(layer.qweight.data), torch_quantize_channels(w, expected_scales, zeros, 0),
                 call="QuantizedConv2d(Conv2d(2, 3, 3), 0.05, 0).qweight",
                 hint="one symmetric scale per output channel (axis 0 of (C_out, C_in, kH, kW))")
    expect_close(layer.weight_scale, expected_scales, rtol=1e-6, atol=0.0, call="QuantizedConv2d(...).weight_scale",
                 hint="shape (C_out,)")
    x = off_ties(rng.uniform(-3.0, 3.0, (1, 2, 5, 5)), f32(0.05))
    expect_close(layer(Tensor(x)), torch_layer("conv", x, w, None, f32(0.05), 0, padding=1), rtol=1e-5, atol=1e-5,
                 call="QuantizedConv2d(Conv2d(2, 3, 3, padding=1, bias=False), 0.05, 0)(x (1, 2, 5, 5))",
                 hint="no bias: skip it")
    expect_equal(weight_nbytes(layer), 3 * 2 * 3 * 3 + 3 * 4, call="weight_nbytes(QuantizedConv2d(Conv2d(2, 3, 3)))",
                 hint="54 int8 weights and 3 float32 scales")


# -- whole models --------------------------------------------------------------------------------


def test_quantize_replaces_every_layer_and_keeps_the_original():
    """quantize returns a copy whose Linear layers are QuantizedLinear; the float model is untouched"""
    model = mlp(16020)
    rng = np.random.default_rng(16021)
    calibration = [rng.standard_normal((16, 6)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((5, 6)).astype(np.float32)
    spec = spec_of(model)
    quantized = quantize(model, calibration)
    expect_equal([type(layer).__name__ for layer in quantized], ["QuantizedLinear", "ReLU", "QuantizedLinear", "ReLU",
                                                                 "QuantizedLinear"],
                 call="[type(layer).__name__ for layer in quantize(Sequential(Linear, ReLU, Linear, ReLU, Linear), batches)]",
                 hint="replace every Linear (and Conv2d) of the copy; leave the activations as they are")
    expect_equal([type(layer).__name__ for layer in model], ["Linear", "ReLU", "Linear", "ReLU", "Linear"],
                 call="[type(layer).__name__ for layer in model] after quantize(model, batches)",
                 hint="work on copy.deepcopy(model): the caller keeps the float model")
    expect_close(model(Tensor(x)), torch_model_float(spec, x), rtol=1e-5, atol=1e-6,
                 call="model(x) after quantize(model, batches)", hint="the float model must compute what it did before")
    out = quantized(Tensor(x))
    expect_close(out, torch_model(spec, calibration, x), rtol=1e-5, atol=1e-5, call="quantize(model, batches)(x (5, 6))",
                 hint="calibrate each Linear's input with an Observer over the batches, then QuantizedLinear with "
                      "observer.qparams() (asymmetric) for the input and symmetric per-channel weights")


def test_quantize_mlp_matches_torch():
    """quantize(model, batches) computes what PyTorch's observers and fake quantization say it should"""
    model = mlp(46022, sizes=(10, 24, 16, 5))
    rng = np.random.default_rng(46023)
    calibration = [rng.standard_normal((20, 10)).astype(np.float32) * 1.5 for _ in range(4)]
    x = (rng.standard_normal((6, 10)) * 1.5).astype(np.float32)
    spec = spec_of(model)
    for per_channel in (True, False):
        out = quantize(model, calibration, per_channel=per_channel)(Tensor(x))
        expect_close(out, torch_model(spec, calibration, x, per_channel=per_channel), rtol=1e-5, atol=1e-5,
                     call=f"quantize(MLP 10-24-16-5, 4 batches, per_channel={per_channel})(x (6, 10))",
                     hint="per_channel decides the weights' scales (one per output or one per layer); inputs are "
                          "always calibrated per tensor, asymmetric, over all the batches")


def test_quantize_percentile_matches_torch():
    """quantize(..., method='percentile') calibrates every input with the percentiles of all batches"""
    model = mlp(14024, sizes=(8, 24, 6))
    rng = np.random.default_rng(14025)
    calibration = [rng.standard_normal((50, 8)).astype(np.float32) for _ in range(3)]
    calibration[1][3, 2] = 25.0  # an outlier the percentiles ignore
    x = rng.standard_normal((10, 8)).astype(np.float32)
    spec = spec_of(model)
    out = quantize(model, calibration, method="percentile", percentile=99.0)(Tensor(x))
    expect_close(out, torch_model(spec, calibration, x, method="percentile", percentile=99.0), rtol=1e-5, atol=1e-5,
                 call="quantize(MLP 8-24-6, 3 batches, method='percentile', percentile=99.0)(x (10, 8))",
                 hint="Observer(method, percentile) for every layer input; its range is the percentiles of all the "
                      "values it saw")


def test_quantize_cnn_matches_torch():
    """quantize replaces Conv2d and Linear in a small CNN and matches the PyTorch oracle"""
    rng = np.random.default_rng(39026)
    model = Sequential(conv(1, 4, 3, rng, padding=1), ReLU(), MaxPool2d(2), Flatten(), linear(4 * 4 * 4, 3, rng))
    calibration = [rng.standard_normal((6, 1, 8, 8)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    spec = spec_of(model)
    quantized = quantize(model, calibration)
    expect_equal([type(layer).__name__ for layer in quantized],
                 ["QuantizedConv2d", "ReLU", "MaxPool2d", "Flatten", "QuantizedLinear"],
                 call="[type(layer).__name__ for layer in quantize(small CNN, batches)]",
                 hint="Conv2d -> QuantizedConv2d, Linear -> QuantizedLinear; pooling and Flatten stay")
    expect_close(quantized(Tensor(x)), torch_model(spec, calibration, x), rtol=1e-5, atol=1e-5,
                 call="quantize(Conv2d-ReLU-MaxPool-Flatten-Linear, 2 batches)(x (3, 1, 8, 8))",
                 hint="the conv's input is observed like a Linear's; QuantizedConv2d pads with the zero point")


class TwoBranches(Module):
    """A model whose layers sit in a list and in a nested Sequential (not a flat Sequential)."""

    def __init__(self, rng) -> None:
        super().__init__()
        self.blocks = [linear(4, 8, rng), linear(8, 8, rng)]
        self.head = Sequential(linear(8, 2, rng))

    def forward(self, x):
        for block in self.blocks:
            x = block(x).maximum(0.0)
        return self.head(x)


def test_quantize_finds_layers_anywhere():
    """quantize replaces layers inside lists and nested modules, not only in a flat Sequential"""
    rng = np.random.default_rng(3027)
    model = TwoBranches(rng)
    spec = [("linear", model.blocks[0].weight.data.copy(), model.blocks[0].bias.data.copy()), ("relu",),
            ("linear", model.blocks[1].weight.data.copy(), model.blocks[1].bias.data.copy()), ("relu",),
            ("linear", model.head[0].weight.data.copy(), model.head[0].bias.data.copy())]
    calibration = [rng.standard_normal((10, 4)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((4, 4)).astype(np.float32)
    quantized = quantize(model, calibration)
    expect_equal([type(layer).__name__ for layer in (*quantized.blocks, quantized.head[0])], ["QuantizedLinear"] * 3,
                 call="types of quantize(model).blocks[0], .blocks[1], .head[0]",
                 hint="_layer_slots finds every Linear wherever it sits; _put replaces it there")
    expect_close(quantized(Tensor(x)), torch_model(spec, calibration, x), rtol=1e-5, atol=1e-5,
                 call="quantize(model with a list of layers and a nested Sequential)(x (4, 4))",
                 hint="every Linear observed and quantized, wherever it sits")


def test_quantize_accepts_loader_batches_and_needs_some():
    """Calibration batches may be (inputs, labels) pairs; no batches at all is a ValueError"""
    model = mlp(2028)
    rng = np.random.default_rng(2029)
    inputs = [rng.standard_normal((8, 6)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((3, 6)).astype(np.float32)
    pairs = [(Tensor(batch), Tensor(np.zeros(8, dtype=np.int64))) for batch in inputs]
    from_pairs = quantize(model, pairs)(Tensor(x))
    from_arrays = quantize(model, inputs)(Tensor(x))
    expect_that((from_pairs, from_arrays), identical,
                call="quantize(model, [(x, y), ...])(x) and quantize(model, [x, ...])(x)",
                expected="exactly the same outputs: a pair's first item is the input",
                hint="batch[0] if the batch is a tuple or list, else the batch itself (a Tensor or an array)")
    expect_close(from_pairs, torch_model(spec_of(model), inputs, x), rtol=1e-5, atol=1e-5,
                 call="quantize(model, [(x, y), ...])(x)", hint="calibrate on the inputs of every pair")
    expect_raises(ValueError, lambda: quantize(model, []), call="quantize(model, calibration_batches=[])",
                  hint="without a batch no observer has a range: let the Observer's ValueError through")


def test_quantize_calibrates_without_dropout():
    """quantize calibrates in evaluation mode: a Dropout in the model does not disturb the observed ranges"""
    rng = np.random.default_rng(33)
    model = Sequential(linear(5, 10, rng, scale=2.0), ReLU(), Dropout(0.5), linear(10, 4, rng))
    calibration = [rng.standard_normal((12, 5)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((4, 5)).astype(np.float32)
    spec = spec_of(Sequential(model[0], model[1], model[3]))  # the model without its dropout
    expect_close(quantize(model, calibration)(Tensor(x)), torch_model(spec, calibration, x), rtol=1e-5, atol=1e-5,
                 call="quantize(Sequential(Linear, ReLU, Dropout(0.5), Linear), batches)(x)",
                 hint="put the copy in evaluation mode (.eval()) before calibrating: in training mode dropout zeroes "
                      "half the activations and doubles the rest, and the observers would see that")


def test_quantize_keeps_accuracy():
    """A classifier quantized to int8 loses at most one point of accuracy on its data"""
    points, labels = blobs(600, seed=30)
    rng = np.random.default_rng(31)
    model = Sequential(linear(4, 64, rng, scale=2.0), ReLU(), linear(64, 3, rng))
    hidden = np.maximum(points @ model[0].weight.data.T + model[0].bias.data, 0.0)
    model[2].weight.data = np.linalg.lstsq(hidden, np.eye(3)[labels], rcond=None)[0].T.astype(np.float32)
    model[2].bias.data = np.zeros(3, dtype=np.float32)
    quantized = quantize(model, [points[:200], points[200:400]])
    logits = quantized(Tensor(points))
    float_logits = np.maximum(points.astype(np.float64) @ model[0].weight.data.T + model[0].bias.data, 0.0) \
        @ model[2].weight.data.T.astype(np.float64)
    expect_that(logits, keeps_accuracy, labels, float((float_logits.argmax(axis=1) == labels).mean()), 0.01,
                call="accuracy of quantize(4-64-3 classifier, 2 batches)(600 points)",
                expected="at most 1 point below the float model's accuracy",
                hint="calibrate on data like the test data, and quantize the weights per output channel")


def test_weight_nbytes_of_an_mnist_mlp():
    """A 784-256-10 MLP's weights: 813,056 bytes in float32, 204,328 in int8 with per-channel scales (3.98x)"""
    rng = np.random.default_rng(32)
    model = Sequential(linear(784, 256, rng), ReLU(), linear(256, 10, rng))
    calibration = [rng.random((4, 784)).astype(np.float32)]
    expect_equal(weight_nbytes(model), 4 * (784 * 256 + 256 * 10), call="weight_nbytes(Sequential(Linear(784, 256), ReLU(), Linear(256, 10)))",
                 hint="4 bytes per float32 weight, summed over every layer in model.modules()")
    quantized = quantize(model, calibration)
    expect_equal(weight_nbytes(quantized), 784 * 256 + 256 * 10 + 4 * (256 + 10),
                 call="weight_nbytes(quantize(the MLP, batches))",
                 hint="1 byte per int8 weight + 4 bytes per float32 scale (256 + 10 output channels)")
    expect_that(weight_nbytes(model) / weight_nbytes(quantized), at_least, 3.9,
                call="weight_nbytes(model) / weight_nbytes(quantize(model, batches))",
                expected="at least 3.9 (the 2018 systems milestone's target)", hint="int8 weights, float32 scales")
    expect_equal(weight_nbytes(quantize(model, calibration, per_channel=False)), 784 * 256 + 256 * 10 + 4 * 2,
                 call="weight_nbytes(quantize(the MLP, batches, per_channel=False))", hint="one scale per layer")
