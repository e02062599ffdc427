"""Checkpoint 20: TinyGPT end to end.

Oracles, strongest first:

- PyTorch in float64, written out below: the same GPT (module 13's architecture, the test's own
  weights copied in by name), `F.cross_entropy`, and `torch.optim.AdamW` with two parameter
  groups (decay on matrices only), `clip_grad_norm_`, the lesson's batches and learning rates.
  Your training steps, your validation loss and your greedy tokens are compared with it.
- tiktoken: an `Encoding` built from the same ranks gives the ids every BPE tokenizer here must
  give, however its text arrives.
- The lesson's recipes, computed here with numpy: the split rule, the batch of `(seed, step)`,
  the warm-up + cosine schedule, the parameter names and sizes, the bytes of int8 weights.
- Module 19's `SUBMISSION_SCHEMA`, validated with jsonschema on the trusted side.
- Relations between your own values where a run has no single right answer: a resume must be
  bit-identical to the run it interrupted, a trained model must reach the target loss, the int8
  model must stay close to the float one it came from.

Tolerances. A training step in float32 against float64: the losses of the first steps agree to
about 1e-7 relative; we allow 1e-5. The updates of the weights agree to about 1e-4 of their
size, except one parameter: the bias of the key projection, whose exact gradient is zero
(softmax does not change when every key moves by the same vector), so Adam turns rounding noise
into steps of size lr in either framework. It changes no output, and it is left out of the
comparison. Every update is compared within 2e-3 * lr.

Every weight comes from this file's seeded generators (`given_weights`), loaded by name, so no
check depends on how a model draws its initial numbers; the tiny training run, whose end point
depends on your float32 arithmetic, is judged by predicates only.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib

import numpy as np
import tiktoken
import torch
import torch.nn.functional as F

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
from tests.checkpoints.common import ranks_of, same_pair, valid_submission
from tinytorch.benchmarking import SUBMISSION_SCHEMA
from tinytorch.capstone import (
    EVAL_SEED,
    REPORT_MEASUREMENTS,
    REPORT_METRICS,
    AdamWGroups,
    TinyGPTConfig,
    TinyGPTTrainer,
    Tokenizer,
    benchmark_report,
    build_model,
    estimate_loss,
    generate_text,
    get_batch,
    lm_loss,
    lr_at,
    param_groups,
    quantize_gpt,
    split_tokens,
)
from tinytorch.layers import Linear
from tinytorch.memoization import generate_cached
from tinytorch.quantization import quantize, weight_nbytes
from tinytorch.tensor import Tensor
from tinytorch.tokenization import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, CharTokenizer, train_merges

torch.set_num_threads(1)  # tiny tensors: the thread pool only costs time

LOSS_RTOL = 1e-5          # a float32 loss against float64
UPDATE_ATOL = 2e-3        # times lr: a float32 AdamW update against float64
NOISE_DRIVEN = ".attn.k_proj.bias"  # zero exact gradient: Adam steps on rounding noise

CORPUS = "the cat sat. a dog ran. my bird sang. " * 40
TARGET_VAL_LOSS = 0.5     # nats per character, from ln(17) = 2.83 at the start
TINY = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, batch_size=16, max_steps=120, lr=1e-2, min_lr=1e-3,
            warmup_steps=10, weight_decay=0.1, grad_clip=1.0, eval_interval=40, eval_batches=4, seed=0)

BPE_TEXT = ("Tokenizers turn text into ids. The tokenizer's merges learn the frequent pairs: th, he, the, "
            "and then ' the'. They'll also see café, naïve, 日本語 and 🙂🙂, and numbers like 12345 or 2024. "
            "    Indented code: print('hi')  \n\n  \n\tdef tokenize(text): return text.split()\n") * 3
STREAM_TEXT = "They'll say: the  cat's café\n  \n  \n 日本語 🙂 x=12345 2024;\r\n\tend  "
# trained on BPE_TEXT and STREAM_TEXT * 6 up to 600 tokens: every chunk of STREAM_TEXT becomes a token of its
# own, so a chunk cut in the wrong place shows in the ids (training stops early, at about 550 tokens)
BPE_VOCAB = 600

TRAJECTORY = "6 training steps against torch.optim.AdamW with two groups, clip_grad_norm_ and the lesson's batches"
STEP_HINT = ("each step: inputs, targets = get_batch(train_data, batch_size, block_size, seed, step); logits; "
             "lm_loss; zero_grad; backward; clip_grad_norm(parameters, grad_clip); AdamW step with lr_at(config, step) "
             "(weight decay for ndim >= 2 only); the schedule advances")


# -- the test's own inputs --------------------------------------------------------------------------

def config_of(**overrides) -> TinyGPTConfig:
    settings = dict(vocab_size=13, n_layer=2, n_head=2, n_embd=16, block_size=8, batch_size=4, max_steps=10,
                    lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.1, grad_clip=0.5, eval_interval=5,
                    eval_batches=3, seed=3)
    settings.update(overrides)
    return TinyGPTConfig(**settings)


def parameter_shapes(c: TinyGPTConfig) -> dict[str, tuple[int, ...]]:
    """Module 13's names, in named_parameters order, and PyTorch's (out, in) shapes; lm_head is wte."""
    d = c.n_embd
    shapes = {"wte.weight": (c.vocab_size, d), "wpe.weight": (c.block_size, d)}
    for i in range(c.n_layer):
        b = f"blocks.{i}."
        shapes |= {b + "ln_1.weight": (d,), b + "ln_1.bias": (d,)}
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes |= {f"{b}attn.{proj}.weight": (d, d), f"{b}attn.{proj}.bias": (d,)}
        shapes |= {b + "ln_2.weight": (d,), b + "ln_2.bias": (d,), b + "mlp.fc.weight": (4 * d, d),
                   b + "mlp.fc.bias": (4 * d,), b + "mlp.proj.weight": (d, 4 * d), b + "mlp.proj.bias": (d,)}
    return shapes | {"ln_f.weight": (d,), "ln_f.bias": (d,)}


def given_weights(c: TinyGPTConfig, seed: int) -> dict[str, np.ndarray]:
    """float32 weights of every parameter, each drawn from its name (order-independent)."""
    weights = {}
    for name, shape in parameter_shapes(c).items():
        draw = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if len(shape) == 2:
            value = draw.standard_normal(shape) * 0.3
        elif name.endswith("bias"):
            value = 0.1 * draw.standard_normal(shape)
        else:
            value = 1.0 + 0.1 * draw.standard_normal(shape)
        weights[name] = value.astype(np.float32)
    return weights


def perturbed(weights: dict[str, np.ndarray], seed: int, scale: float) -> dict[str, np.ndarray]:
    """The weights plus scale * N(0, 1) noise: a model that agrees with the original only in part."""
    return {name: (w + scale * np.random.default_rng([seed, i]).standard_normal(w.shape)).astype(np.float32)
            for i, (name, w) in enumerate(weights.items())}


def gpt_with(c: TinyGPTConfig, weights: dict[str, np.ndarray]):
    """build_model(c) holding the given weights (loaded by name: module 03's load_state_dict)."""
    model = build_model(c)
    model.load_state_dict(weights)
    return model


def token_data(n: int, vocab: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, size=n).astype(np.int64)


def corpus_ids(text: str) -> list[int]:
    chars = sorted(set(CORPUS))
    return [chars.index(ch) for ch in text]


class GivenTokenizer:
    """A module-10 tokenizer (the reference, in grading) behind the interface generate_text and
    benchmark_report use: encode (BPE: encode_ordinary) and decode, none of your Tokenizer's code."""

    def __init__(self, codec) -> None:
        self.codec = codec
        self.vocab_size = codec.vocab_size

    def encode(self, text: str) -> list[int]:
        return getattr(self.codec, "encode_ordinary", self.codec.encode)(text)

    def decode(self, ids) -> str:
        return self.codec.decode(ids)


def corpus_tokenizer() -> GivenTokenizer:
    return GivenTokenizer(CharTokenizer(CORPUS))


def trained_bpe(pattern: str) -> BPETokenizer:
    """Module 10's tokenizer, trained on BPE_TEXT: a vocabulary someone gave you."""
    tokenizer = BPETokenizer(pattern)
    tokenizer.train(BPE_TEXT + STREAM_TEXT * 6, BPE_VOCAB)
    return tokenizer


# -- the recipes and oracles ----------------------------------------------------------------------------

def recipe_batch(data, batch_size, block_size, seed, step) -> tuple[np.ndarray, np.ndarray]:
    starts = np.random.default_rng([seed, step]).integers(0, len(data) - block_size, size=batch_size)
    data = np.asarray(data)
    inputs = np.stack([data[s:s + block_size] for s in starts])
    targets = np.stack([data[s + 1:s + block_size + 1] for s in starts])
    return inputs.astype(np.int64), targets.astype(np.int64)


def closed_form_lr(c: TinyGPTConfig, step: int) -> float:
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    progress = min(1.0, (step - c.warmup_steps) / (c.max_steps - c.warmup_steps))
    return c.min_lr + (c.lr - c.min_lr) * (1 + math.cos(math.pi * progress)) / 2


def tiktoken_ids(pattern: str, merges: dict[tuple[int, int], int], text: str) -> list[int]:
    encoding = tiktoken.Encoding(name="oracle", pat_str=pattern, mergeable_ranks=ranks_of(merges), special_tokens={})
    return encoding.encode_ordinary(text)


def torch_logits(p: dict, idx: np.ndarray, c: TinyGPTConfig) -> torch.Tensor:
    """Module 13's GPT in torch: learned positions, pre-norm blocks, tanh GELU, output tied to wte."""
    idx = torch.as_tensor(np.asarray(idx))
    x = p["wte.weight"][idx] + p["wpe.weight"][: idx.shape[1]]
    batch, steps, d = x.shape
    for i in range(c.n_layer):
        b = f"blocks.{i}."
        h = F.layer_norm(x, (d,), p[b + "ln_1.weight"], p[b + "ln_1.bias"], 1e-5)
        q, k, v = (F.linear(h, p[f"{b}attn.{n}.weight"], p[f"{b}attn.{n}.bias"])
                   .view(batch, steps, c.n_head, d // c.n_head).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, steps, d)
        x = x + F.linear(y, p[b + "attn.out_proj.weight"], p[b + "attn.out_proj.bias"])
        h = F.layer_norm(x, (d,), p[b + "ln_2.weight"], p[b + "ln_2.bias"], 1e-5)
        h = F.gelu(F.linear(h, p[b + "mlp.fc.weight"], p[b + "mlp.fc.bias"]), approximate="tanh")
        x = x + F.linear(h, p[b + "mlp.proj.weight"], p[b + "mlp.proj.bias"])
    return F.layer_norm(x, (d,), p["ln_f.weight"], p["ln_f.bias"], 1e-5) @ p["wte.weight"].T


def torch_params(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(w, dtype=torch.float64, requires_grad=True) for name, w in weights.items()}


def torch_loss(p: dict, inputs: np.ndarray, targets: np.ndarray, c: TinyGPTConfig) -> torch.Tensor:
    logits = torch_logits(p, inputs, c)
    return F.cross_entropy(logits.reshape(-1, c.vocab_size), torch.as_tensor(targets).reshape(-1))


def torch_training(weights, c: TinyGPTConfig, data, steps: int) -> tuple[list[float], dict[str, np.ndarray]]:
    """The losses of `steps` AdamW steps and the weights after them, as the milestone's twin trains."""
    p = torch_params(weights)
    optimizer = torch.optim.AdamW([{"params": [t for t in p.values() if t.ndim >= 2], "weight_decay": c.weight_decay},
                                   {"params": [t for t in p.values() if t.ndim < 2], "weight_decay": 0.0}], lr=c.lr)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = closed_form_lr(c, step)
        loss = torch_loss(p, *recipe_batch(data, c.batch_size, c.block_size, c.seed, step), c)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(p.values()), c.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return losses, {name: t.detach().numpy() for name, t in p.items()}


def torch_updates(weights, c: TinyGPTConfig, data, steps: int) -> np.ndarray:
    """final - initial weights of the torch run, for every compared parameter, as one vector."""
    final = torch_training(weights, c, data, steps)[1]
    return flat({name: final[name] - weights[name] for name in compared(weights)}, compared(weights))


def torch_estimate(weights, data, c: TinyGPTConfig, seed: int) -> float:
    p = torch_params(weights)
    with torch.no_grad():
        return float(np.mean([torch_loss(p, *recipe_batch(data, c.batch_size, c.block_size, seed, i), c).item()
                              for i in range(c.eval_batches)]))


def torch_greedy(weights, prompt: list[int], steps: int, c: TinyGPTConfig) -> list[int]:
    """Greedy tokens, the context cropped to the last block_size tokens."""
    p = torch_params(weights)
    tokens = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = torch_logits(p, np.array([tokens[-c.block_size:]]), c)[0, -1]
            tokens.append(int(torch.argmax(logits)))
    return tokens


def numpy_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    z = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1])
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(z)), np.asarray(targets).reshape(-1)].mean())


