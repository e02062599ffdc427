"""microGPT: a whole GPT on your scalar engine, with nothing left a black box.

Module 05's `Value` holds one number and remembers how it was made. That is enough for a GPT:
the model below is written with Values alone, one multiplication at a time. A name is read one
character at a time; each character looks up a token embedding and a position embedding, one
attention head looks back at the characters before it, a small MLP thinks about what it saw,
and a softmax turns the result into a probability for every possible next character. The loss
is cross-entropy, its gradients come from your backward(), and Adam, written out below on each
Value's data and grad, updates the 4,192 parameters.

The data are the first names of the 1990 US census. The bar to clear is the bigram model,
which predicts the next letter from the current one by counting pairs in the training names;
the GPT sees the whole name so far and should do better on names it has never seen. At the
end it writes new names.
"""

from __future__ import annotations

from harness import MilestoneRun  # first: it sets the BLAS threads before numpy loads  # noqa: I001

import contextlib
import gc
import math
import random
import re
import time
from typing import Iterator

from tinytorch.autograd import Value
from tinytorch.tokenization import CharTokenizer

BOUNDARY = "."   # the token before the first letter and after the last: "start" and "stop"
SPLIT_SEED = 1990  # the same train/validation split on every run, whatever the model's seed


# ---------------------------------------------------------------- the data

def load_names(run: MilestoneRun) -> list[str]:
    """The census names; without them, the distinct words of CPython's documentation stand in."""
    text, fetched = run.text_dataset("names")
    if fetched:
        return text.split()
    words = {word for word in re.findall(r"[a-z]+", text.lower()) if 3 <= len(word) <= 10}
    run.console.print(f"stand-in names: the {len(words):,} distinct words of 3 to 10 letters in that text")
    return sorted(words)


def split(names: list[str], share: float) -> tuple[list[str], list[str]]:
    """(train, validation): a fixed shuffle, the last `share` of it held out."""
    shuffled = list(names)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    held_out = int(len(shuffled) * share)
    return shuffled[:-held_out], shuffled[-held_out:]


# ---------------------------------------------------------------- the baseline to beat

def bigram_loss(train: list[list[int]], val: list[list[int]], vocab_size: int, alpha: float) -> float:
    """Cross-entropy per token on `val` of next-token counts from `train`, each count plus `alpha`
    (add-one smoothing for alpha = 1: a pair never seen still gets some probability)."""
    counts = [[alpha] * vocab_size for _ in range(vocab_size)]
    for tokens in train:
        for current, following in zip(tokens, tokens[1:]):
            counts[current][following] += 1
    totals = [sum(row) for row in counts]
    losses = [-math.log(counts[current][following] / totals[current])
              for tokens in val for current, following in zip(tokens, tokens[1:])]
    return sum(losses) / len(losses)


# ---------------------------------------------------------------- the model, one Value at a time

def matrix(rows: int, cols: int, rng: random.Random, std: float) -> list[list[Value]]:
    return [[Value(rng.gauss(0.0, std)) for _ in range(cols)] for _ in range(rows)]


def dot(a: list[Value], b: list[Value]) -> Value:
    total = a[0] * b[0]
    for x, y in zip(a[1:], b[1:]):
        total = total + x * y
    return total


def linear(x: list[Value], weight: list[list[Value]]) -> list[Value]:
    """weight @ x, one row (one output) at a time; no bias, as in GPT-2's successors."""
    return [dot(row, x) for row in weight]


def rms_norm(x: list[Value]) -> list[Value]:
    """x divided by its root mean square: every vector enters a layer at the same scale."""
    scale = (sum(v * v for v in x) / len(x) + 1e-5) ** -0.5
    return [v * scale for v in x]


