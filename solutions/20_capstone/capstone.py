# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 20: Capstone, TinyGPT end to end
#
# Nineteen modules built the parts: a tensor and its gradients, layers, losses, AdamW, a
# training loop that checkpoints and resumes, tokenizers, attention, a GPT, the KV-cache,
# int8 weights, a benchmark harness. This module assembles them into the whole life of a
# small language model, the way a real project does:
#
# ```
# text --tokenizer--> ids --split--> train / validation --get_batch--> batches
#      --TinyGPTTrainer (GPT + AdamW + schedule + clipping + checkpoints)--> a trained GPT
#      --generate_text (KV-cache)--> text        --quantize_gpt--> an int8 GPT
#      --benchmark_report--> a submission file with the numbers that describe it
# ```
#
# Almost nothing here is new mathematics. What is new is the **contract between the parts**:
# the same batches for every run that asks for step 1,234, a learning rate that is a pure
# function of the step, a checkpoint that holds *everything* the next step depends on, a
# tokenizer that gives the same ids however its text arrives. Get those right and two runs
# that should agree do agree, bit for bit; the TinyGPT milestone then trains your GPT beside
# a PyTorch twin with the same weights, batches and schedule, and the two validation losses
# meet within a few hundredths of a nat.
#
# In this module you build
#
# | name | what it does |
# | --- | --- |
# | `Tokenizer.for_characters(text)`, `Tokenizer.from_vocab(vocab, merges)`, `Tokenizer.train_bpe(text, vocab_size)` | one interface over module 10's character and byte-level BPE tokenizers |
# | `Tokenizer.encode`, `decode`, `encode_iterable(chunks)` | text to ids and back; ids from a stream of text, without holding it all |
# | `split_tokens(tokens, val_fraction)` | the training part and the validation part (the last fraction) |
# | `get_batch(data, batch_size, block_size, seed, step)` | the batch of a step: a pure function of `(seed, step)` |
# | `TinyGPTConfig`, `build_model(config)` | every hyper-parameter in one dataclass; module 13's GPT, seeded |
# | `lm_loss(logits, targets)`, `lr_at(config, step)`, `AdamWGroups` | the loss, the schedule, AdamW that decays matrices only |
# | `TinyGPTTrainer` | one training step, checkpoints, exact resume |
# | `estimate_loss(model, data, config, seed)` | the validation loss on fixed batches, no graph kept |
# | `generate_text(model, tokenizer, prompt, length, ...)` | text from a prompt, through module 17's KV-cache |
# | `quantize_gpt(model, calibration_batches)` | an int8 copy of the GPT (module 15) |
# | `benchmark_report(trainer, tokenizer, int8_model, ...)` | module 19's submission document: sizes, losses, speeds |
#
# The checkpoint trains a tiny model on a tiny corpus to a target loss in seconds, compares
# your training steps with a PyTorch AdamW run of the same weights and batches, resumes from
# a checkpoint and demands the same numbers bit for bit, checks your BPE ids against
# tiktoken's, also when the text arrives in pieces cut anywhere, compares greedy generation
# with PyTorch's, lets the int8 model generate beside the float one, and validates your
# benchmark report against module 19's schema.

# %%
from __future__ import annotations

import codecs
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Iterator

import numpy as np
import regex

import tinytorch.autograd  # noqa: F401  (gives every Tensor operation its gradient)
from tinytorch.autograd import no_grad
from tinytorch.benchmarking import make_submission, measure
from tinytorch.layers import Module
from tinytorch.losses import CrossEntropyLoss
from tinytorch.memoization import generate_cached
from tinytorch.optimizers import AdamW
from tinytorch.profiling import count_parameters
from tinytorch.quantization import quantize, weight_nbytes
from tinytorch.tensor import Tensor, manual_seed
from tinytorch.tokenization import GPT4_SPLIT_PATTERN, BPETokenizer, CharTokenizer, bpe_encode_chunk
from tinytorch.training import CosineWarmupSchedule, Trainer, load_state, save_state
from tinytorch.transformers import GPT, GPTConfig


# %% [markdown]
# ## 1. One tokenizer interface
#
# Module 10 gave you two tokenizers with the same three verbs: `CharTokenizer` (one id per
# character, the sorted characters of a text) and `BPETokenizer` (byte-level BPE, encoding
# exactly like tiktoken). The rest of the pipeline should not care which one it holds, so
# `Tokenizer` wraps either, as its `codec`, and adds what a project needs around it:
#
# - `Tokenizer.for_characters(text)`: a `CharTokenizer` of the text;
# - `Tokenizer.train_bpe(text, vocab_size, pattern)`: a `BPETokenizer` trained on the text;
# - `Tokenizer.from_vocab(vocab, merges, pattern)`: a tokenizer from a vocabulary someone
#   saved or gave you (below);
# - `kind` (`"char"` or `"bpe"`), `vocab`, `merges`, `vocab_size`, `encode(text)`,
#   `decode(ids)`: the codec's. For BPE, `encode` is module 10's `encode_ordinary`: the text
#   a language model trains on is ordinary text, and special-token text in it is just text
#   (ids of special tokens still decode).
#
# **Loading a vocabulary: `from_vocab(vocab, merges)`.** A model is worthless without the
# exact tokenizer it was trained with: id 17 must mean the same piece of text at sampling
# time as at training time. So the vocabulary is saved with the model and loaded back,
# or a vocabulary trained elsewhere is loaded to train a model on. Two shapes:
#
# - **characters**: `vocab` is a sequence of single characters (a list or a string), id =
#   position, and `merges` is `None` or empty. It must be what `CharTokenizer` makes, each
#   character once, in sorted order: then `CharTokenizer("".join(vocab))` is that very
#   tokenizer. Anything else is a `ValueError` (a vocabulary in another order would give
#   every character a different id than the one it was saved with).
# - **byte-level BPE**: `merges` in any of the forms module 10 writes them, a dict
#   `{(left, right): new_id}` (`BPETokenizer.merges`), a list of `[left, right, new_id]`
#   (its saved file), or a list of `(left, right)` pairs in merge order (new ids 256, 257,
#   ...); and `vocab` `{id: bytes}` (`BPETokenizer.vocab`) or `None`. The merges *define*
#   the vocabulary (`vocab[new] = vocab[left] + vocab[right]`, module 10's `_rebuild`), so
#   `vocab` is a cross-check: every id the merges make must be in it with the same bytes
#   (else `ValueError`: the two files do not belong together), and an id the merges do not
#   make is a special token, registered with module 10's `register_special_tokens`.
#
# Build the BPE the way module 10's `BPETokenizer.load` does: a `BPETokenizer(pattern)`,
# its `merges` set, `_rebuild()`, then the special tokens.