def compared(weights) -> list[str]:
    """The names whose updates are compared: all but the noise-driven ones."""
    return [name for name in weights if not name.endswith(NOISE_DRIVEN)]


def flat(arrays: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """The named arrays, flattened and joined in the order of `names`: one vector to compare."""
    return np.concatenate([np.ravel(arrays[name]) for name in names])


def updates_of(model, weights) -> np.ndarray:
    """Your final - initial weights, for every compared parameter, as one vector."""
    params = dict(model.named_parameters())
    return flat({name: params[name].data.astype(np.float64) - weights[name] for name in compared(weights)},
                compared(weights))


def state_of(model) -> dict[str, np.ndarray]:
    return {name: p.data.copy() for name, p in model.named_parameters()}


# -- predicates (judged on the trusted side, over your recorded values) ---------------------------------

def at_most(value, limit) -> bool:
    return float(value) <= limit


def within_of_each_other(pair, tolerance) -> bool:
    return abs(float(pair[0]) - float(pair[1])) <= tolerance


def at_least_equal(pair, count) -> bool:
    """At least `count` positions of the two token lists agree."""
    first, second = (np.asarray(x) for x in pair)
    return first.shape == second.shape and int(np.sum(first == second)) >= count


def differ(pair) -> bool:
    first, second = pair
    return not same_pair((first, second))


def rates_follow_the_medians(document, new_tokens) -> bool:
    """tokens_per_second_* = new_tokens / the median seconds of the matching measurement."""
    medians = {key: entry["median"] for key, entry in document["measurements"].items()}
    pairs = (("tokens_per_second_uncached", "uncached"), ("tokens_per_second_cached", "cached"),
             ("tokens_per_second_int8", "int8 cached"))
    return all(math.isclose(document["metrics"][rate], new_tokens / medians[key], rel_tol=1e-9) for rate, key in pairs)


# -- 1. the tokenizer ------------------------------------------------------------------------------------

def test_character_tokenizer_round_trip():
    """Tokenizer.for_characters: the sorted characters, their ids, and decode(encode(text)) == text"""
    tokenizer = Tokenizer.for_characters(CORPUS)
    expect_equal([tokenizer.kind, tokenizer.vocab_size, tokenizer.vocab], ["char", 17, sorted(set(CORPUS))],
                 call="Tokenizer.for_characters(corpus): kind, vocab_size, vocab",
                 hint="module 10's CharTokenizer(text): the sorted distinct characters, id = position")
    expect_equal(tokenizer.encode("the dog."), corpus_ids("the dog."), call="tokenizer.encode('the dog.')",
                 hint="the codec's encode")
    expect_equal(tokenizer.decode(np.array(corpus_ids(CORPUS[:60]))), CORPUS[:60],
                 call="tokenizer.decode(np.array(ids))", hint="the codec's decode takes a list, an array or a Tensor")
    expect_raises(ValueError, lambda: tokenizer.encode("the cow!"), call="tokenizer.encode('the cow!')",
                  hint="a character outside the vocabulary has no id (module 10)")


def test_from_vocab_loads_a_character_vocabulary():
    """from_vocab(characters) gives CharTokenizer's ids; a vocabulary out of order or with repeats is refused"""
    chars = sorted(set(CORPUS))
    for vocab in (chars, "".join(chars)):
        tokenizer = Tokenizer.from_vocab(vocab, None)
        expect_equal([tokenizer.kind, tokenizer.encode("a cat.")], ["char", corpus_ids("a cat.")],
                     call=f"Tokenizer.from_vocab({type(vocab).__name__} of {len(vocab)} characters, None)",
                     hint="no merges: a character vocabulary, id = position (CharTokenizer(''.join(vocab)))")
    expect_equal(Tokenizer.from_vocab(chars, []).decode(corpus_ids("dog")), "dog", call="Tokenizer.from_vocab(chars, []).decode",
                 hint="an empty list of merges is no merges")
    expect_raises(ValueError, lambda: Tokenizer.from_vocab(list(reversed(chars)), None),
                  call="Tokenizer.from_vocab(characters in reverse order, None)",
                  hint="in any other order than CharTokenizer's the ids would change meaning")
    expect_raises(ValueError, lambda: Tokenizer.from_vocab(["a", "b", "b", "c"], None),
                  call="Tokenizer.from_vocab(['a', 'b', 'b', 'c'], None)", hint="each character once")


def test_from_vocab_loads_a_bpe_in_every_merge_format():
    """from_vocab(vocab, merges) encodes like tiktoken, merges given as a dict, as triples or as pairs"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    sample = "The tokenizer's café: 日本語 🙂 x = 12345;\n\n    print('hi')"
    formats = {"dict": trained.merges, "triples": [[l, r, i] for (l, r), i in trained.merges.items()],
               "pairs": [(l, r) for (l, r) in trained.merges]}
    for form, merges in formats.items():
        for vocab in (trained.vocab, None):
            tokenizer = Tokenizer.from_vocab(vocab, merges)
            ids = tokenizer.encode(sample)
            expect_equal([tokenizer.kind, tokenizer.vocab_size, ids],
                         ["bpe", len(trained.vocab), tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, sample)],
                         call=f"Tokenizer.from_vocab({'vocab' if vocab else 'None'}, merges as {form}).encode(sample)",
                         hint="BPETokenizer(pattern); its merges = the merges as {(left, right): id}; _rebuild(); "
                              "encode is encode_ordinary. Pairs get ids 256, 257, ... in order")
            expect_equal(tokenizer.decode(ids), sample, call=f"from_vocab(..., {form}).decode(encode(sample))",
                         hint="the codec's decode")
    learned = Tokenizer.train_bpe(BPE_TEXT, 300)
    expect_equal([learned.kind, learned.merges], ["bpe", train_merges(BPE_TEXT, 300, GPT4_SPLIT_PATTERN)],
                 call="Tokenizer.train_bpe(text, 300): kind, merges",
                 hint="BPETokenizer(pattern).train(text, vocab_size): vocab_size counts every token, not the merges")


def test_from_vocab_refuses_files_that_do_not_belong_together():
    """a vocabulary that contradicts the merges is refused; an extra id is a special token"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    contradicting = dict(trained.vocab)
    contradicting[260] = b"zz"
    expect_raises(ValueError, lambda: Tokenizer.from_vocab(contradicting, trained.merges),
                  call="Tokenizer.from_vocab(vocab with vocab[260] changed, merges)",
                  hint="every id the merges make must be in the vocabulary with the same bytes")
    short = {i: token for i, token in trained.vocab.items() if i < 280}
    expect_raises(ValueError, lambda: Tokenizer.from_vocab(short, trained.merges),
                  call="Tokenizer.from_vocab(vocab without the ids from 280 on, merges)",
                  hint="the merges make ids the vocabulary does not have")
    special = len(trained.vocab)
    tokenizer = Tokenizer.from_vocab({**trained.vocab, special: b"<|endoftext|>"}, trained.merges)
    expect_equal([tokenizer.vocab_size, tokenizer.decode([special, 104, 105]), tokenizer.encode("<|endoftext|>")],
                 [special + 1, "<|endoftext|>hi", tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, "<|endoftext|>")],
                 call=f"Tokenizer.from_vocab({{**vocab, {special}: b'<|endoftext|>'}}, merges): vocab_size, decode, encode",
                 hint="an id the merges do not make is a special token (register_special_tokens); encode treats "
                      "its text as ordinary text (encode_ordinary), decode knows its id")