def softmax(logits: list[Value]) -> list[Value]:
    """Probabilities from scores. Subtracting the largest score (a plain number: it changes no
    probability and no gradient) keeps exp() from overflowing."""
    largest = max(v.data for v in logits)
    exps = [(v - largest).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


class MicroGPT:
    """A one-block GPT: token and position embeddings, one causal attention head, an MLP with a
    ReLU, residual connections around both, RMS norms before each, and a linear head."""

    def __init__(self, vocab_size: int, width: int, block_size: int, hidden: int, rng: random.Random,
                 std: float) -> None:
        self.width, self.block_size = width, block_size
        self.token_embedding = matrix(vocab_size, width, rng, std)
        self.position_embedding = matrix(block_size, width, rng, std)
        self.query, self.key, self.value = (matrix(width, width, rng, std) for _ in range(3))
        self.attention_out = matrix(width, width, rng, std)
        self.mlp_in = matrix(hidden, width, rng, std)
        self.mlp_out = matrix(width, hidden, rng, std)
        self.head = matrix(vocab_size, width, rng, std)

    def parameters(self) -> list[Value]:
        matrices = (self.token_embedding, self.position_embedding, self.query, self.key, self.value,
                    self.attention_out, self.mlp_in, self.mlp_out, self.head)
        return [p for weight in matrices for row in weight for p in row]

    def step(self, token: int, position: int, keys: list, values: list, attention: list | None = None) -> list[Value]:
        """The scores (logits) of every next token after `token` at `position`.

        Characters are read one at a time: `keys` and `values` hold those of the characters
        already read, and this one's are appended, so attention can only look back (it is causal
        by construction, no mask needed). `attention`, if given, receives the weights as numbers."""
        x = [t + p for t, p in zip(self.token_embedding[token], self.position_embedding[position])]

        # attention: how well does this character's query match each key so far?
        h = rms_norm(x)
        query = linear(h, self.query)
        keys.append(linear(h, self.key))
        values.append(linear(h, self.value))
        weights = softmax([dot(query, key) / math.sqrt(self.width) for key in keys])
        if attention is not None:
            attention.append([w.data for w in weights])
        mixed = [sum(w * value[i] for w, value in zip(weights, values)) for i in range(self.width)]
        x = [a + b for a, b in zip(x, linear(mixed, self.attention_out))]

        # MLP: widen, ReLU, narrow back
        hidden = [v.relu() for v in linear(rms_norm(x), self.mlp_in)]
        x = [a + b for a, b in zip(x, linear(hidden, self.mlp_out))]
        return linear(rms_norm(x), self.head)

    def name_losses(self, tokens: list[int]) -> list[Value]:
        """Cross-entropy of every next token of one name, `.emma.` being five predictions."""
        keys: list = []
        values: list = []
        losses = []
        for position, (token, target) in enumerate(zip(tokens[:-1], tokens[1:])):
            probabilities = softmax(self.step(token, position, keys, values))
            losses.append(-probabilities[target].log())
        return losses


class Adam:
    """Adam (Kingma and Ba, 2014) on plain numbers: each parameter's data moves against its grad,
    by a step that running averages of the gradient and of its square make the same size for all."""

    def __init__(self, parameters: list[Value], betas: tuple[float, float], eps: float = 1e-8) -> None:
        self.parameters, self.betas, self.eps = parameters, betas, eps
        self.m = [0.0] * len(parameters)   # running mean of the gradient
        self.v = [0.0] * len(parameters)   # running mean of its square
        self.t = 0

    def step(self, lr: float) -> None:
        """One update with learning rate `lr`; every grad is then set back to zero."""
        beta1, beta2 = self.betas
        self.t += 1
        for i, p in enumerate(self.parameters):
            self.m[i] = beta1 * self.m[i] + (1 - beta1) * p.grad
            self.v[i] = beta2 * self.v[i] + (1 - beta2) * p.grad ** 2
            m_hat = self.m[i] / (1 - beta1 ** self.t)   # both start at zero: undo that bias
            v_hat = self.v[i] / (1 - beta2 ** self.t)
            p.data -= lr * m_hat / (math.sqrt(v_hat) + self.eps)
            p.grad = 0.0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while one graph is built and differentiated.

    A graph is some 50,000 Values per name, all alive until backward() is done, and the
    collector would scan them over and over as they pile up. Each Value's `_backward` refers to
    the Value itself, so a finished graph is a cycle that only the collector frees, once it runs
    again. Only plain numbers leave the pause: a graph still referenced when the collector
    resumes would be moved to its older generations and scanned with them for a long time (that
    alone made the validation pass three times slower)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def validation_loss(model: MicroGPT, names: list[list[int]]) -> float:
    total, count = 0.0, 0
    for tokens in names:
        with collector_paused():
            losses = [loss.data for loss in model.name_losses(tokens)]
        total += sum(losses)
        count += len(losses)
    return total / count


def attention_weights(model: MicroGPT, tokens: list[int]) -> list[list[float]]:
    """Row t: how much the head at position t attends to each position 0..t."""
    keys: list = []
    values: list = []
    attention: list[list[float]] = []
    for position, token in enumerate(tokens):
        model.step(token, position, keys, values, attention)
    return attention


def generate(model: MicroGPT, tokenizer: CharTokenizer, rng: random.Random, temperature: float) -> str:
    """A new name: start from the boundary token, sample a character at a time until the model
    writes the boundary again (or the name is as long as the model can see)."""
    boundary = tokenizer.encode(BOUNDARY)[0]
    keys: list = []
    values: list = []
    token, out = boundary, []
    for position in range(model.block_size):
        logits = model.step(token, position, keys, values)
        probabilities = softmax([v / temperature for v in logits])
        token = rng.choices(range(len(probabilities)), weights=[p.data for p in probabilities])[0]
        if token == boundary:
            break
        out.append(token)
    return tokenizer.decode(out)


# ---------------------------------------------------------------- training

def gradients(model: MicroGPT, batch: list[list[int]]) -> float:
    """Fill every parameter's grad with that of the mean loss per token over `batch`; the loss."""
    per_token = [loss for tokens in batch for loss in model.name_losses(tokens)]
    loss = sum(per_token) / len(per_token)
    loss.backward()
    return loss.data


def train(run: MilestoneRun, model: MicroGPT, names: list[list[int]], rng: random.Random) -> list[float]:
    config = run.config
    optimizer = Adam(model.parameters(), (config["beta1"], config["beta2"]))
    losses: list[float] = []
    started = time.perf_counter()
    for step in run.progress(range(config["steps"]), "training"):
        batch = rng.sample(names, config["names_per_step"])
        with collector_paused():
            losses.append(gradients(model, batch))
        optimizer.step(config["lr"] * (1 - step / config["steps"]))  # decays linearly to zero
        recent = losses[-50:]
        run.status = {"loss": f"{sum(recent) / len(recent):.3f}",
                      "names/s": f"{(step + 1) * config['names_per_step'] / (time.perf_counter() - started):.1f}"}
    return losses


def plot(losses: list[float], val_loss: float, bigram: float, attention: list[list[float]], name: str):
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    window = max(1, len(losses) // 25)
    smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
              for i in range(len(losses))]
    left.plot(losses, alpha=0.25, label="training loss per step")
    left.plot(smooth, label=f"mean of {window} steps")
    left.axhline(bigram, color="gray", linestyle="--", label=f"bigram, validation ({bigram:.3f})")
    left.axhline(val_loss, color="C3", linestyle=":", label=f"microGPT, validation ({val_loss:.3f})")
    left.set_xlabel("step")
    left.set_ylabel("cross-entropy (nats per character)")
    left.legend()
    size = len(attention)
    grid = [row + [float("nan")] * (size - len(row)) for row in attention]  # no looking ahead
    right.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    labels = list(BOUNDARY + name)[:size]
    right.set_xticks(range(size), labels)
    right.set_yticks(range(size), labels)
    right.set_title(f"attention while reading '{name}' (rows look at columns)")
    figure.tight_layout()
    return figure


def main() -> None:
    run = MilestoneRun.start("microgpt", story=__doc__)
    config = run.config
    names = [name for name in load_names(run) if len(name) < config["block_size"]]
    tokenizer = CharTokenizer(BOUNDARY + "".join(names))
    encode = lambda name: tokenizer.encode(BOUNDARY + name + BOUNDARY)  # noqa: E731
    train_names, val_names = split(names, config["val_share"])
    train_tokens = [encode(name) for name in train_names]
    val_tokens = [encode(name) for name in val_names][:config["val_names"]]

    rng = random.Random(config["seed"])
    model = MicroGPT(tokenizer.vocab_size, config["width"], config["block_size"], config["hidden"], rng, config["std"])
    run.console.print(f"{len(train_names):,} names to learn from, {len(val_tokens):,} held out; "
                      f"{tokenizer.vocab_size} tokens ('{BOUNDARY}' and the letters); "
                      f"microGPT has {len(model.parameters()):,} parameters, each one Value")
    bigram = bigram_loss(train_tokens, val_tokens, tokenizer.vocab_size, config["bigram_alpha"])

    losses = train(run, model, train_tokens, rng)
    started = time.perf_counter()
    val_loss = validation_loss(model, val_tokens)
    run.console.print(f"validation loss on {len(val_tokens):,} names: microGPT {val_loss:.4f}, "
                      f"bigram {bigram:.4f} nats per character ({time.perf_counter() - started:.0f} s)")

    known = set(names)
    sampler = random.Random(config["seed"])
    run.console.print(f"\nten names written by microGPT (temperature {config['temperature']}):")
    for _ in range(10):
        name = generate(model, tokenizer, sampler, config["temperature"])
        note = "(in the data)" if name in known else "(it stopped at once)" if not name else ""
        run.console.print(f"  {name:<14} {note}", markup=False)

    example = val_names[0]
    attention = attention_weights(model, encode(example)[:-1])
    run.save_figure(plot(losses, val_loss, bigram, attention, example), "microgpt.png")

    # How far training brought the loss down: from the first step's, where the untrained model
    # gives every token about the same probability (about ln 27 = 3.30 nats whatever the name),
    # to the mean of the last tenth of the steps.
    window = max(1, len(losses) // 10)
    run.finish({"val_loss_gap_to_bigram": val_loss - bigram, "val_loss": val_loss, "bigram_val_loss": bigram,
                "loss_drop": losses[0] - sum(losses[-window:]) / window})


if __name__ == "__main__":
    main()
