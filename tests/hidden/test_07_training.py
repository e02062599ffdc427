"""Hidden checks for module 07 (training): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_true
from tinytorch.training import CosineWarmupSchedule, Trainer, accuracy, clip_grad_norm
from tinytorch.activations import ReLU
from tinytorch.layers import Dropout, Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import Adam
from tinytorch.tensor import Tensor, generator, manual_seed

torch.set_num_threads(1)


def test_schedule_without_warmup_and_bad_arguments():
    """warmup_steps=0 starts at base_lr and decays at once; impossible settings are ValueErrors"""
    optimizer = SimpleNamespace(lr=None)
    schedule = CosineWarmupSchedule(optimizer, base_lr=1.0, warmup_steps=0, total_steps=10, min_lr=0.2)
    expect_close(optimizer.lr, 1.0, rtol=1e-12, call="CosineWarmupSchedule(opt, 1.0, warmup_steps=0, total_steps=10, "
                 "min_lr=0.2); opt.lr", hint="without warm-up, step 0 is the top of the cosine: base_lr")
    for step in (1, 5, 9, 10, 11):
        expected = 0.2 + 0.8 * (1 + math.cos(math.pi * min(1.0, step / 10))) / 2
        expect_close(schedule.lr_at(step), expected, rtol=1e-12, call=f"same schedule .lr_at({step})",
                     hint="progress = (step - warmup_steps) / (total_steps - warmup_steps), at most 1")
    for kwargs in ({"warmup_steps": 10, "total_steps": 10}, {"warmup_steps": -1, "total_steps": 10},
                   {"warmup_steps": 2, "total_steps": 10, "min_lr": 2.0}):
        shown = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        expect_raises(ValueError, lambda kwargs=kwargs: CosineWarmupSchedule(SimpleNamespace(lr=None), base_lr=1.0, **kwargs),
                      call=f"CosineWarmupSchedule(opt, base_lr=1.0, {shown})",
                      hint="check the arguments: 0 <= warmup_steps < total_steps, 0 <= min_lr <= base_lr")


def test_clip_takes_any_iterable_and_keeps_float32():
    """clip_grad_norm accepts a generator of parameters, skips missing grads and keeps float32 gradients"""
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)).astype(np.float32), None, rng.normal(size=(4,)).astype(np.float32)]
    params = []
    for grad in grads:
        param = Tensor(np.zeros((1,) if grad is None else grad.shape, dtype=np.float32), requires_grad=True)
        param.grad = None if grad is None else Tensor(grad.copy())
        params.append(param)
    norm = clip_grad_norm((p for p in params), 0.1)
    expected_norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads if g is not None))
    expect_close(norm, expected_norm, rtol=1e-6, call="clip_grad_norm((p for p in params), 0.1)",
                 hint="go through the iterable once: a generator cannot be read twice")
    scale = 0.1 / (expected_norm + 1e-6)
    for index, (param, grad) in enumerate(zip(params, grads)):
        if grad is None:
            expect_true(param.grad is None, call=f"params[{index}].grad", expected="None", got=repr(param.grad),
                        hint="skip parameters without a gradient")
            continue
        expect_equal(str(param.grad.dtype), "float32", call=f"params[{index}].grad.dtype after clipping",
                     hint="keep each gradient's dtype")
        expect_close(param.grad, grad * scale, rtol=1e-5, call=f"params[{index}].grad after clipping (generator input)",
                     hint="every gradient is scaled, even when the parameters come from a generator")
    expect_close(clip_grad_norm([Tensor(np.zeros(2), requires_grad=True)], 1.0), 0.0, atol=0,
                 call="clip_grad_norm([a parameter with grad None], 1.0)", hint="no gradients: the norm is 0.0")


def test_accuracy_more_target_forms():
    """accuracy reads 1-D logits, one-hot targets, and refuses targets that do not fit"""
    expect_close(accuracy(np.array([0.3, -0.2, 2.0]), np.array([1, 1, 1])), 2 / 3, rtol=1e-12,
                 call="accuracy(logits [0.3, -0.2, 2.0], targets [1, 1, 1])", hint="1-D logits: one binary score per example")
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.4]])
    one_hot = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    expect_close(accuracy(logits, one_hot), 2 / 3, rtol=1e-12, call="accuracy(logits (3, 2), one-hot targets (3, 2))",
                 hint="targets of the logits' shape are one-hot or probabilities: compare argmax with argmax")
    expect_raises(ValueError, lambda: accuracy(np.zeros((4, 3)), np.zeros(5, dtype=np.int64)),
                  call="accuracy(logits (4, 3), targets (5,))", hint="one target per example: name both shapes")


def test_evaluate_weights_examples_and_keeps_eval_mode():
    """evaluate weights batches by size (a short last batch counts less) and leaves an eval-mode model in eval mode"""
    rng = np.random.default_rng(1)
    points = rng.normal(size=(11, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=11)
    manual_seed(0)
    model = Sequential(Linear(4, 8), ReLU(), Dropout(0.5), Linear(8, 3))
    trainer = Trainer(model, Adam(model.parameters()), CrossEntropyLoss())
    model.eval()
    whole = trainer.evaluate([(points, labels)])
    split = trainer.evaluate([(points[:8], labels[:8]), (points[8:], labels[8:])])
    expect_close(split["loss"], whole["loss"], rtol=1e-5, call="evaluate(batches of 8 and 3) vs evaluate(one batch of 11)",
                 hint="weight each batch's mean loss by its number of examples")
    expect_close(split["accuracy"], whole["accuracy"], rtol=1e-12, call="evaluate(batches of 8 and 3)['accuracy']",
                 hint="count correct examples over all batches, then divide by the number of examples")
    expect_true(not model.training and not any(m.training for m in model.modules()),
                call="model.training after evaluate of a model that was in eval mode", expected="False",
                got=str([m.training for m in model.modules()]), hint="restore the mode the model was in, not always train()")


def test_in_memory_state_dict_is_a_snapshot():
    """Trainer.state_dict is a snapshot: after more training, loading it resumes exactly, history and generator included"""
    rng = np.random.default_rng(2)
    points = rng.normal(size=(32, 4)).astype(np.float32)
    labels = rng.integers(0, 3, size=32)
    data = [(points[i:i + 8], labels[i:i + 8]) for i in range(0, 32, 8)]

    def build(seed):
        manual_seed(seed)
        model = Sequential(Linear(4, 8), ReLU(), Dropout(0.4), Linear(8, 3))
        optimizer = Adam(model.parameters(), lr=0.01)
        schedule = CosineWarmupSchedule(optimizer, base_lr=0.01, warmup_steps=2, total_steps=16)
        return Trainer(model, optimizer, CrossEntropyLoss(), schedule=schedule, clip_norm=0.5)

    trainer = build(0)
    trainer.fit(data, epochs=2)
    snapshot = trainer.state_dict()
    next_random = generator().random()
    generator().bit_generator.state = snapshot["rng"]
    records = trainer.fit(data, epochs=2)
    final = [p.data.copy() for p in trainer.model.parameters()]

    other = build(5)
    other.fit(data[:1], epochs=1)
    other.load_state_dict(snapshot)
    expect_equal(generator().random(), next_random, call="generator().random() right after load_state_dict",
                 hint="restore generator().bit_generator.state from state['rng']")
    generator().bit_generator.state = snapshot["rng"]
    expect_equal((other.epoch, other.step, len(other.history)), (2, 8, 2),
                 call="(epoch, step, len(history)) after load_state_dict of a snapshot taken after 2 epochs",
                 hint="restore the counters and the history saved in the snapshot, not the live ones")
    other_records = other.fit(data, epochs=2)
    expect_equal([r["train_loss"] for r in other_records], [r["train_loss"] for r in records],
                 call="train losses of 2 epochs after load_state_dict(snapshot)",
                 hint="state_dict must copy what it returns: training on must not change a saved snapshot")
    for index, (p, expected) in enumerate(zip(other.model.parameters(), final)):
        expect_equal(p.data, expected, call=f"parameter {index} after resuming from the in-memory snapshot",
                     hint="model, optimizer moments, schedule and counters must all come from the snapshot")