def test_encode_iterable_wherever_the_text_is_cut():
    """encode_iterable gives tiktoken's ids of the whole text, cut at every position, for GPT-4's and GPT-2's patterns"""
    for pattern, name in ((GPT4_SPLIT_PATTERN, "GPT-4"), (GPT2_SPLIT_PATTERN, "GPT-2")):
        trained = trained_bpe(pattern)
        tokenizer = Tokenizer.from_vocab(trained.vocab, trained.merges, pattern=pattern)
        streams = [[STREAM_TEXT[:i], STREAM_TEXT[i:]] for i in range(len(STREAM_TEXT) + 1)]
        streams += [list(STREAM_TEXT), [STREAM_TEXT[i:i + 3] for i in range(0, len(STREAM_TEXT), 3)]]
        got = [list(tokenizer.encode_iterable(iter(pieces))) for pieces in streams]
        expect_equal(got, [tiktoken_ids(pattern, trained.merges, STREAM_TEXT)] * len(streams),
                     call=f"list(tokenizer.encode_iterable(pieces)) for {len(streams)} ways to cut {STREAM_TEXT!r} "
                          f"({name} pattern)",
                     hint="keep the last two chunks that contain a non-space character (and what follows them) "
                          "until more text arrives: '  \\n  ' + '\\n' is one chunk, \"'l\" + 'l' is one chunk")


