"""2017: Vaswani et al., "Attention is all you need".

Recurrent networks read a sentence one word at a time and forget the start by the end. The
transformer threw the recurrence away: every position looks at every other position at once,
through attention, and the order of words is something the model is told, not something it
is built from. Within two years it was translating, writing and coding.

Part one is a task a network without attention finds hard and one with attention finds
trivial: reverse a sequence of digits. Output position i must copy input position L - 1 - i,
so the model has to learn where to look; the saved heat-map shows that it did. Part two
trains a character-level GPT, built from your embeddings, attention and transformer blocks,
on the CPython documentation that ships with Python, and lets it write.
"""

from __future__ import annotations

import time

from harness import MilestoneRun, documentation_text  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import numpy as np
import tinytorch.autograd  # noqa: F401  (gives tensors their gradients)
from tinytorch.autograd import no_grad
from tinytorch.losses import CrossEntropyLoss
from tinytorch.optimizers import AdamW
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.tokenization import CharTokenizer
from tinytorch.training import CosineWarmupSchedule, clip_grad_norm
from tinytorch.transformers import GPT, GPTConfig


# ---------------------------------------------------------------- part one: reversal

def reversal_batch(rng: np.random.Generator, count: int, length: int, digits: int) -> np.ndarray:
    """Rows `a_1 .. a_L SEP a_L .. a_1`: the model reads the digits, then writes them backwards."""
    sequence = rng.integers(0, digits, size=(count, length))
    separator = np.full((count, 1), digits)  # the token after the digits: "now reverse"
    return np.concatenate([sequence, separator, sequence[:, ::-1]], axis=1)


def held_out(rng: np.random.Generator, count: int, length: int, digits: int, seen: set[bytes]) -> np.ndarray:
    """Test rows whose digit sequence never appeared in training."""
    rows = [row for row in reversal_batch(rng, 2 * count, length, digits) if row[:length].tobytes() not in seen]
    return np.array(rows[:count])


def reversal_loss(model: GPT, rows: np.ndarray, length: int):
    """Cross-entropy of the reversed half only: predicting the random digits is impossible."""
    inputs, targets = rows[:, :-1], rows[:, 1:]
    logits = model(inputs)[:, length:, :]  # the positions whose next token is a reversed digit
    vocab = logits.shape[-1]
    return CrossEntropyLoss()(logits.reshape(-1, vocab), Tensor(targets[:, length:].reshape(-1)))


def exact_match(model: GPT, rows: np.ndarray, length: int, batch_size: int = 500) -> float:
    """Fraction of rows whose whole reversed half greedy decoding gets right.

    One forward pass suffices: if the argmax is right at every position given the true prefix,
    greedy generation reproduces the whole answer, and if it is wrong somewhere, greedy
    generation goes wrong at the first such place, whose prefix it has reproduced exactly.
    """
    model.eval()
    correct = 0
    with no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            predicted = model(chunk[:, :-1]).data[:, length:, :].argmax(axis=-1)
            correct += int((predicted == chunk[:, length + 1:]).all(axis=1).sum())
    model.train()
    return correct / len(rows)


def train_reversal(run: MilestoneRun) -> tuple[GPT, np.ndarray, float]:
    config = run.config["reversal"]
    length, digits = config["length"], config["digits"]
    rng = np.random.default_rng(run.config["seed"])
    model = run.fast(GPT(GPTConfig(vocab_size=digits + 1, block_size=2 * length, n_layer=config["n_layer"],
                                   n_head=config["n_head"], n_embd=config["n_embd"])))
    run.console.print(f"reversal of {length} digits: GPT with {model.num_parameters():,} parameters")
    optimizer = AdamW(model.parameters(), lr=config["lr"], weight_decay=0.0)
    schedule = CosineWarmupSchedule(optimizer, config["lr"], config["warmup"], config["steps"])
    seen: set[bytes] = set()
    for step in run.progress(range(1, config["steps"] + 1), "reversal"):
        rows = reversal_batch(rng, config["batch_size"], length, digits)
        seen.update(row[:length].tobytes() for row in rows)
        loss = reversal_loss(model, rows, length)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == 1:
            run.status = {"loss": f"{loss.item():.4f}"}
    test_rows = held_out(rng, config["test_size"], length, digits, seen)
    score = exact_match(model, test_rows, length)
    for row in test_rows[:3]:
        prompt = row[None, :length + 1]
        answer = model.generate(prompt, max_new_tokens=length, greedy=True)[0, length + 1:]
        run.console.print(f"  {' '.join(map(str, row[:length]))}  ->  {' '.join(map(str, answer))}")
    run.console.print(f"exact match on {len(test_rows):,} held-out sequences: [bold]{score:.2%}[/bold]")
    return model, test_rows[0], score


