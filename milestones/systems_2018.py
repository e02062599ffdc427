"""2018: the year the systems caught up with the models.

Google's TPU papers, the first MLPerf benchmarks and Jacob et al.'s "Quantization and Training
of Neural Networks for Efficient Integer-Arithmetic-Only Inference" made one point together: a
model is only as useful as the memory, time and energy it needs. Phones ran int8 networks;
pruning papers showed most weights could go; language models generated text one token at a
time with a cache of keys and values instead of recomputing the past. Here your profiler,
quantizer, pruner, KV-cache, fast kernels and benchmark harness take an MNIST classifier and a
GPT and make them smaller and faster, and measure how much accuracy that costs.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import copy

import numpy as np

from mnist import load_mnist, predict, train_classifier
import tinytorch.autograd  # noqa: F401  (gradients)
from tinytorch.activations import ReLU
from tinytorch.benchmarking import (Measurement, compare, make_submission, measure, report_plot, report_table, speedup,
                                    write_submission)
from tinytorch.compression import apply_masks, global_unstructured, mask_gradients, model_sparsity, prunable_parameters
from tinytorch.layers import Linear, Sequential
from tinytorch.losses import CrossEntropyLoss
from tinytorch.memoization import generate_cached
from tinytorch.optimizers import Adam
from tinytorch.profiling import profile, profile_table
from tinytorch.quantization import quantize, weight_nbytes
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.training import load_state, save_state
from tinytorch.transformers import GPT, GPTConfig


def build_mlp(hidden: list[int]) -> Sequential:
    layers, width = [], 28 * 28
    for size in hidden:
        layers += [Linear(width, size), ReLU()]
        width = size
    return Sequential(*layers, Linear(width, 10))


def trained_classifier(run: MilestoneRun, splits: dict) -> Sequential:
    """Train the MNIST MLP, or load the one a previous run of this preset saved."""
    config = run.config
    model = build_mlp(config["hidden"])
    saved = run.output_dir / f"mlp_{run.preset}.npz"
    if saved.exists() and not config.get("retrain", False):
        try:
            model.load_state_dict(load_state(saved))
            run.console.print(f"reusing the classifier trained earlier ({saved}; delete it to retrain)")
            return model
        except Exception as error:  # a file from another architecture: train again
            run.console.print(f"cannot reuse {saved} ({error}); training again")
    train_classifier(run, model, splits)
    save_state(saved, model.state_dict())
    return model


def accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    return float((predict(model, images) == labels).mean())


def fine_tune_pruned(run: MilestoneRun, model, splits: dict) -> None:
    """A short fine-tune that keeps the pruned weights at zero: mask the gradients before each
    step, and re-apply the masks after it (Adam's momentum could otherwise revive them)."""
    images, labels = splits["train"]
    steps, batch = run.config["finetune_steps"], run.config["batch_size"]
    optimizer = Adam(model.parameters(), lr=run.config["finetune_lr"])
    loss_fn = CrossEntropyLoss()
    rng = np.random.default_rng(run.config["seed"])
    for _ in run.progress(range(steps), "fine-tune at 80% sparsity"):
        chosen = rng.integers(0, len(images), batch)
        optimizer.zero_grad()
        loss = loss_fn(model(Tensor(images[chosen])), Tensor(labels[chosen]))
        loss.backward()
        mask_gradients(model)
        optimizer.step()
        apply_masks(model)
        run.status = {"loss": f"{loss.item():.4f}"}


def sparse_nbytes(model, value_bytes: int) -> int:
    """Bytes of the weights stored sparse: each kept weight as its value plus a 4-byte index."""
    return int(sum(np.count_nonzero(module.weight.data) * (value_bytes + 4) for module, _ in prunable_parameters(model)))


def kv_cache_experiment(run: MilestoneRun) -> tuple[dict[str, Measurement], bool]:
    """Greedy generation from a GPT with and without the KV-cache: same tokens, how much faster."""
    settings = run.config["gpt"]
    manual_seed(run.config["seed"])
    config = GPTConfig(vocab_size=settings["vocab_size"], block_size=settings["prompt"] + settings["new_tokens"],
                       n_layer=settings["n_layer"], n_head=settings["n_head"], n_embd=settings["n_embd"])
    model = GPT(config)
    model.eval()
    prompt = np.random.default_rng(run.config["seed"]).integers(0, config.vocab_size, (1, settings["prompt"]))
    new = settings["new_tokens"]
    run.console.print(f"\nGPT of {model.num_parameters():,} parameters, greedy generation of {new} tokens "
                      f"after a {settings['prompt']}-token prompt")
    results: dict[str, np.ndarray] = {}

    def uncached() -> None:
        results["uncached"] = model.generate(prompt, new, greedy=True)

    def cached() -> None:
        results["cached"] = generate_cached(model, prompt, new, greedy=True)

    repeats = settings["repeats"]
    timings = {"generate, no cache": measure(uncached, warmup=0, repeats=repeats),
               "generate, KV-cache": measure(cached, warmup=1, repeats=repeats)}
    identical = bool(np.array_equal(results["uncached"], results["cached"]))
    run.console.print(f"tokens identical with and without the cache: {identical}")
    return timings, identical


def lenet_step_timings(run: MilestoneRun) -> dict[str, Measurement]:
    """One LeNet training step (forward, cross-entropy, backward) on module 09's layers, then on
    module 18's fast layers sharing the same parameters."""
    from cnn_1998 import build_lenet
    from tinytorch.acceleration import accelerate

    rng = np.random.default_rng(run.config["seed"])
    images = Tensor(rng.standard_normal((64, 1, 28, 28)).astype(np.float32))
    labels = Tensor(rng.integers(0, 10, 64))
    model, loss_fn = build_lenet((16, 32), (120, 84)), CrossEntropyLoss()

    def step() -> None:
        model.zero_grad()
        loss_fn(model(images), labels).backward()

    # module 09 first: accelerate also changes how the process reuses freed memory
    plain = measure(step, repeats=run.config["repeats"])
    model = accelerate(model)
    return {"LeNet step, module 09": plain, "LeNet step, accelerated": measure(step, repeats=run.config["repeats"])}


def plot_accuracy_vs_size(points: list[tuple[str, int, float]]):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4))
    for label, size, acc in points:
        axis.scatter(size / 1024, acc * 100, s=40)
        axis.annotate(label, (size / 1024, acc * 100), textcoords="offset points", xytext=(6, 4))
    axis.set_xscale("log")
    axis.set_xlabel("weight storage (KiB, log scale)")
    axis.set_ylabel("MNIST test accuracy (%)")
    axis.set_title("2018: accuracy versus size")
    axis.grid(alpha=0.3)
    return figure