def test_encode_iterable_of_bytes_that_cut_characters():
    """encode_iterable takes bytes pieces that cut UTF-8 characters in half, for BPE and characters"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    bpe = Tokenizer.from_vocab(trained.vocab, trained.merges)
    data = STREAM_TEXT.encode("utf-8")
    pieces = [[data[:i], data[i:]] for i in range(len(data) + 1)] + [[data[i:i + 1] for i in range(len(data))]]
    expect_equal([list(bpe.encode_iterable(p)) for p in pieces],
                 [tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, STREAM_TEXT)] * len(pieces),
                 call="list(bpe.encode_iterable([bytes[:i], bytes[i:]])) for every byte position i, and byte by byte",
                 hint="codecs.getincrementaldecoder('utf-8')(): decode(piece) keeps an incomplete character for "
                      "the next piece; decode(b'', final=True) at the end")
    expect_raises(ValueError, lambda: list(bpe.encode_iterable([b"caf", "\u00e9".encode("utf-8")[:1]])),
                  call="list(bpe.encode_iterable([b'caf', the first byte of 'é']))",
                  hint="decode(b'', final=True) at the end refuses a character cut short (UnicodeDecodeError)")
    chars = Tokenizer.for_characters(STREAM_TEXT)
    expect_equal([list(chars.encode_iterable(p)) for p in pieces], [chars.encode(STREAM_TEXT)] * len(pieces),
                 call="list(Tokenizer.for_characters(text).encode_iterable(bytes pieces))",
                 hint="characters too: decode the bytes incrementally, then one id per character")


class ReadTooFar(Exception):
    """Raised by a stream that was read further than the ids asked for need."""


def limited_stream(pieces: list[str], limit: int):
    for count, piece in enumerate(itertools.cycle(pieces)):
        if count == limit:
            raise ReadTooFar(f"the stream was read past piece {limit}")
        yield piece


def test_encode_iterable_is_lazy():
    """encode_iterable yields ids as the text arrives: the first ids come before the stream ends"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    bpe = Tokenizer.from_vocab(trained.vocab, trained.merges)
    pieces = ["the cat ", "sat on ", "the mat. "]
    expect_equal(list(itertools.islice(bpe.encode_iterable(limited_stream(pieces, 60)), 25)),
                 tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, "".join(pieces) * 20)[:25],
                 call="the first 25 ids of bpe.encode_iterable(a stream that fails after 60 pieces)",
                 hint="a generator: yield each final chunk's ids as soon as it is final, never read everything first")
    chars = Tokenizer.for_characters(CORPUS)
    expect_equal(list(itertools.islice(chars.encode_iterable(limited_stream(pieces, 5)), 20)),
                 corpus_ids(("".join(pieces) * 2)[:20]),
                 call="the first 20 ids of chars.encode_iterable(a stream that fails after 5 pieces)",
                 hint="a character's id is final at once: yield it")


# -- 2. the data -------------------------------------------------------------------------------------------

def test_split_tokens_keeps_the_last_fraction_for_validation():
    """split_tokens: train = the first int(n * (1 - val_fraction)) tokens, validation = the rest"""
    train, val = split_tokens(np.arange(1005), 0.1)
    expect_equal([train, val], [np.arange(904), np.arange(904, 1005)], call="split_tokens(np.arange(1005), 0.1)",
                 hint="int(1005 * 0.9) = 904 tokens to train on; the last 101 validate")
    train, val = split_tokens(list(range(40)), val_fraction=0.25)
    expect_equal([train.dtype, val.dtype, val], [np.dtype(np.int64)] * 2 + [np.arange(30, 40)],
                 call="split_tokens(list(range(40)), val_fraction=0.25)", hint="int64 numpy arrays")
    expect_raises(ValueError, lambda: split_tokens(np.arange(10), 0.0), call="split_tokens(x, 0.0)",
                  hint="the fraction lies strictly between 0 and 1")
    expect_raises(ValueError, lambda: split_tokens(np.arange(10), 1.0), call="split_tokens(x, 1.0)",
                  hint="the fraction lies strictly between 0 and 1")


def test_get_batch_follows_the_recipe():
    """get_batch is the lesson's recipe: windows at default_rng([seed, step]).integers(0, n - T, B), targets shifted"""
    data = token_data(300, 50, 1)
    for seed, step, batch_size, block_size in ((0, 0, 4, 8), (3, 17, 5, 16), (7, 1234, 2, 1)):
        batch = get_batch(data, batch_size, block_size, seed, step)
        expect_equal([batch, [a.dtype for a in batch]], [recipe_batch(data, batch_size, block_size, seed, step),
                                                         [np.dtype(np.int64)] * 2],
                     call=f"get_batch(data of 300 tokens, batch_size={batch_size}, block_size={block_size}, "
                          f"seed={seed}, step={step})",
                     hint="generator = np.random.default_rng([seed, step]); starts = generator.integers(0, len(data) - "
                          "block_size, size=batch_size); inputs = data[starts[:, None] + np.arange(block_size)], "
                          "targets one further; int64")
    expect_equal(get_batch(np.arange(9) * 2, 3, 8, 0, 5), (np.tile(np.arange(8) * 2, (3, 1)),
                                                          np.tile(np.arange(1, 9) * 2, (3, 1))),
                 call="get_batch(9 tokens, batch_size=3, block_size=8, seed=0, step=5)",
                 hint="one window fits: start 0, and the last target is the last token")
    expect_raises(ValueError, lambda: get_batch(np.arange(8), 2, 8, 0, 0), call="get_batch(8 tokens, 2, block_size=8, ...)",
                  hint="a window of block_size tokens needs one more token for its last target")


def test_get_batch_depends_on_seed_and_step_only():
    """the batch of (seed, step) is the same whenever it is asked for, and another step gives another batch"""
    data = token_data(500, 20, 2)
    first = get_batch(data, 4, 8, 1, 5)
    for step in range(5):
        get_batch(data, 4, 8, 1, step)
    np.random.seed(0)
    again = get_batch(data, 4, 8, 1, 5)
    expect_that((first, again), same_pair, call="get_batch(data, 4, 8, seed=1, step=5) before and after other calls",
                expected="the same batch", hint="a generator made from [seed, step] inside the call, nothing global")
    expect_that((first, get_batch(data, 4, 8, 1, 6)), differ, call="get_batch(..., step=5) and get_batch(..., step=6)",
                expected="different batches", hint="the step is part of the generator's seed")


# -- 3. configuration and model ------------------------------------------------------------------------------

def test_config_round_trip():
    """TinyGPTConfig: to_dict (plain, in field order), from_dict back, unknown keys refused, module 13's GPTConfig"""
    config = config_of(n_layer=3, lr=0.002)
    values = config.to_dict()
    expect_equal(json.loads(json.dumps(values)), {
        "vocab_size": 13, "n_layer": 3, "n_head": 2, "n_embd": 16, "block_size": 8, "batch_size": 4, "max_steps": 10,
        "lr": 0.002, "min_lr": 0.001, "warmup_steps": 2, "weight_decay": 0.1, "grad_clip": 0.5, "eval_interval": 5,
        "eval_batches": 3, "seed": 3}, call="json.loads(json.dumps(config.to_dict()))",
        hint="dataclasses.asdict(self): every field")
    expect_equal(list(values), [name for name in TinyGPTConfig.__dataclass_fields__],
                 call="list(config.to_dict())", hint="the fields in their order")
    expect_equal(TinyGPTConfig.from_dict(values).to_dict(), values, call="TinyGPTConfig.from_dict(d).to_dict()",
                 hint="cls(**d)")
    expect_raises(ValueError, lambda: TinyGPTConfig.from_dict({**values, "n_layers": 4}),
                  call="TinyGPTConfig.from_dict({..., 'n_layers': 4})", hint="a key that is not a field: ValueError")
    gpt = config.gpt_config()
    expect_equal([gpt.vocab_size, gpt.block_size, gpt.n_layer, gpt.n_head, gpt.n_embd, gpt.dropout, gpt.bias, gpt.norm,
                  gpt.mlp, gpt.position, gpt.tie_weights],
                 [13, 8, 3, 2, 16, 0.0, True, "layernorm", "gelu", "learned", True], call="config.gpt_config()",
                 hint="GPT-2's architecture: learned positions, LayerNorm, GELU, biases, tied output layer, no dropout")