# %% [markdown]
# ## 2. Streaming: `encode_iterable`
#
# Shakespeare is 5 MB; the corpora of real models are terabytes, read from files in blocks
# or from the network in packets. `encode_iterable(chunks)` takes any iterable of text
# pieces (`open(path)` itself, which yields lines; a generator of blocks) and **yields** ids
# as it goes, holding only a little text at a time. The promise: the ids are exactly those
# of `encode("".join(chunks))`, wherever the pieces were cut. Two things make that harder
# than encoding each piece:
#
# 1. **A chunk of the split pattern can straddle a cut.** `"the cat"` cut after `"the c"`:
#    encoding `" c"` now would give the ids of `" c"`, but the pattern wants `" cat"`. And it
#    is not only the last chunk that can still change: a run of spaces `"  \n  "` followed
#    by `"\n"` becomes *one* chunk (GPT-4's `\s*[\r\n]+` eats whitespace up to the last
#    newline), and GPT-2's contraction `'ll` looks two characters ahead, so `"'l"` at the end
#    of a piece is two chunks (`"'"`, `"l"`) that turn into one when the next `"l"` comes.
#    The rule that is safe for module 10's patterns: split what you hold into chunks; the
#    **last two chunks that contain a non-space character, and everything after them**, stay
#    held; every chunk before them is final: encode it with module 10's `bpe_encode_chunk`
#    and yield its ids. (No chunk of those patterns looks past a non-space character that
#    starts a later chunk; the second one guards the two-character look-ahead.) At the end,
#    encode whatever is held.
# 2. **A character can straddle a cut**, when the pieces are bytes (a file read in binary
#    blocks of 4096 bytes cuts UTF-8 characters in half, module 10's section 3). Decode bytes
#    pieces with an **incremental decoder**, `codecs.getincrementaldecoder("utf-8")()`: its
#    `decode(piece)` returns the complete characters and keeps the incomplete tail for the
#    next call; `decode(b"", final=True)` at the end flushes it (and raises on a truncated
#    character). Text pieces pass through as they are.
#
# A character tokenizer has no chunks: each character's id is final at once.
#
# It must be a generator (`yield`), so the caller can stop early (`itertools.islice`) or
# feed an endless stream.

# %% nbgrader={"grade": false, "grade_id": "tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _merge_table(merges: Any) -> dict[tuple[int, int], int]:
    """Merges given as {(l, r): id}, [[l, r, id], ...] or [(l, r), ...] (ids 256, 257, ...) as one dict."""
    ### BEGIN SOLUTION
    if isinstance(merges, dict):
        return {(int(left), int(right)): int(new_id) for (left, right), new_id in merges.items()}
    table: dict[tuple[int, int], int] = {}
    for index, merge in enumerate(merges):
        merge = [int(i) for i in merge]
        if len(merge) == 2:
            table[(merge[0], merge[1])] = 256 + index
        elif len(merge) == 3:
            table[(merge[0], merge[1])] = merge[2]
        else:
            raise ValueError(f"merge {index} is {merge}: expected (left, right) or (left, right, new_id)")
    return table
    ### END SOLUTION