def plot_speedups(groups: list[tuple[dict[str, Measurement], str]]):
    """One panel per group of timings: each one's speed-up over the group's baseline, with its interval."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(groups), 1, figsize=(7, 1.8 * len(groups)))
    for axis, (timings, baseline) in zip(axes, groups):
        report_plot(compare(timings, baseline), axis, baseline=baseline)
    figure.tight_layout()
    return figure


def main() -> None:
    run = MilestoneRun.start("systems", story=__doc__)
    config = run.config
    manual_seed(config["seed"])
    splits = load_mnist(run, flat=True)
    test_images, test_labels = splits["test"]

    model = trained_classifier(run, splits)
    run.console.print()
    run.console.print(profile_table(profile(model, Tensor(test_images[:config["batch_size"]]))))
    float_accuracy = accuracy(model, test_images, test_labels)
    float_bytes = weight_nbytes(model)

    # int8: calibrate the activations' ranges on validation images, never on the test set.
    val_images = splits["val"][0]
    calibration = [val_images[i:i + 256] for i in range(0, min(len(val_images), config["calibration_images"]), 256)]
    quantized = quantize(model, calibration, per_channel=True)
    int8_accuracy = accuracy(quantized, test_images, test_labels)
    int8_bytes = weight_nbytes(quantized)

    # 80% of the weights removed, the smallest magnitudes of the whole model, then a short fine-tune.
    pruned = copy.deepcopy(model)
    global_unstructured(prunable_parameters(pruned), config["sparsity"])
    pruned_before_tuning = accuracy(pruned, test_images, test_labels)
    fine_tune_pruned(run, pruned, splits)
    pruned_accuracy = accuracy(pruned, test_images, test_labels)
    sparsity = model_sparsity(pruned)

    run.console.print(f"\nfloat32: accuracy {float_accuracy:.4f}, weights {float_bytes:,} bytes")
    run.console.print(f"int8 per channel: accuracy {int8_accuracy:.4f} ({(float_accuracy - int8_accuracy) * 100:+.2f} "
                      f"points lost), weights {int8_bytes:,} bytes ({float_bytes / int8_bytes:.2f}x smaller)")
    run.console.print(f"pruned to {sparsity:.1%} sparsity: accuracy {pruned_before_tuning:.4f} before fine-tuning, "
                      f"{pruned_accuracy:.4f} after ({(float_accuracy - pruned_accuracy) * 100:+.2f} points lost)")
    points = [("float32", float_bytes, float_accuracy), ("int8", int8_bytes, int8_accuracy),
              ("80% pruned (sparse float32)", sparse_nbytes(pruned, 4), pruned_accuracy)]
    run.save_figure(plot_accuracy_vs_size(points), "accuracy_vs_size.png")

    batch = test_images[:config["batch_size"]]
    inference = {"MLP inference, float32": measure(lambda: predict(model, batch), repeats=config["repeats"]),
                 "MLP inference, int8": measure(lambda: predict(quantized, batch), repeats=config["repeats"])}
    generation, identical = kv_cache_experiment(run)
    kv = speedup(generation["generate, no cache"], generation["generate, KV-cache"])
    training = lenet_step_timings(run)
    lenet = speedup(training["LeNet step, module 09"], training["LeNet step, accelerated"])
    groups = [(inference, "MLP inference, float32"), (generation, "generate, no cache"),
              (training, "LeNet step, module 09")]
    for timings, baseline in groups:
        run.console.print()
        run.console.print(report_table(timings, baseline=baseline))
    run.console.print(f"\nKV-cache speed-up {kv}; LeNet step speed-up from module 18 {lenet} (median ratios, 95% intervals)")
    run.console.print("int8 saves memory, not time, here: numpy has no int8 matrix product, so the integer "
                      "matmul runs in int32 without BLAS; the speed needs int8 kernels (VNNI, or a GPU's tensor cores)")
    run.save_figure(plot_speedups(groups), "speedups.png")

    metrics = {"test_accuracy": float_accuracy,
               "int8_accuracy_drop": float_accuracy - int8_accuracy,
               "int8_size_ratio": float_bytes / int8_bytes,
               "sparsity": sparsity,
               "pruned_accuracy_drop": float_accuracy - pruned_accuracy,
               "kv_cache_speedup": kv.ratio,
               "kv_tokens_identical": float(identical),
               "lenet_step_speedup": lenet.ratio}
    submission = make_submission("systems_2018", {**inference, **generation, **training}, metrics=metrics)
    run.console.print(f"benchmark submission written to {write_submission(run.output_dir / 'submission.json', submission)}")
    run.finish(metrics)


if __name__ == "__main__":
    main()