def test_build_model_names_and_shapes():
    """build_model: module 13's GPT with PyTorch's names and (out, in) shapes, the output layer tied to wte"""
    config = config_of()
    model = build_model(config)
    expect_equal([(name, p.shape) for name, p in model.named_parameters()], list(parameter_shapes(config).items()),
                 call="[(name, p.shape) for name, p in build_model(config).named_parameters()]",
                 hint="GPT(config.gpt_config()): wte, wpe, blocks.i.{ln_1, attn.{q,k,v,out}_proj, ln_2, mlp.fc, "
                      "mlp.proj}, ln_f; lm_head.weight is wte.weight, listed once")
    model.wte.weight.data[...] = 0.25
    expect_close(model.lm_head.weight.data, np.full((13, 16), 0.25), call="lm_head.weight after wte.weight.data[...] = 0.25",
                 hint="weight tying: one Tensor, two uses", rtol=0, atol=0)


def test_build_model_is_seeded():
    """the same config gives the same weights every time; another seed gives others"""
    config = config_of()
    expect_that((state_of(build_model(config)), state_of(build_model(config))), same_pair,
                call="build_model(config) twice", expected="identical weights",
                hint="manual_seed(config.seed) right before GPT(...)")
    expect_that((state_of(build_model(config)), state_of(build_model(config_of(seed=4)))), differ,
                call="build_model(config) and build_model(config with seed=4)", expected="different weights",
                hint="the seed comes from config.seed")


# -- 4. schedule, loss, optimizer -------------------------------------------------------------------------------

def test_lr_at_warm_up_then_cosine():
    """lr_at(config, step): linear warm-up over warmup_steps, cosine decay to min_lr at max_steps, then min_lr"""
    config = config_of(lr=0.1, min_lr=0.01, warmup_steps=4, max_steps=20)
    steps = [0, 1, 3, 4, 8, 12, 16, 19, 20, 25]
    expect_close([lr_at(config, s) for s in steps], [closed_form_lr(config, s) for s in steps],
                 call=f"[lr_at(config(lr=0.1, min_lr=0.01, warmup_steps=4, max_steps=20), s) for s in {steps}]",
                 hint="module 07's CosineWarmupSchedule(optimizer, base_lr=lr, warmup_steps, total_steps=max_steps, "
                      "min_lr).lr_at(step): lr * (s + 1) / W while warming up", rtol=1e-12, atol=0)
    no_warmup = config_of(lr=0.05, min_lr=0.0, warmup_steps=0, max_steps=8)
    expect_close([lr_at(no_warmup, s) for s in range(9)], [closed_form_lr(no_warmup, s) for s in range(9)],
                 call="[lr_at(config(lr=0.05, min_lr=0, warmup_steps=0, max_steps=8), s) for s in range(9)]",
                 hint="no warm-up: the cosine starts at step 0", rtol=1e-12, atol=1e-15)


def test_lm_loss_matches_torch():
    """lm_loss: the mean cross-entropy over every position of (B, T, V) logits, value and gradient"""
    rng = np.random.default_rng(21)
    logits = rng.standard_normal((2, 5, 7)) * 2
    targets = rng.integers(0, 7, size=(2, 5))
    x = Tensor(logits.copy(), requires_grad=True)
    loss = lm_loss(x, targets)
    loss.backward()
    reference = torch.tensor(logits, requires_grad=True)
    torch_value = F.cross_entropy(reference.reshape(-1, 7), torch.tensor(targets).reshape(-1))
    torch_value.backward()
    expect_close(loss.item(), torch_value.item(), call="lm_loss(logits (2, 5, 7), targets (2, 5))",
                 hint="CrossEntropyLoss()(logits.reshape(B * T, V), targets.reshape(B * T)): every position once",
                 rtol=1e-10, atol=1e-12)
    expect_close(x.grad, reference.grad.numpy(), call="lm_loss(...).backward(): logits.grad",
                 hint="built from module 04's loss and module 01's reshape, the gradient comes for free",
                 rtol=1e-9, atol=1e-12)
    expect_close(lm_loss(Tensor(logits), Tensor(targets)).item(), torch_value.item(),
                 call="lm_loss(logits, Tensor(targets))", hint="targets may be a Tensor too", rtol=1e-10, atol=1e-12)


def test_adamw_groups_decay_the_matrices_only():
    """param_groups and AdamWGroups: AdamW steps equal torch.optim.AdamW with a decay group and a no-decay group"""
    config = config_of(n_layer=1)
    weights = given_weights(config, 8)
    model = gpt_with(config, weights)
    decay, no_decay = param_groups(model)
    expect_equal([[p.shape for p in decay], [p.shape for p in no_decay]],
                 [[s for s in parameter_shapes(config).values() if len(s) >= 2],
                  [s for s in parameter_shapes(config).values() if len(s) < 2]],
                 call="param_groups(model): the shapes of each group", hint="ndim >= 2 decays; model.parameters() order")
    optimizer = AdamWGroups(model, lr=0.01, weight_decay=0.5)
    optimizer.lr = 0.05
    gradients = {name: np.random.default_rng([9, i]).standard_normal(w.shape).astype(np.float32)
                 for i, (name, w) in enumerate(weights.items())}
    for _ in range(3):
        optimizer.zero_grad()
        for name, p in model.named_parameters():
            p.grad = Tensor(gradients[name].copy())
        optimizer.step()
    expect_close(flat(dict(model.state_dict()), list(weights)), flat(torch_adamw(weights, gradients, 0.05, 0.5, 3),
                                                                     list(weights)),
                 call="AdamWGroups(model, lr=0.01, weight_decay=0.5); optimizer.lr = 0.05; 3 steps with fixed gradients",
                 hint="two module-06 AdamWs: weight_decay for ndim >= 2, 0 for the rest; setting lr sets both",
                 rtol=1e-5, atol=1e-6)


def torch_adamw(weights, gradients, lr, weight_decay, steps) -> dict[str, np.ndarray]:
    p = torch_params(weights)
    optimizer = torch.optim.AdamW([{"params": [t for t in p.values() if t.ndim >= 2], "weight_decay": weight_decay},
                                   {"params": [t for t in p.values() if t.ndim < 2], "weight_decay": 0.0}], lr=lr)
    for _ in range(steps):
        for name, t in p.items():
            t.grad = torch.tensor(gradients[name], dtype=torch.float64)
        optimizer.step()
    return {name: t.detach().numpy() for name, t in p.items()}


# -- 5. training, checkpoints, evaluation ------------------------------------------------------------------------