class Tokenizer:
    """Module 10's CharTokenizer or BPETokenizer behind one interface, with loading and streaming."""

    def __init__(self, codec: CharTokenizer | BPETokenizer) -> None:
        self.codec = codec
        self.kind = "bpe" if isinstance(codec, BPETokenizer) else "char"

    @classmethod
    def for_characters(cls, text: str) -> Tokenizer:
        """A character tokenizer of `text` (module 10's CharTokenizer)."""
        ### BEGIN SOLUTION
        return cls(CharTokenizer(text))
        ### END SOLUTION

    @classmethod
    def train_bpe(cls, text: str, vocab_size: int, pattern: str = GPT4_SPLIT_PATTERN) -> Tokenizer:
        """A byte-level BPE tokenizer trained on `text` (module 10's BPETokenizer.train)."""
        ### BEGIN SOLUTION
        codec = BPETokenizer(pattern)
        codec.train(text, vocab_size)
        return cls(codec)
        ### END SOLUTION

    @classmethod
    def from_vocab(cls, vocab: Any, merges: Any = None, pattern: str = GPT4_SPLIT_PATTERN) -> Tokenizer:
        """A character vocabulary (sorted distinct characters, no merges) or a BPE (merges, vocab {id: bytes} or None)."""
        ### BEGIN SOLUTION
        if merges is None or len(merges) == 0:
            chars = list(vocab)
            if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars):
                raise ValueError("a vocabulary without merges must be a sequence of single characters")
            codec = CharTokenizer("".join(chars))
            if codec.chars != chars:
                raise ValueError("a character vocabulary lists each character once, in sorted order, as "
                                 "CharTokenizer makes it; in any other order the ids would change meaning")
            return cls(codec)
        codec = BPETokenizer(pattern)
        codec.merges = _merge_table(merges)
        codec._rebuild()
        if vocab is not None:
            special = {}
            for token_id, token in dict(vocab).items():
                token_id = int(token_id)
                token = token.encode("utf-8") if isinstance(token, str) else bytes(token)
                if token_id in codec.vocab:
                    if codec.vocab[token_id] != token:
                        raise ValueError(f"vocab[{token_id}] is {token!r} but the merges make {codec.vocab[token_id]!r}: "
                                         "this vocabulary and these merges do not belong together")
                else:
                    special[token.decode("utf-8")] = token_id
            missing = sorted(set(codec.vocab) - {int(i) for i in vocab})
            if missing:
                raise ValueError(f"the merges make token ids {missing[:5]} that the vocabulary does not have")
            if special:
                codec.register_special_tokens(special)
        return cls(codec)
        ### END SOLUTION

    @property
    def vocab(self) -> list[str] | dict[int, bytes]:
        """The characters in id order, or BPE's {id: bytes}."""
        return list(self.codec.chars) if self.kind == "char" else dict(self.codec.vocab)

    @property
    def merges(self) -> dict[tuple[int, int], int]:
        """BPE's merges in merge order; none for characters."""
        return dict(self.codec.merges) if self.kind == "bpe" else {}

    @property
    def vocab_size(self) -> int:
        ### BEGIN SOLUTION
        return self.codec.vocab_size
        ### END SOLUTION

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (for BPE: special-token text is ordinary text)."""
        ### BEGIN SOLUTION
        if self.kind == "bpe":
            return self.codec.encode_ordinary(text)
        return self.codec.encode(text)
        ### END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (a list, a numpy array or a Tensor)."""
        ### BEGIN SOLUTION
        return self.codec.decode(ids)
        ### END SOLUTION

    def encode_iterable(self, chunks: Iterable[str | bytes]) -> Iterator[int]:
        """Yield the ids of "".join(chunks) as the chunks arrive (section 2); bytes chunks are UTF-8."""
        ### BEGIN SOLUTION
        decoder = codecs.getincrementaldecoder("utf-8")()
        if self.kind == "char":
            for chunk in chunks:
                text = decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
                yield from self.codec.encode(text)
            yield from self.codec.encode(decoder.decode(b"", final=True))
            return
        ranks = self.codec.mergeable_ranks()
        split = regex.compile(self.codec.pattern)
        pending = ""
        for chunk in chunks:
            pending += decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
            pieces = split.findall(pending)
            solid = [i for i, piece in enumerate(pieces) if not piece.isspace()]
            if len(solid) < 2:
                continue  # nothing is certain yet
            for piece in pieces[:solid[-2]]:
                yield from bpe_encode_chunk(piece.encode("utf-8"), ranks)
            pending = "".join(pieces[solid[-2]:])
        pending += decoder.decode(b"", final=True)
        for piece in split.findall(pending):
            yield from bpe_encode_chunk(piece.encode("utf-8"), ranks)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Tokenizer({self.kind}, vocab_size={self.vocab_size})"


# %% [markdown]
# ## 3. The data: a split and a batch per step
#
# `split_tokens(tokens, val_fraction)` keeps the **last** `val_fraction` of the token
# stream for validation: the training part is the first `int(len(tokens) * (1 -
# val_fraction))` tokens (nanoGPT's rule; the README's 505,733 validation characters of
# Shakespeare are the rest), the validation part the rest. Why the end and not a random
# sample of positions? Neighbouring windows of text overlap: a window drawn for validation
# from the middle of the training text shares almost all its characters with training
# windows, and the "validation" loss would measure memory, not generalisation. Both parts
# are int64 numpy arrays; a fraction outside `(0, 1)` is a `ValueError`.
#
# `get_batch(data, batch_size, block_size, seed, step)` returns `(inputs, targets)`, two
# int64 arrays `(batch_size, block_size)`: `batch_size` windows of the text, each target
# the input shifted by one token (the model predicts token `t + 1` from tokens `0..t`). The
# windows start at random positions, and this is the decision that makes everything else
# reproducible: **the batch is a pure function of `(seed, step)`**. No generator carries
# state from one call to the next, so step 1,234 gets the same batch whether the run started
# at step 0 or resumed from a checkpoint at step 1,000, and the PyTorch twin of the
# milestone, in another process, gets it too. The recipe, which everyone follows so that
# everyone sees the same batches:
#
# ```
# generator = np.random.default_rng([seed, step])          # a seed made of two numbers
# starts = generator.integers(0, len(data) - block_size, size=batch_size)
# inputs[b] = data[starts[b] : starts[b] + block_size],  targets[b] = data[starts[b] + 1 : starts[b] + block_size + 1]
# ```
#
# (index with `starts[:, None] + np.arange(block_size)`: one gather, no Python loop). The
# highest start, `len(data) - block_size - 1`, still has a target for its last position.
# Data of `block_size` tokens or fewer has no window at all: `ValueError`.

# %% nbgrader={"grade": false, "grade_id": "data", "locked": false, "schema_version": 3, "solution": true, "task": false}
def split_tokens(tokens: Any, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) int64 arrays: train = the first int(n * (1 - val_fraction)) tokens, val = the rest."""
    ### BEGIN SOLUTION
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    tokens = np.asarray(tokens, dtype=np.int64).ravel()
    n_train = int(len(tokens) * (1.0 - val_fraction))
    return tokens[:n_train].copy(), tokens[n_train:].copy()
    ### END SOLUTION


def get_batch(data: Any, batch_size: int, block_size: int, seed: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int64 (batch_size, block_size): windows at default_rng([seed, step]).integers(...)."""
    ### BEGIN SOLUTION
    data = np.asarray(data)
    if len(data) <= block_size:
        raise ValueError(f"get_batch: {len(data)} tokens hold no window of block_size={block_size} plus a target")
    generator = np.random.default_rng([seed, step])
    starts = generator.integers(0, len(data) - block_size, size=batch_size)
    positions = starts[:, None] + np.arange(block_size)
    return data[positions].astype(np.int64), data[positions + 1].astype(np.int64)
    ### END SOLUTION


