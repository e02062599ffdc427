"""TinyGPT: a language model of your own, checked against PyTorch.

Everything in this run is yours: the tokenizer, the tensor, the gradients, the attention, the
optimizer, the training loop with its checkpoints, the KV-cache that writes the samples and the
int8 model. Beside it, on the other core, PyTorch trains the same GPT: the same architecture,
the very same initial weights, the same batches in the same order, the same learning-rate
schedule. If your framework is right, the two validation losses end up within a few hundredths
of a nat of each other; the remaining difference is float32 rounding, amplified by training.
nanoGPT's CPU configuration reaches 1.88 nats per character on Shakespeare; so should you.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import multiprocessing
import queue
import time
from typing import Any

import numpy as np

import tinytorch.autograd  # noqa: F401  (gradients)
from tinytorch.benchmarking import write_submission
from tinytorch.capstone import (TinyGPTConfig, TinyGPTTrainer, Tokenizer, benchmark_report, build_model,
                                estimate_loss, generate_text, get_batch, lr_at, quantize_gpt, split_tokens)

EVAL_SEED = 1234  # the validation batches, the same for both frameworks and every run


# ---------------------------------------------------------------- the same GPT, in PyTorch

def pytorch_gpt(config: TinyGPTConfig) -> Any:
    """Module 13's GPT written with torch.nn, with the same parameter names, so the weights of
    one copy into the other by name: pre-norm blocks, GPT-2's tanh GELU, learned positions,
    the output layer tied to the token embedding."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(config.n_embd, config.n_embd)
                                                                    for _ in range(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            batch, steps, width = x.shape
            heads = [p(x).view(batch, steps, config.n_head, width // config.n_head).transpose(1, 2)
                     for p in (self.q_proj, self.k_proj, self.v_proj)]
            mixed = F.scaled_dot_product_attention(*heads, is_causal=True)
            return self.out_proj(mixed.transpose(1, 2).reshape(batch, steps, width))

    class FeedForward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
            self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(F.gelu(self.fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(config.n_embd), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(config.n_embd), FeedForward()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
            self.blocks = nn.ModuleList(Block() for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T  # tied output layer

    return TorchGPT()


def train_pytorch(config_dict: dict[str, Any], weights: dict[str, np.ndarray], train_data: np.ndarray,
                  val_data: np.ndarray, eval_steps: list[int], eval_batches: int, reports: Any) -> None:
    """The PyTorch twin's whole run, in its own process on one core: same first weights, same
    batches (get_batch of the same seed and step), same schedule (lr_at), same clipping, AdamW
    with the same settings. Sends ("step", step, loss) now and then, ("eval", step, loss) at the
    evaluation steps, and ("done", tokens per second of training) at the end."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    config = TinyGPTConfig.from_dict(config_dict)
    model = pytorch_gpt(config)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            tensor.copy_(torch.from_numpy(weights[name]))
    matrices = [p for p in model.parameters() if p.ndim >= 2]
    vectors = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": config.weight_decay},
                                   {"params": vectors, "weight_decay": 0.0}], lr=config.lr)

    def loss_on(inputs: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        logits = model(torch.from_numpy(inputs))
        return F.cross_entropy(logits.reshape(-1, config.vocab_size), torch.from_numpy(targets).reshape(-1))

    training_seconds = 0.0
    for step in range(config.max_steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(config, step)
        loss = loss_on(*get_batch(train_data, config.batch_size, config.block_size, config.seed, step))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        training_seconds += time.perf_counter() - started
        reports.put(("step", step + 1, loss.item()))
        if step + 1 in eval_steps:
            with torch.no_grad():
                val = np.mean([loss_on(*get_batch(val_data, config.batch_size, config.block_size, EVAL_SEED, i)).item()
                               for i in range(eval_batches)])
            reports.put(("eval", step + 1, float(val)))
    reports.put(("done", config.max_steps * config.batch_size * config.block_size / training_seconds))


class PyTorchTwin:
    """The PyTorch run in a child process, and what it has reported so far."""

    def __init__(self, config: TinyGPTConfig, weights: dict[str, np.ndarray], train_data: np.ndarray,
                 val_data: np.ndarray, eval_steps: list[int]) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: torch's threads stay out of ours
        self.reports = context.Queue()
        self.process = context.Process(target=train_pytorch, daemon=True, args=(
            config.to_dict(), weights, train_data, val_data, eval_steps, config.eval_batches, self.reports))
        self.process.start()
        self.step, self.losses, self.val_losses, self.tokens_per_second = 0, {}, {}, None

    def poll(self, timeout: float = 0.0) -> None:
        """Take in what the twin has sent, waiting up to `timeout` seconds for the first report."""
        try:
            while True:
                report = self.reports.get(timeout=timeout) if timeout else self.reports.get_nowait()
                timeout = 0.0
                if report[0] == "step":
                    self.step, self.losses[report[1]] = report[1], report[2]
                elif report[0] == "eval":
                    self.val_losses[report[1]] = report[2]
                else:
                    self.tokens_per_second = report[1]
        except queue.Empty:
            pass

    def wait(self, run: MilestoneRun) -> None:
        while self.tokens_per_second is None:
            if not self.process.is_alive() and self.reports.empty():
                raise RuntimeError(f"the PyTorch run stopped at step {self.step} (exit code {self.process.exitcode})")
            self.poll(timeout=1.0)
            run.status = {"PyTorch step": str(self.step)}


# ---------------------------------------------------------------- your run

def train_yours(run: MilestoneRun, trainer: TinyGPTTrainer, twin: PyTorchTwin, val_data: np.ndarray,
                eval_steps: list[int]) -> tuple[dict[int, float], dict[int, float], float]:
    """Your trainer, step by step, beside the twin; checkpoints at each evaluation. Returns the
    training losses, the validation losses and the training speed in tokens per second."""
    config = trainer.config
    losses, val_losses, training_seconds = {}, {}, 0.0
    checkpoint = run.output_dir / "tinygpt_checkpoint.npz"
    for step in run.progress(range(1, config.max_steps + 1), "your GPT"):
        started = time.perf_counter()
        losses[step] = loss = trainer.train_step()
        training_seconds += time.perf_counter() - started
        twin.poll()
        if step in eval_steps:
            val_losses[step] = estimate_loss(trainer.model, val_data, config, seed=EVAL_SEED)
            trainer.save_checkpoint(checkpoint)
        run.status = {"loss": f"{loss:.3f}", "val": f"{val_losses[max(val_losses)]:.3f}" if val_losses else "-",
                      "PyTorch step": str(twin.step)}
    run.console.print(f"checkpoint with the optimizer state: {checkpoint}")
    return losses, val_losses, config.max_steps * config.batch_size * config.block_size / training_seconds


def plot_curves(yours: dict[int, float], theirs: dict[int, float], your_val: dict[int, float],
                their_val: dict[int, float], what: str):
    import matplotlib.pyplot as plt

    def smoothed(points: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        steps, losses = np.array(sorted(points.items())).T
        window = max(1, len(losses) // 40)
        return steps[window - 1:], np.convolve(losses, np.ones(window) / window, mode="valid")

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(*smoothed(yours), label="yours, training", color="tab:blue", alpha=0.7)
    axis.plot(*smoothed(theirs), label="PyTorch, training", color="tab:orange", alpha=0.7)
    axis.plot(list(your_val), list(your_val.values()), "o-", color="tab:blue", label="yours, validation")
    axis.plot(list(their_val), list(their_val.values()), "s--", color="tab:orange", label="PyTorch, validation")
    axis.set_xlabel("step")
    axis.set_ylabel("cross-entropy (nats per character)")
    axis.set_title(f"the same GPT, two frameworks: {what}")
    axis.legend()
    return figure


def main() -> None:
    run = MilestoneRun.start("tinygpt", story=__doc__)
    settings = run.config
    text, fetched = run.text_dataset("shakespeare")
    what = "Shakespeare" if fetched else "CPython's documentation"
    tokenizer = Tokenizer.for_characters(text)
    train_data, val_data = split_tokens(np.array(tokenizer.encode(text), dtype=np.int64), val_fraction=0.1)
    run.console.print(f"{what}: {len(text):,} characters, {tokenizer.vocab_size} distinct; "
                      f"the last 10% ({len(val_data):,} characters) is the validation text")

    config = TinyGPTConfig(vocab_size=tokenizer.vocab_size, **settings["model"], **settings["training"])
    model = build_model(config)
    weights = {name: tensor.data.copy() for name, tensor in model.named_parameters()}
    eval_steps = sorted({*range(config.eval_interval, config.max_steps, config.eval_interval), config.max_steps})
    run.console.print(f"GPT: {sum(w.size for w in weights.values()):,} parameters, {config.n_layer} layers, "
                      f"{config.n_head} heads, {config.n_embd} wide, {config.block_size} characters of context; "
                      f"{config.max_steps} steps of {config.batch_size} sequences")

    twin = PyTorchTwin(config, weights, train_data, val_data, eval_steps)
    trainer = TinyGPTTrainer(config, train_data, val_data, model=run.fast(model))
    your_losses, your_val, your_speed = train_yours(run, trainer, twin, val_data, eval_steps)
    twin.wait(run)
    twin.process.join(timeout=30)

    ours, theirs = your_val[config.max_steps], twin.val_losses[config.max_steps]
    run.console.print(f"\nvalidation loss: yours {ours:.4f}, PyTorch {theirs:.4f}, difference {ours - theirs:+.4f} nats")
    run.console.print(f"training speed: yours {your_speed:,.0f} tokens/s, PyTorch {twin.tokens_per_second:,.0f} "
                      f"tokens/s, PyTorch is {twin.tokens_per_second / your_speed:.2f}x faster (one core each)")
    run.save_figure(plot_curves(your_losses, twin.losses, your_val, twin.val_losses, what), "loss_curves.png")

    for temperature in settings["temperatures"]:
        sample = generate_text(model, tokenizer, settings["prompt"], settings["sample_length"],
                               temperature=temperature, top_k=settings["top_k"], seed=config.seed)
        run.console.rule(f"temperature {temperature}", style="dim")
        run.console.print(sample, markup=False, highlight=False)

    calibration = [get_batch(train_data, config.batch_size, config.block_size, config.seed + 1, i)[0]
                   for i in range(settings["calibration_batches"])]
    int8_model = quantize_gpt(model, calibration)
    int8_loss = estimate_loss(int8_model, val_data, config, seed=EVAL_SEED)
    run.console.print(f"\nint8 model: validation loss {int8_loss:.4f} ({int8_loss - ours:+.4f} against float32)")

    report = benchmark_report(trainer, tokenizer, int8_model)
    run.console.print(f"benchmark report: {write_submission(run.output_dir / 'submission.json', report)}")
    run.finish({"val_loss": ours, "pytorch_val_loss": theirs, "val_loss_gap_to_pytorch": abs(ours - theirs),
                "int8_val_loss": int8_loss, "tokens_per_second": your_speed,
                "pytorch_tokens_per_second": twin.tokens_per_second,
                "pytorch_speed_ratio": twin.tokens_per_second / your_speed})


if __name__ == "__main__":
    main()