def check_trajectory(config: TinyGPTConfig, weights_seed: int, steps: int, given_model: bool) -> None:
    data = token_data(400, config.vocab_size, 11)
    weights = given_weights(config, weights_seed)
    if given_model:
        model = gpt_with(config, weights)
        trainer = TinyGPTTrainer(config, data, model=model)
    else:
        trainer = TinyGPTTrainer(config, data)
        trainer.model.load_state_dict(weights)
    losses = [trainer.train_step() for _ in range(steps)]
    settings = (f"lr={config.lr}, warmup_steps={config.warmup_steps}, weight_decay={config.weight_decay}, "
                f"grad_clip={config.grad_clip}")
    expect_close(losses, torch_training(weights, config, data, steps)[0], call=f"{TRAJECTORY} ({settings}): losses",
                 hint=STEP_HINT, rtol=LOSS_RTOL, atol=0)
    expect_close(updates_of(trainer.model, weights), torch_updates(weights, config, data, steps),
                 call=f"{TRAJECTORY} ({settings}): weights after - weights before",
                 hint=STEP_HINT, rtol=0, atol=UPDATE_ATOL * config.lr)
    expect_equal(trainer.step, steps, call=f"trainer.step after {steps} train_step()", hint="the Trainer's counter")


def test_training_steps_match_pytorch():
    """6 training steps (warm-up, decay, clipping active) equal torch's: losses and weight updates"""
    check_trajectory(config_of(), 5, 6, given_model=True)


def test_training_steps_match_pytorch_without_warm_up_or_clipping():
    """strong weight decay, no warm-up, a clipping threshold never reached: still torch's steps"""
    check_trajectory(config_of(lr=3e-2, min_lr=3e-3, warmup_steps=0, weight_decay=0.5, grad_clip=100.0), 6, 6,
                     given_model=False)


def test_training_steps_match_pytorch_when_clipping_dominates():
    """a tiny clipping threshold: every step is clipped by the global norm, as torch's clip_grad_norm_ does"""
    check_trajectory(config_of(grad_clip=0.05, warmup_steps=3), 7, 6, given_model=False)


def test_resume_is_bit_identical(tmp_path):
    """train 5 steps, or 2, save, load into a new trainer and train 3: the same losses and weights, bit for bit"""
    config = config_of()
    data = token_data(400, config.vocab_size, 12)
    straight = TinyGPTTrainer(config, data)
    straight.model.load_state_dict(given_weights(config, 13))
    straight_losses = [straight.train_step() for _ in range(5)]
    first = TinyGPTTrainer(config, data)
    first.model.load_state_dict(given_weights(config, 13))
    first_losses = [first.train_step() for _ in range(2)]
    path = first.save_checkpoint(tmp_path / "run.npz")
    resumed = TinyGPTTrainer.from_checkpoint(path, data)
    resumed_step = resumed.step
    resumed_losses = [resumed.train_step() for _ in range(3)]
    expect_equal(resumed_step, 2, call="TinyGPTTrainer.from_checkpoint(checkpoint after 2 steps).step",
                 hint="the step counter is part of the state")
    expect_that(((straight_losses, state_of(straight.model)), (first_losses + resumed_losses, state_of(resumed.model))),
                same_pair, call="5 steps straight vs 2 steps, save_checkpoint, from_checkpoint, 3 steps: losses, weights",
                expected="identical, bit for bit",
                hint="the checkpoint must hold everything the next step reads: weights, AdamW's moments and steps "
                     "(both groups), the schedule's position, the step (module 07's Trainer.state_dict) and the config")
    other = TinyGPTTrainer(config, data)
    other.load_checkpoint(path)
    other.train_step()
    expect_that((state_of(other.model), state_of_after(config, data, 13, 3)), same_pair,
                call="a new trainer, load_checkpoint(checkpoint after 2 steps), one step",
                expected="the weights of 3 steps straight", hint="load_checkpoint puts the whole state into this trainer")


def state_of_after(config, data, seed, steps) -> dict[str, np.ndarray]:
    """Your weights after `steps` uninterrupted steps from given_weights(config, seed)."""
    trainer = TinyGPTTrainer(config, data)
    trainer.model.load_state_dict(given_weights(config, seed))
    for _ in range(steps):
        trainer.train_step()
    return state_of(trainer.model)


def test_checkpoint_file_holds_the_config(tmp_path):
    """the checkpoint is one .npz with the config; a checkpoint of another config is refused"""
    config = config_of(n_layer=1)
    data = token_data(200, config.vocab_size, 14)
    trainer = TinyGPTTrainer(config, data)
    trainer.train_step()
    path = trainer.save_checkpoint(tmp_path / "tiny.npz")
    with np.load(path, allow_pickle=False) as npz:
        numbers = sum(npz[key].size for key in npz.files if npz[key].dtype.kind == "f")
    expect_that(numbers, at_least, 3 * sum(math.prod(s) for s in parameter_shapes(config).values()),
                call="floating-point numbers in the checkpoint file (np.load(path, allow_pickle=False))",
                expected="at least 3 per parameter: the weight and AdamW's two moments",
                hint="module 07's Trainer.state_dict holds the model and the optimizer's state; no pickle")
    resumed = TinyGPTTrainer.from_checkpoint(path, data)
    expect_that((str(path), str(tmp_path / "tiny.npz")), same_pair, call="str(trainer.save_checkpoint(tmp / 'tiny.npz'))",
                expected="the path it was given", hint="save_state returns the path it wrote")
    expect_equal([resumed.config.to_dict(), resumed.step], [config.to_dict(), 1],
                 call="TinyGPTTrainer.from_checkpoint(trainer.save_checkpoint(tmp / 'tiny.npz')): config, step",
                 hint="save_state(path, {'config': config.to_dict(), 'trainer': trainer.state_dict()}), no pickle")
    different = TinyGPTTrainer(config_of(n_layer=1, lr=0.002), data)
    expect_raises(ValueError, lambda: different.load_checkpoint(path),
                  call="trainer with lr=0.002 .load_checkpoint(checkpoint of lr=0.01)",
                  hint="a checkpoint of another config does not belong to this trainer")


def test_estimate_loss_matches_torch():
    """estimate_loss: the mean loss of eval_batches fixed batches, like torch; no graph, the mode restored"""
    config = config_of(eval_batches=3)
    weights = given_weights(config, 15)
    data = token_data(300, config.vocab_size, 16)
    model = gpt_with(config, weights)
    model.train()
    value = estimate_loss(model, data, config, seed=7)
    expect_close(value, torch_estimate(weights, data, config, 7), call="estimate_loss(model, data, config, seed=7)",
                 hint="mean of lm_loss over get_batch(data, batch_size, block_size, seed, i) for i in range(eval_batches)",
                 rtol=LOSS_RTOL, atol=0)
    expect_equal([type(value).__name__, model.training, [p.grad for p in model.parameters()]],
                 ["float", True, [None] * len(weights)], call="after estimate_loss: type, model.training, gradients",
                 hint="a Python float; eval mode inside, the previous mode back afterwards; no_grad(): no graph")
    expect_close(estimate_loss(model, data, config), torch_estimate(weights, data, config, EVAL_SEED),
                 call="estimate_loss(model, data, config)", hint="seed=EVAL_SEED by default", rtol=LOSS_RTOL, atol=0)
    expect_raises(ValueError, lambda: estimate_loss(model, np.arange(5), config),
                  call="estimate_loss(model, 5 tokens, config with block_size=8)", hint="get_batch refuses short data")
    expect_equal(model.training, True, call="model.training after estimate_loss raised",
                 hint="try / finally: put the mode back even when something fails")