# %% [markdown]
# ## 4. One configuration, one model
#
# Every number a run depends on lives in one dataclass, `TinyGPTConfig`: the model's shape
# (`vocab_size`, `n_layer`, `n_head`, `n_embd`, `block_size`) and the training's
# (`batch_size`, `max_steps`, `lr`, `min_lr`, `warmup_steps`, `weight_decay`, `grad_clip`,
# `eval_interval`, `eval_batches`, `seed`). One object is easy to print, to save in a
# checkpoint, and to send to another process (the milestone sends it to its PyTorch twin):
#
# - `to_dict()`: `{field: value}` for every field, in order, plain Python values
#   (`dataclasses.asdict`), so `json.dumps` can write it;
# - `TinyGPTConfig.from_dict(d)`: the config back; a key that is not a field is a
#   `ValueError` naming it (a typo like `"n_layers"` must not silently become the default);
# - `gpt_config()`: module 13's `GPTConfig` of the model: GPT-2's architecture (learned
#   positions, LayerNorm, GELU, biases, the output layer tied to the token embedding), no
#   dropout.
#
# The checks of the values are given (`__post_init__`).
#
# `build_model(config)` is module 13's `GPT(config.gpt_config())` built right after
# `manual_seed(config.seed)` (module 01): the same config gives the same initial weights,
# every time. Its `named_parameters()` are module 13's names, `wte.weight`, `wpe.weight`,
# `blocks.0.ln_1.weight`, ..., `ln_f.bias`, with weights stored `(out, in)` as PyTorch stores
# them and the tied `lm_head.weight` listed once (as `wte.weight`): exactly the names of the
# PyTorch twin, so weights copy from one to the other by name.

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
@dataclass
class TinyGPTConfig:
    """Every hyper-parameter of a TinyGPT run: the model's shape and the training's settings."""

    vocab_size: int
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 32
    batch_size: int = 16
    max_steps: int = 200
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 50
    eval_batches: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_steps",
                     "eval_interval", "eval_batches"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"TinyGPTConfig.{name} must be a positive whole number, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"TinyGPTConfig: n_embd={self.n_embd} does not split into n_head={self.n_head} heads")
        if not 0 <= self.warmup_steps < self.max_steps:
            raise ValueError(f"TinyGPTConfig: warmup_steps={self.warmup_steps} must be in [0, max_steps={self.max_steps})")
        if not 0 <= self.min_lr <= self.lr or self.lr <= 0:
            raise ValueError(f"TinyGPTConfig: need 0 <= min_lr <= lr and lr > 0, got lr={self.lr}, min_lr={self.min_lr}")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError(f"TinyGPTConfig: weight_decay={self.weight_decay} must be >= 0 and "
                             f"grad_clip={self.grad_clip} > 0")

    def to_dict(self) -> dict[str, Any]:
        """{field: value} for every field, in order (plain Python: json.dumps can write it)."""
        ### BEGIN SOLUTION
        return asdict(self)
        ### END SOLUTION

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TinyGPTConfig:
        """The config of to_dict()'s dict; a key that is not a field is a ValueError naming it."""
        ### BEGIN SOLUTION
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TinyGPTConfig has no field {', '.join(map(repr, unknown))}; its fields are {sorted(known)}")
        return cls(**values)
        ### END SOLUTION

    def gpt_config(self) -> GPTConfig:
        """Module 13's GPTConfig of this model (GPT-2's architecture, tied output layer, no dropout)."""
        ### BEGIN SOLUTION
        return GPTConfig(vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, dropout=0.0, bias=True, norm="layernorm",
                         mlp="gelu", position="learned", tie_weights=True)
        ### END SOLUTION


def build_model(config: TinyGPTConfig) -> GPT:
    """Module 13's GPT of config.gpt_config(), its weights drawn right after manual_seed(config.seed)."""
    ### BEGIN SOLUTION
    manual_seed(config.seed)
    return GPT(config.gpt_config())
    ### END SOLUTION


# %% [markdown]
# ## 5. The loss, the schedule, and AdamW with two groups
#
# **The loss.** The model gives logits `(B, T, V)`, one distribution over the next token at
# every position; the targets are `(B, T)` ids. `lm_loss(logits, targets)` is module 04's
# `CrossEntropyLoss` (mean) over all `B * T` positions at once: reshape the logits to
# `(B * T, V)` and the targets to `(B * T,)` int64. Every position counts once, as in
# PyTorch's `F.cross_entropy(logits.view(-1, V), targets.view(-1))`. Targets may be a numpy
# array or a Tensor.
#
# **The schedule.** `lr_at(config, step)` is module 07's `CosineWarmupSchedule` with
# `base_lr = lr`, `warmup_steps`, `total_steps = max_steps` and `min_lr`: its `lr_at(step)`,
# a pure function of the step, so both frameworks can ask it. `schedule_for(config,
# optimizer)` (given) builds that schedule on an optimizer; any object with an `lr`
# attribute will do (`types.SimpleNamespace(lr=0.0)`) when you only want the numbers.
#
# **Which parameters decay?** Weight decay pulls weights towards zero. That is a sensible
# prior for the matrices that mix features (`q_proj.weight`, `fc.weight`, the embedding), and
# a harmful one for the vectors: a LayerNorm gain pulled towards 0 switches its features
# off, a bias pulled towards 0 moves every output. GPT-2, nanoGPT and most transformer
# recipes decay **parameters with two or more dimensions** and leave the others alone.
# PyTorch does it with parameter groups; module 06's optimizers have none, so `AdamWGroups`
# holds two `AdamW`s of module 06, with the same `lr`, betas and eps:
#
# - `"decay"`: every parameter with `ndim >= 2`, with `weight_decay`;
# - `"no_decay"`: the rest, with `weight_decay = 0`.
#
# `param_groups(model)` gives the two lists, in `model.parameters()` order (so a tied
# parameter comes once). `AdamWGroups` looks like one optimizer to module 07's `Trainer`:
# `lr` (reading it gives the first group's, setting it sets both: the schedule writes it),
# `zero_grad()`, `step()`, and `state_dict()` / `load_state_dict()` as `{"decay": ...,
# "no_decay": ...}` of the two `AdamW` states. `AdamW` refuses an empty parameter list, and a
# GPT always has both kinds.