def attention_maps(model: GPT, row: np.ndarray) -> list[np.ndarray]:
    """The attention weights (heads, T, T) of every block for one sequence."""
    return [weights[0] for weights in model.attention_maps(row[None, :-1])]


def plot_attention(maps: list[np.ndarray], row: np.ndarray):
    import matplotlib.pyplot as plt

    tokens = [str(t) if t < 10 else "|" for t in row[:-1]]
    heads = maps[0].shape[0]
    figure, axes = plt.subplots(len(maps), heads, figsize=(3.2 * heads, 3.2 * len(maps)), squeeze=False)
    for layer, weights in enumerate(maps):
        for head in range(heads):
            axis = axes[layer][head]
            axis.imshow(weights[head], cmap="viridis", vmin=0, vmax=1)
            axis.set_xticks(range(len(tokens)), tokens, fontsize=7)
            axis.set_yticks(range(len(tokens)), tokens, fontsize=7)
            axis.set_title(f"block {layer + 1}, head {head + 1}", fontsize=9)
    figure.suptitle("who looks where: rows are queries, columns keys (the anti-diagonal is the reversal)")
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------- part two: a character GPT

def text_batch(rng: np.random.Generator, data: np.ndarray, count: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    starts = rng.integers(0, len(data) - block - 1, size=count)
    windows = np.stack([data[s:s + block + 1] for s in starts])
    return windows[:, :-1], windows[:, 1:]


def text_loss(model: GPT, inputs: np.ndarray, targets: np.ndarray):
    logits = model(inputs)
    return CrossEntropyLoss()(logits.reshape(-1, logits.shape[-1]), Tensor(targets.reshape(-1)))


def train_text(run: MilestoneRun) -> tuple[dict[str, float], list[float]]:
    config = run.config["text"]
    text = documentation_text()
    tokenizer = CharTokenizer(text)
    data = np.array(tokenizer.encode(text), dtype=np.int64)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    run.console.print(f"\ncharacter GPT: {len(text):,} characters of CPython documentation, "
                      f"{tokenizer.vocab_size} distinct characters")
    rng = np.random.default_rng(run.config["seed"] + 1)
    model = run.fast(GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=config["block_size"],
                                   n_layer=config["n_layer"], n_head=config["n_head"], n_embd=config["n_embd"])))
    run.console.print(f"model: {model.num_parameters():,} parameters")
    optimizer = AdamW(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    schedule = CosineWarmupSchedule(optimizer, config["lr"], config["warmup"], config["steps"])
    losses: list[float] = []
    started = time.perf_counter()
    for step in run.progress(range(1, config["steps"] + 1), "characters"):
        loss = text_loss(model, *text_batch(rng, train_data, config["batch_size"], config["block_size"]))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        seen = step * config["batch_size"] * config["block_size"]
        run.status = {"loss": f"{np.mean(losses[-20:]):.3f}", "tok/s": f"{seen / (time.perf_counter() - started):.0f}"}

    model.eval()
    with no_grad():
        val_rng = np.random.default_rng(0)  # the same validation windows on every run
        val_loss = float(np.mean([text_loss(model, *text_batch(val_rng, val_data, 32, config["block_size"])).item()
                                  for _ in range(config["val_batches"])]))
    run.console.print(f"validation loss {val_loss:.3f} nats per character "
                      f"(a uniform guess: {np.log(tokenizer.vocab_size):.3f})")
    prompt = np.array([tokenizer.encode(config["prompt"])])
    for temperature in config["temperatures"]:
        out = model.generate(prompt, config["sample_length"], temperature=temperature, top_k=config["top_k"],
                             rng=np.random.default_rng(run.config["seed"]))
        run.console.rule(f"temperature {temperature}", style="dim")
        run.console.print(tokenizer.decode(out[0].tolist()), markup=False, highlight=False)
    return {"text_val_loss": val_loss}, losses


def plot_losses(losses: list[float]):
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(losses, alpha=0.4, label="batch")
    window = max(1, len(losses) // 20)
    axis.plot(np.convolve(losses, np.ones(window) / window, mode="valid"), label=f"mean of {window}")
    axis.set_xlabel("step")
    axis.set_ylabel("cross-entropy (nats per character)")
    axis.set_title("character GPT on the CPython documentation")
    axis.legend()
    return figure


def main() -> None:
    run = MilestoneRun.start("transformer", story=__doc__)
    manual_seed(run.config["seed"])
    model, example, score = train_reversal(run)
    run.save_figure(plot_attention(attention_maps(model, example), example), "attention.png")
    text_metrics, losses = train_text(run)
    run.save_figure(plot_losses(losses), "text_loss.png")
    run.finish({"reversal_exact_match": score, **text_metrics})


if __name__ == "__main__":
    main()