# -- 6. the whole pipeline: a tiny model on a tiny corpus ---------------------------------------------------------

_TRAINED: dict = {}


def trained_tiny_model():
    """Tokenizer, split, trainer and 120 steps on CORPUS (trained once per run)."""
    if not _TRAINED:
        tokenizer = Tokenizer.for_characters(CORPUS)
        train, val = split_tokens(tokenizer.encode(CORPUS), 0.1)
        config = TinyGPTConfig(vocab_size=tokenizer.vocab_size, **TINY)
        trainer = TinyGPTTrainer(config, train, val)
        start_loss = trainer.evaluate()
        for _ in range(config.max_steps):
            trainer.train_step()
        _TRAINED.update(tokenizer=tokenizer, trainer=trainer, train=train, start=start_loss)
    return _TRAINED["tokenizer"], _TRAINED["trainer"], _TRAINED["train"], _TRAINED["start"]


def test_a_tiny_model_learns_a_tiny_corpus():
    """120 steps on 1,520 characters: the validation loss falls from 2.8 to below 0.5 nats per character"""
    _, trainer, _, start = trained_tiny_model()
    expect_that(start, at_most, 3.0, call="trainer.evaluate() before training (1 layer, 32 wide, 17 characters)",
                expected="about ln(17) = 2.83: GPT-2's small initial weights predict every character alike",
                hint="build_model draws module 13's initialisation")
    expect_that(trainer.evaluate(), at_most, TARGET_VAL_LOSS,
                call=f"trainer.evaluate() after 120 train_step() with {TINY}",
                expected=f"at most {TARGET_VAL_LOSS} nats per character",
                hint="see the training tests above: the batch of each step, AdamW in two groups, the schedule, clipping")


def calibration_batches(train, config) -> list[np.ndarray]:
    return [recipe_batch(train, config.batch_size, config.block_size, 99, i)[0] for i in range(2)]


def test_quantize_gpt_makes_a_smaller_copy():
    """quantize_gpt: every Linear becomes int8 in a copy, about 4x fewer weight bytes; the float model is untouched"""
    _, trainer, train, _ = trained_tiny_model()
    before = state_of(trainer.model)
    int8_model = quantize_gpt(trainer.model, calibration_batches(train, trainer.config))
    expect_that((before, state_of(trainer.model)), same_pair, call="the float model's weights before and after quantize_gpt",
                expected="unchanged", hint="module 15's quantize works on a copy")
    expect_equal(sum(isinstance(m, Linear) for m in int8_model.modules()), 0,
                 call="float Linear layers left in quantize_gpt(model, batches)",
                 hint="module 15's quantize(model, calibration_batches): every Linear, the output layer included")
    expect_that(weight_nbytes(trainer.model) / weight_nbytes(int8_model), at_least, 3.5,
                call="weight_nbytes(model) / weight_nbytes(quantize_gpt(model, batches))",
                expected="at least 3.5 (1 byte per weight instead of 4, plus the scales)", hint="module 15's quantize")


def at_least(value, limit) -> bool:
    return float(value) >= limit


def test_int8_model_stays_close_to_the_float_model():
    """the int8 model's validation loss is within 0.05 nats, and its greedy text agrees on at least 18 of 20 characters"""
    tokenizer, trainer, train, _ = trained_tiny_model()
    int8_model = quantize_gpt(trainer.model, calibration_batches(train, trainer.config))
    expect_that((trainer.evaluate(), estimate_loss(int8_model, trainer.val_data, trainer.config)), within_of_each_other,
                0.05, call="estimate_loss of the float model and of quantize_gpt(model, batches)",
                expected="within 0.05 nats of each other", hint="estimate_loss takes any model, the int8 one too")
    expect_that((generate_text(trainer.model, tokenizer, "a dog", 20, greedy=True),
                 generate_text(int8_model, tokenizer, "a dog", 20, greedy=True)), same_length_and_agreement, 23,
                call="generate_text(model, ...) and generate_text(int8_model, ...), prompt 'a dog', 20 greedy tokens",
                expected="25 characters each, equal in at least 23 positions (the prompt's 5 and 18 of the 20 new)",
                hint="generate_text runs module 17's generate_cached, which takes the int8 model like any GPT")


def same_length_and_agreement(pair, count) -> bool:
    first, second = pair
    return len(first) == len(second) == 25 and sum(a == b for a, b in zip(first, second)) >= count


# -- 7. generation ----------------------------------------------------------------------------------------------

def test_greedy_generation_matches_torch():
    """generate_text(greedy=True) writes PyTorch's greedy text, also past block_size"""
    config = config_of(vocab_size=17, block_size=8)
    weights = given_weights(config, 17)
    tokenizer = corpus_tokenizer()
    model = gpt_with(config, weights)
    text = generate_text(model, tokenizer, "the c", 20, greedy=True)
    expect_equal(text, "".join(sorted(set(CORPUS))[i] for i in torch_greedy(weights, corpus_ids("the c"), 20, config)),
                 call="generate_text(model, tokenizer, 'the c', 20, greedy=True)  # block_size=8",
                 hint="encode the prompt, generate_cached(model, ids[None], length, greedy=True, ...), decode the whole "
                      "sequence: the prompt and the 20 new tokens")


def byte_writer_weights(c: TinyGPTConfig, targets: list[int]) -> dict[str, np.ndarray]:
    """Weights of a GPT whose blocks do nothing and whose position p makes token targets[p] the argmax:
    unit-norm, zero-mean token embeddings, wpe[p] = 50 * wte[targets[p]] (the tied output layer then
    scores targets[p] highest), every block weight 0."""
    rng = np.random.default_rng(42)
    wte = rng.standard_normal((c.vocab_size, c.n_embd))
    wte -= wte.mean(axis=1, keepdims=True)
    wte /= np.linalg.norm(wte, axis=1, keepdims=True)
    wpe = np.zeros((c.block_size, c.n_embd))
    wpe[: len(targets)] = 50 * wte[targets]
    weights = {name: np.zeros(shape, dtype=np.float32) for name, shape in parameter_shapes(c).items()}
    for name in weights:
        if name.endswith(("ln_1.weight", "ln_2.weight")) or name == "ln_f.weight":
            weights[name][...] = 1.0
    weights["wte.weight"], weights["wpe.weight"] = wte.astype(np.float32), wpe.astype(np.float32)
    return weights