# %% nbgrader={"grade": false, "grade_id": "loss-and-optimizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def lm_loss(logits: Tensor, targets: Any) -> Tensor:
    """Mean cross-entropy of logits (B, T, V) against target ids (B, T), over all B * T positions."""
    ### BEGIN SOLUTION
    batch, steps, vocab = logits.shape
    ids = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    return CrossEntropyLoss()(logits.reshape(batch * steps, vocab), Tensor(ids.reshape(-1).astype(np.int64)))
    ### END SOLUTION


def schedule_for(config: TinyGPTConfig, optimizer: Any) -> CosineWarmupSchedule:
    """Module 07's warm-up + cosine schedule of this config, writing into optimizer.lr."""
    return CosineWarmupSchedule(optimizer, base_lr=config.lr, warmup_steps=config.warmup_steps,
                                total_steps=config.max_steps, min_lr=config.min_lr)


def lr_at(config: TinyGPTConfig, step: int) -> float:
    """The learning rate of step `step` (0-based): linear warm-up, then cosine decay to min_lr at max_steps."""
    ### BEGIN SOLUTION
    return schedule_for(config, SimpleNamespace(lr=0.0)).lr_at(step)
    ### END SOLUTION


def param_groups(model: Module) -> tuple[list[Tensor], list[Tensor]]:
    """(parameters with ndim >= 2, the others), each in model.parameters() order."""
    ### BEGIN SOLUTION
    parameters = model.parameters()
    return [p for p in parameters if p.ndim >= 2], [p for p in parameters if p.ndim < 2]
    ### END SOLUTION