def test_generate_text_decodes_the_whole_sequence():
    """generate_text decodes all ids at once: a model that writes the UTF-8 bytes of '日本' one byte per token"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    config = config_of(vocab_size=len(trained.vocab), n_layer=1, block_size=8)
    weights = byte_writer_weights(config, list("日本".encode("utf-8")))
    model = gpt_with(config, weights)
    expect_equal(generate_text(model, GivenTokenizer(trained), "a", 6, greedy=True),
                 trained.decode(torch_greedy(weights, trained.encode_ordinary("a"), 6, config)),
                 call="generate_text(model writing the bytes e6 97 a5 e6 9c ac, module 10's BPE, 'a', 6, greedy=True)",
                 hint="tokenizer.decode(all the ids at once): one token's bytes alone are half a character")


def test_sampling_settings():
    """generate_text: a seed repeats its text, top_k=1 and a tiny temperature are greedy, an empty prompt is refused"""
    config = config_of(vocab_size=17, block_size=8)
    weights = given_weights(config, 18)
    tokenizer = corpus_tokenizer()
    model = gpt_with(config, weights)
    greedy = "".join(sorted(set(CORPUS))[i] for i in torch_greedy(weights, corpus_ids("a m"), 12, config))
    expect_equal([generate_text(model, tokenizer, "a m", 12, top_k=1, seed=5),
                  generate_text(model, tokenizer, "a m", 12, temperature=1e-3, seed=6)], [greedy, greedy],
                 call="generate_text(model, tokenizer, 'a m', 12, top_k=1, seed=5) and (..., temperature=1e-3, seed=6)",
                 hint="pass temperature and top_k on to generate_cached: the one most likely token is greedy")
    expect_that((generate_text(model, tokenizer, "a m", 30, seed=3), generate_text(model, tokenizer, "a m", 30, seed=3)),
                same_pair, call="generate_text(..., 30, seed=3) twice", expected="the same text",
                hint="rng=np.random.default_rng(seed)")
    expect_that((generate_text(model, tokenizer, "a m", 30, seed=3), generate_text(model, tokenizer, "a m", 30, seed=4)),
                differ, call="generate_text(..., 30, seed=3) and (..., seed=4)", expected="different texts",
                hint="the seed chooses the random numbers")
    expect_raises(ValueError, lambda: generate_text(model, tokenizer, "", 5), call="generate_text(model, tokenizer, '', 5)",
                  hint="no prompt, no token to start from")


# -- 8. the report ------------------------------------------------------------------------------------------------

def report_setting():
    """A trainer holding the test's weights; an int8 model made here with module 15 from a model of slightly
    different weights, so that the two agree only in part and every metric shows which model it measured."""
    tokenizer = corpus_tokenizer()
    ids = np.array(tokenizer.encode(CORPUS[:600]))
    config = TinyGPTConfig(vocab_size=17, n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=10,
                           warmup_steps=1, eval_batches=2)
    train, val = split_tokens(ids, 0.2)
    trainer = TinyGPTTrainer(config, train, val)
    trainer.model.load_state_dict(given_weights(config, 19))
    int8_model = quantize(gpt_with(config, perturbed(given_weights(config, 19), 21, 0.03)), calibration_batches(train, config))
    return tokenizer, config, trainer, int8_model


def test_report_passes_the_schema_and_has_its_fields():
    """benchmark_report: a module-19 submission with three measurements and every metric of REPORT_METRICS"""
    tokenizer, config, trainer, int8_model = report_setting()
    uncached = []
    generate = trainer.model.generate
    trainer.model.generate = lambda *args, **kwargs: uncached.append(1) or generate(*args, **kwargs)
    report = benchmark_report(trainer, tokenizer, int8_model, new_tokens=6, repeats=3, warmup=0, name="tiny")
    expect_that(len(uncached), at_least, 3, call="calls of trainer.model.generate by benchmark_report(..., repeats=3)",
                expected="at least 3: the 'uncached' baseline is module 13's generate",
                hint="measure(lambda: model.generate(idx, new_tokens, greedy=True), warmup, repeats)")
    expect_that(report, valid_submission, SUBMISSION_SCHEMA,
                call="benchmark_report(trainer, tokenizer, int8_model, new_tokens=6, repeats=3, warmup=0, name='tiny')",
                expected="a document valid under module 19's SUBMISSION_SCHEMA", hint="make_submission(...)")
    expect_equal([report["name"], report["baseline"], list(report["measurements"]), list(report["speedups"]),
                  sorted(report["metrics"]), [len(m["samples"]) for m in report["measurements"].values()]],
                 ["tiny", "uncached", list(REPORT_MEASUREMENTS), ["cached", "int8 cached"], sorted(REPORT_METRICS),
                  [3, 3, 3]],
                 call="benchmark_report(...): name, baseline, measurements, speedups, metric names, samples per measurement",
                 hint="measure(fn, warmup, repeats) for 'uncached', 'cached', 'int8 cached'; baseline='uncached'")
    expect_that(report, rates_follow_the_medians, 6, call="benchmark_report(...)['metrics']['tokens_per_second_*']",
                expected="new_tokens / the median of the matching measurement", hint="6 tokens per generation")


def test_report_numbers():
    """the report's sizes, losses and greedy agreement are the model's: parameters, bytes, torch's loss"""
    tokenizer, config, trainer, int8_model = report_setting()
    metrics = benchmark_report(trainer, tokenizer, int8_model, new_tokens=6, repeats=2, warmup=0)["metrics"]
    weights = given_weights(config, 19)
    linears = [s for name, s in parameter_shapes(config).items() if len(s) == 2 and not name.startswith("w")]
    linears.append((config.vocab_size, config.n_embd))  # the output layer, tied to wte
    expect_close([metrics[key] for key in ("parameters", "float32_weight_bytes", "int8_weight_bytes", "int8_size_ratio",
                                           "training_steps", "new_tokens")],
                 [sum(math.prod(s) for s in parameter_shapes(config).values()), 4 * sum(o * i for o, i in linears),
                  sum(o * i + 4 * o for o, i in linears), 4 * sum(o * i for o, i in linears) / sum(o * i + 4 * o
                                                                                                   for o, i in linears),
                  0, 6],
                 call="benchmark_report(...)['metrics']: parameters, float32_weight_bytes, int8_weight_bytes, "
                      "int8_size_ratio, training_steps, new_tokens",
                 hint="count_parameters(model); weight_nbytes of each model (module 15): every Linear's weight, the "
                      "tied output layer included; float bytes / int8 bytes; trainer.step", rtol=1e-12, atol=0)
    val = trainer.val_data
    expect_close([metrics["val_loss"], metrics["int8_val_loss"]],
                 [torch_estimate(weights, val, config, EVAL_SEED),
                  float(np.mean([numpy_cross_entropy(int8_model(x).data, y) for x, y in (
                      recipe_batch(val, config.batch_size, config.block_size, EVAL_SEED, i)
                      for i in range(config.eval_batches))]))],
                 call="benchmark_report(...)['metrics']: val_loss, int8_val_loss",
                 hint="estimate_loss(model, trainer.val_data, config, seed=EVAL_SEED), and of the int8 model",
                 rtol=LOSS_RTOL, atol=0)
    prompt = val[: config.block_size // 4][None]
    expect_close(metrics["greedy_agreement"],
                 float(np.mean(generate_cached(trainer.model, prompt, 6, greedy=True)[0, 4:]
                               == generate_cached(int8_model, prompt, 6, greedy=True)[0, 4:])),
                 call="benchmark_report(...)['metrics']['greedy_agreement']  # no prompt: the first 4 validation tokens",
                 hint="the fraction of the new_tokens greedy tokens where the int8 model's equal the float model's",
                 rtol=0, atol=1e-12)
    with_prompt = benchmark_report(trainer, tokenizer, int8_model, prompt="sang. the", new_tokens=6, repeats=1, warmup=0)
    given = np.array([tokenizer.encode("sang. the")])
    expect_close(with_prompt["metrics"]["greedy_agreement"],
                 float(np.mean(generate_cached(trainer.model, given, 6, greedy=True)[0, 9:]
                               == generate_cached(int8_model, given, 6, greedy=True)[0, 9:])),
                 call="benchmark_report(..., prompt='sang. the', new_tokens=6)['metrics']['greedy_agreement']",
                 hint="with a prompt, its ids are tokenizer.encode(prompt)", rtol=0, atol=1e-12)