class AdamWGroups:
    """Two AdamWs of module 06: weight decay for the matrices, none for the vectors; one lr."""

    def __init__(self, model: Module, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        ### BEGIN SOLUTION
        decay, no_decay = param_groups(model)
        self.groups = {"decay": AdamW(decay, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
                       "no_decay": AdamW(no_decay, lr=lr, betas=betas, eps=eps, weight_decay=0.0)}
        ### END SOLUTION

    @property
    def lr(self) -> float:
        return self.groups["decay"].lr

    @lr.setter
    def lr(self, value: float) -> None:
        ### BEGIN SOLUTION
        for group in self.groups.values():
            group.lr = value
        ### END SOLUTION

    def zero_grad(self) -> None:
        ### BEGIN SOLUTION
        for group in self.groups.values():
            group.zero_grad()
        ### END SOLUTION

    def step(self) -> None:
        ### BEGIN SOLUTION
        for group in self.groups.values():
            group.step()
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        """{"decay": AdamW state, "no_decay": AdamW state}."""
        ### BEGIN SOLUTION
        return {name: group.state_dict() for name, group in self.groups.items()}
        ### END SOLUTION

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ### BEGIN SOLUTION
        for name, group in self.groups.items():
            group.load_state_dict(state[name])
        ### END SOLUTION


# %% [markdown]
# ## 6. The trainer, and a resume that changes nothing
#
# `TinyGPTTrainer(config, train_data, val_data=None, model=None)` puts the parts together
# around module 07's `Trainer`:
#
# - `model`: the one given, or `build_model(config)`. A caller may hand in module 18's
#   `accelerate(model)`: the same parameter Tensors on faster layers; everything below only
#   uses the model's public face (`model(idx)`, `parameters()`, `state_dict()`).
# - `optimizer`: `AdamWGroups(model, config.lr, config.weight_decay)`; `schedule`:
#   `schedule_for(config, optimizer)`; `trainer`: module 07's `Trainer(model, optimizer,
#   lm_loss, schedule, clip_norm=config.grad_clip)`: zero_grad, backward, clipping by the
#   global norm, the optimizer's step and the schedule's, the step counter, and a
#   `state_dict` that holds all of them.
# - `step`: the number of steps taken (the `Trainer`'s).
# - `train_step()`: the batch of this step, `get_batch(train_data, batch_size, block_size,
#   seed, step)`, through the `Trainer`'s `train_step`; returns the loss. So step `s` trains
#   on batch `s` at `lr_at(config, s)`: the schedule set `lr_at(config, 0)` when it was built
#   and advances once after every step.
# - `evaluate(seed=EVAL_SEED)`: `estimate_loss` of the model on the validation data.
#
# **Checkpoints.** What must a checkpoint hold so that resuming changes *nothing*? Everything
# the next step reads: the weights, AdamW's two moments and step count for every parameter
# (without them the first resumed steps are Adam's bias-corrected first steps all over again,
# far too large), the schedule's position (else the learning rate warms up again), the step
# counter (it picks the batch). Module 07's `Trainer.state_dict` holds them all. The data
# position needs nothing: it *is* the step. Add the config, so the file says which model it
# holds.
#
# - `save_checkpoint(path)`: module 07's `save_state(path, {"config": config.to_dict(),
#   "trainer": trainer.state_dict()})`, one `.npz` file with no pickle, written atomically;
#   returns the path.
# - `load_checkpoint(path)`: put a checkpoint's state into this trainer (a checkpoint of a
#   different config is a `ValueError`: its weights would not fit, or worse, would fit a
#   different schedule).
# - `TinyGPTTrainer.from_checkpoint(path, train_data, val_data=None, model=None)`: a trainer
#   of the checkpoint's config, with its state loaded.
#
# The test of all this is strict: train 6 steps; or train 3, save, build a new trainer from
# the file, train 3 more. The weights, the moments and the losses must be **equal**, bit for
# bit (float32 arrays saved in `.npz` come back exactly). A resume that is only "close" hides
# a missing piece of state that a longer run would show as a bump in the loss curve.

# %% nbgrader={"grade": false, "grade_id": "trainer", "locked": false, "schema_version": 3, "solution": true, "task": false}
EVAL_SEED = 1234  # the validation batches: the same ones for every evaluation of every run


class TinyGPTTrainer:
    """A GPT, AdamW in two groups, the schedule and clipping, around module 07's Trainer."""

    def __init__(self, config: TinyGPTConfig, train_data: Any, val_data: Any = None, model: Module | None = None) -> None:
        self.config = config
        self.train_data = np.asarray(train_data, dtype=np.int64)
        self.val_data = None if val_data is None else np.asarray(val_data, dtype=np.int64)
        ### BEGIN SOLUTION
        self.model = build_model(config) if model is None else model
        self.optimizer = AdamWGroups(self.model, config.lr, config.weight_decay)
        self.schedule = schedule_for(config, self.optimizer)
        self.trainer = Trainer(self.model, self.optimizer, lm_loss, schedule=self.schedule,
                               clip_norm=config.grad_clip)
        ### END SOLUTION

    @property
    def step(self) -> int:
        """Steps taken so far."""
        ### BEGIN SOLUTION
        return self.trainer.step
        ### END SOLUTION

    def train_step(self) -> float:
        """One AdamW step on the batch of this step; the loss before the step, as a float."""
        ### BEGIN SOLUTION
        c = self.config
        inputs, targets = get_batch(self.train_data, c.batch_size, c.block_size, c.seed, self.step)
        return self.trainer.train_step(inputs, targets)
        ### END SOLUTION

    def evaluate(self, seed: int = EVAL_SEED) -> float:
        """The validation loss (estimate_loss on val_data)."""
        if self.val_data is None:
            raise ValueError("this trainer has no validation data")
        return estimate_loss(self.model, self.val_data, self.config, seed=seed)

    def save_checkpoint(self, path: str | Path) -> Path:
        """The config and the Trainer's whole state in one .npz (module 07's save_state); the path."""
        ### BEGIN SOLUTION
        return save_state(path, {"config": self.config.to_dict(), "trainer": self.trainer.state_dict()})
        ### END SOLUTION

    def load_checkpoint(self, path: str | Path) -> None:
        """Put the state of a checkpoint of this same config into this trainer."""
        ### BEGIN SOLUTION
        state = load_state(path)
        if state["config"] != self.config.to_dict():
            raise ValueError(f"{path} is a checkpoint of {state['config']}, not of this trainer's config "
                             f"{self.config.to_dict()}")
        self.trainer.load_state_dict(state["trainer"])
        ### END SOLUTION

    @classmethod
    def from_checkpoint(cls, path: str | Path, train_data: Any, val_data: Any = None,
                        model: Module | None = None) -> TinyGPTTrainer:
        """A trainer of the checkpoint's config, its state loaded: training continues where it stopped."""
        ### BEGIN SOLUTION
        config = TinyGPTConfig.from_dict(load_state(path)["config"])
        trainer = cls(config, train_data, val_data, model=model)
        trainer.load_checkpoint(path)
        return trainer
        ### END SOLUTION


# %% [markdown]
# ## 7. Measuring the loss: fixed batches, no graph
#
# A training loss is noisy (a new batch every step) and optimistic (the model was just
# pushed towards that batch). The number to watch is the loss on text the model never
# trained on, and to compare two evaluations, or two frameworks, it must be measured on the
# **same** text each time. `estimate_loss(model, data, config, seed=EVAL_SEED)` is the mean
# of `lm_loss` over `config.eval_batches` batches `get_batch(data, config.batch_size,
# config.block_size, seed, i)` for `i = 0, 1, ...`: fixed batches, chosen by the seed.
#
# - Under `no_grad()`: evaluation builds no graph, so it keeps no activations alive for a
#   backward pass that never comes (module 05).
# - In eval mode, with the model's previous mode restored afterwards, even after an error
#   (`try` / `finally`): dropout, if a model has any, must be off while measuring.
# - Any model that maps ids `(B, T)` to logits `(B, T, V)` will do: the float GPT, its
#   accelerated layers, the int8 copy of section 9.
#
# Returns a Python float.

# %% nbgrader={"grade": false, "grade_id": "estimate-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def estimate_loss(model: Module, data: Any, config: TinyGPTConfig, seed: int = EVAL_SEED) -> float:
    """Mean lm_loss over config.eval_batches fixed batches get_batch(data, B, T, seed, i), eval mode, no graph."""
    ### BEGIN SOLUTION
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            losses = []
            for i in range(config.eval_batches):
                inputs, targets = get_batch(data, config.batch_size, config.block_size, seed, i)
                losses.append(float(lm_loss(model(inputs), targets).item()))
    finally:
        model.train(was_training)
    return float(np.mean(losses))
    ### END SOLUTION


# %% [markdown]
# ## 8. Writing text
#
# `generate_text(model, tokenizer, prompt, length, temperature=1.0, top_k=None, seed=None,
# greedy=False)` encodes the prompt, runs module 17's `generate_cached` on it (one sequence:
# `ids[None, :]`) for `length` new tokens, and decodes the **whole** sequence, prompt and
# continuation (decoding all ids at once, so a character whose UTF-8 bytes a byte-level BPE
# split between the prompt and the first new token comes out whole). The sampling
# settings are module 13's: `temperature`, `top_k`, or `greedy=True` for the argmax at every
# step, and the random numbers come from `np.random.default_rng(seed)`: the same seed writes
# the same text. An empty prompt is a `ValueError`: the model needs at least one token to
# start from.
#
# Past `block_size` tokens the cache starts over on the last `block_size` tokens (module
# 17): the text goes on, with a model that sees only the most recent window.

# %% nbgrader={"grade": false, "grade_id": "generate-text", "locked": false, "schema_version": 3, "solution": true, "task": false}
def generate_text(model: Module, tokenizer: Tokenizer, prompt: str, length: int, temperature: float = 1.0,
                  top_k: int | None = None, seed: int | None = None, greedy: bool = False) -> str:
    """The prompt and `length` new tokens after it, through the KV-cache, decoded."""
    ### BEGIN SOLUTION
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("generate_text needs a prompt of at least one token")
    tokens = generate_cached(model, np.array([ids], dtype=np.int64), length, temperature=temperature, top_k=top_k,
                             greedy=greedy, rng=np.random.default_rng(seed))
    return tokenizer.decode(tokens[0])
    ### END SOLUTION


# %% [markdown]
# ## 9. int8, and the report
#
# `quantize_gpt(model, calibration_batches)` is module 15's `quantize`: a copy of the GPT
# with every `Linear` (the attention projections, the MLP, and the output layer) replaced
# by a `QuantizedLinear`, each input range calibrated on the batches of token ids (arrays
# `(B, T)`, or `(inputs, targets)` pairs from `get_batch`). The embeddings and LayerNorms
# stay float. The float model is left as it was: you will want to compare the two. Its
# weights are about 4x smaller; `estimate_loss` and `generate_text` take it like any model.
#
# **The report.** `benchmark_report(trainer, tokenizer, int8_model, prompt=None,
# new_tokens=32, repeats=5, warmup=1, name="tinygpt")` describes the trained model with
# module 19's `make_submission`, so `write_submission(path, report)` writes it and
# `SUBMISSION_SCHEMA` validates it:
#
# - the prompt's ids: `tokenizer.encode(prompt)`, or without a prompt the first
#   `max(1, block_size // 4)` tokens of the validation data;
# - three **measurements** with module 19's `measure(fn, warmup, repeats)`, each one greedy
#   generation of `new_tokens` tokens from the prompt: `"uncached"` (module 13's
#   `model.generate`), `"cached"` (module 17's `generate_cached`), `"int8 cached"`
#   (`generate_cached` of the int8 model); the baseline is `"uncached"`, so the submission's
#   speed-ups are the cache's and int8's;
# - the **metrics**, every one of `REPORT_METRICS`: `parameters` (module 14's
#   `count_parameters`), `float32_weight_bytes` and `int8_weight_bytes` (module 15's
#   `weight_nbytes`) and their ratio `int8_size_ratio` (float over int8), `val_loss` and
#   `int8_val_loss` (`estimate_loss` on the trainer's validation data, `EVAL_SEED`),
#   `tokens_per_second_uncached` / `_cached` / `_int8` (`new_tokens` divided by the median
#   time of each measurement), `greedy_agreement` (the fraction of the `new_tokens` greedy
#   tokens of the int8 model equal to the float model's, position by position),
#   `training_steps` (`trainer.step`) and `new_tokens`.
#
# The model measured is `trainer.model`. `make_submission(name, measurements, metrics,
# baseline="uncached", rng=0)`: a fixed bootstrap seed, so the same timings give the same
# intervals.

# %%
REPORT_MEASUREMENTS = ("uncached", "cached", "int8 cached")
REPORT_METRICS = ("parameters", "float32_weight_bytes", "int8_weight_bytes", "int8_size_ratio", "val_loss",
                  "int8_val_loss", "tokens_per_second_uncached", "tokens_per_second_cached",
                  "tokens_per_second_int8", "greedy_agreement", "training_steps", "new_tokens")


# %% nbgrader={"grade": false, "grade_id": "int8-and-report", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quantize_gpt(model: Module, calibration_batches: Iterable[Any]) -> Module:
    """An int8 copy of the GPT (module 15's quantize): every Linear quantized, inputs calibrated on the batches."""
    ### BEGIN SOLUTION
    return quantize(model, list(calibration_batches))
    ### END SOLUTION


def benchmark_report(trainer: TinyGPTTrainer, tokenizer: Tokenizer, int8_model: Module, prompt: str | None = None,
                     new_tokens: int = 32, repeats: int = 5, warmup: int = 1, name: str = "tinygpt") -> dict[str, Any]:
    """Module 19's submission document: generation timings (uncached, cached, int8 cached) and REPORT_METRICS."""
    ### BEGIN SOLUTION
    model, config = trainer.model, trainer.config
    if trainer.val_data is None:
        raise ValueError("benchmark_report needs a trainer with validation data")
    if prompt is None:
        ids = trainer.val_data[: max(1, config.block_size // 4)]
    else:
        ids = np.array(tokenizer.encode(prompt), dtype=np.int64)
    idx = np.asarray(ids, dtype=np.int64)[None, :]

    def timed(generate: Any) -> Any:
        return measure(generate, warmup=warmup, repeats=repeats)

    measurements = {
        "uncached": timed(lambda: model.generate(idx, new_tokens, greedy=True)),
        "cached": timed(lambda: generate_cached(model, idx, new_tokens, greedy=True)),
        "int8 cached": timed(lambda: generate_cached(int8_model, idx, new_tokens, greedy=True)),
    }
    float_bytes, int8_bytes = weight_nbytes(model), weight_nbytes(int8_model)
    new_float = generate_cached(model, idx, new_tokens, greedy=True)[0, idx.shape[1]:]
    new_int8 = generate_cached(int8_model, idx, new_tokens, greedy=True)[0, idx.shape[1]:]
    metrics = {
        "parameters": count_parameters(model),
        "float32_weight_bytes": float_bytes,
        "int8_weight_bytes": int8_bytes,
        "int8_size_ratio": float_bytes / int8_bytes,
        "val_loss": estimate_loss(model, trainer.val_data, config, seed=EVAL_SEED),
        "int8_val_loss": estimate_loss(int8_model, trainer.val_data, config, seed=EVAL_SEED),
        "tokens_per_second_uncached": new_tokens / measurements["uncached"].median,
        "tokens_per_second_cached": new_tokens / measurements["cached"].median,
        "tokens_per_second_int8": new_tokens / measurements["int8 cached"].median,
        "greedy_agreement": float(np.mean(new_float == new_int8)),
        "training_steps": trainer.step,
        "new_tokens": new_tokens,
    }
    return make_submission(name, measurements, metrics, baseline="uncached", rng=0)
    ### END SOLUTION


# %% [markdown]
# ## Try it: a GPT of the CPython documentation
#
# Every CPython installation carries its own documentation text (`pydoc_data.topics`, about
# 465,000 characters): enough for a character model to learn words, indentation and the
# shape of a Python example. A small GPT, 300 steps, a checkpoint in the middle and a resume
# from it, then samples at two temperatures, the int8 copy, and the report. (Half a minute on
# a laptop core; the TinyGPT milestone does the same on Shakespeare, with a PyTorch twin
# alongside.)

# %%
if __name__ == "__main__":
    import tempfile
    import time

    from pydoc_data.topics import topics

    corpus = "".join(topics[key] for key in sorted(topics))
    tokenizer = Tokenizer.for_characters(corpus)
    train_ids, val_ids = split_tokens(tokenizer.encode(corpus), val_fraction=0.1)
    config = TinyGPTConfig(vocab_size=tokenizer.vocab_size, n_layer=2, n_head=4, n_embd=64, block_size=64,
                           batch_size=16, max_steps=300, lr=3e-3, min_lr=3e-4, warmup_steps=30)
    print(f"{len(corpus):,} characters, {tokenizer.vocab_size} distinct; {len(train_ids):,} to train on")
    trainer = TinyGPTTrainer(config, train_ids, val_ids)
    started = time.perf_counter()
    checkpoint = Path(tempfile.mkdtemp()) / "tinygpt.npz"
    while trainer.step < config.max_steps:
        loss = trainer.train_step()
        if trainer.step % 50 == 0:
            print(f"step {trainer.step:4d}  loss {loss:.3f}  val {trainer.evaluate():.3f}  "
                  f"({time.perf_counter() - started:.0f} s)")
        if trainer.step == config.max_steps // 2:
            trainer.save_checkpoint(checkpoint)
            trainer = TinyGPTTrainer.from_checkpoint(checkpoint, train_ids, val_ids)
            print(f"resumed from {checkpoint.name} at step {trainer.step}")
    for temperature in (0.5, 1.0):
        print(f"--- temperature {temperature}")
        print(generate_text(trainer.model, tokenizer, "The ", 200, temperature=temperature, top_k=20, seed=0))
    calibration = [get_batch(train_ids, config.batch_size, config.block_size, config.seed + 1, i)[0] for i in range(4)]
    int8_model = quantize_gpt(trainer.model, calibration)
    report = benchmark_report(trainer, tokenizer, int8_model, new_tokens=48, repeats=3)
    print(json.dumps(report["metrics"], indent=1))

# %% [markdown]
# ## Systems insight: where a training step's memory goes
#
# Count the numbers a training step keeps alive for a GPT of `P` parameters, in float32:
# the weights (`4P` bytes), their gradients (`4P`), and AdamW's two moments (`8P`): `16P`
# bytes whatever the batch, the "4x the weights" of module 06. Then the **activations**
# that backward needs: every block keeps its inputs, its attention weights `(B, H, T, T)`
# and its MLP's `(B, T, 4d)` hidden layer, so they grow with the batch, and with the square
# of the context. For the model above (`P` about 110,000, `B = 16`, `T = 64`, `d = 64`, 4
# heads, 2 layers) the activations already outweigh everything else; for the milestone's
# default model (`P` about 800,000, `B = 32`, `T = 64`) likewise. This is why long contexts
# are expensive to *train* (the `T^2` of the attention weights, which FlashAttention avoids
# storing), and why a checkpoint is small: it holds the `16P` bytes, never the activations,
# which the next step recomputes. The cell measures it: the bytes of every Tensor the
# backward pass of one step can reach.

# %%
if __name__ == "__main__":
    def graph_bytes(loss: Tensor) -> int:
        """Bytes of every array the graph behind `loss` holds (each once)."""
        seen, stack, total = set(), [loss], 0
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.data.nbytes
            node = getattr(tensor, "_grad_fn", None)
            for value in vars(node).values() if node is not None else ():
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(item, Tensor):
                        stack.append(item)
        return total

    parameters = count_parameters(trainer.model)
    batch = get_batch(train_ids, config.batch_size, config.block_size, 0, 0)
    activation_bytes = graph_bytes(lm_loss(trainer.model(batch[0]), batch[1])) - 4 * parameters
    print(f"parameters {parameters:,}: weights + gradients + AdamW moments = {16 * parameters / 1e6:.1f} MB; "
          f"activations of one batch ({config.batch_size} x {config.block_size}): {activation_bytes / 1e6:.1f} MB")

# %% [markdown]
# ## Checkpoint
#
# `tito check 20` runs `tests/checkpoints/test_20_capstone.py`. It checks the tokenizer
# (character round trips; a BPE loaded with `from_vocab` from a module-10 vocabulary in each
# merge format encodes like a `tiktoken.Encoding` of the same ranks; mismatched files are
# refused; `encode_iterable` gives tiktoken's ids for text cut at every position, as text and
# as bytes that split characters, lazily); `split_tokens` and `get_batch` against the
# recipe, and that a batch depends only on `(seed, step)`; the config's round trip; the
# parameter names of `build_model`; `lr_at` against the closed form; `lm_loss` against
# PyTorch's cross-entropy and its gradient; your training steps against a PyTorch model of
# the same weights trained with `torch.optim.AdamW` in two groups, `clip_grad_norm_` and the
# same batches and learning rates; a resume from a checkpoint that must be bit-identical;
# `estimate_loss` against PyTorch; a tiny model that must reach a target validation loss on
# a tiny corpus in a few seconds; greedy generation against PyTorch's, also past
# `block_size`, and decoded whole (a model made to write a character's UTF-8 bytes one token
# at a time); the int8 model's size, loss and greedy tokens beside the float model's; and
# the report, validated with `jsonschema` against module 19's `SUBMISSION_SCHEMA`, with
# its numbers checked against the models it measured.
