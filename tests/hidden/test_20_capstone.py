"""Hidden checks for module 20 (capstone): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from grader.expect import expect_close, expect_equal, expect_raises, expect_that
# the checkpoint's oracles and helpers: both files test against one reference
from tests.checkpoints.test_20_capstone import (
    EVAL_SEED,
    LOSS_RTOL,
    STREAM_TEXT,
    calibration_batches,
    closed_form_lr,
    config_of,
    corpus_tokenizer,
    flat,
    given_weights,
    gpt_with,
    perturbed,
    recipe_batch,
    state_of,
    tiktoken_ids,
    token_data,
    torch_estimate,
    torch_greedy,
    torch_training,
    trained_bpe,
)
from tests.checkpoints.common import same_pair
from tinytorch.capstone import (
    AdamWGroups,
    TinyGPTConfig,
    TinyGPTTrainer,
    Tokenizer,
    benchmark_report,
    build_model,
    estimate_loss,
    generate_text,
    get_batch,
    lr_at,
    split_tokens,
)
from tinytorch.memoization import generate_cached
from tinytorch.quantization import quantize
from tinytorch.tensor import Tensor
from tinytorch.tokenization import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, train_merges

torch.set_num_threads(1)


def test_encode_iterable_of_odd_streams():
    """encode_iterable: no pieces, empty pieces, whitespace only, special-token text, a truncated character"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    n = len(trained.vocab)
    bpe = Tokenizer.from_vocab({**trained.vocab, n: b"<|endoftext|>", n + 1: b"STOP"}, trained.merges)
    spaces = "  \n \t\n\n   \r\n  "
    special = "end<|endoftext|>start  "
    got = [list(bpe.encode_iterable([])), list(bpe.encode_iterable(["", "a", "", " b", ""])),
           [list(bpe.encode_iterable([spaces[:i], spaces[i:]])) for i in range(len(spaces) + 1)],
           list(bpe.encode_iterable(list(special))), list(bpe.encode_iterable(["go STOP"]))]
    expect_equal(got, [[], tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, "a b"),
                       [tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, spaces)] * (len(spaces) + 1),
                       tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, special),
                       tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, "go STOP")],
                 call="bpe.encode_iterable of [], of empty pieces, of whitespace cut everywhere, of special-token "
                      "text (specials '<|endoftext|>' and 'STOP')",
                 hint="nothing in, nothing out; whitespace is held until a non-space chunk or the end; special-token "
                      "text is ordinary text, as in encode")
    expect_raises(ValueError, lambda: list(bpe.encode_iterable([b"caf", "é".encode()[:1]])),
                  call="list(bpe.encode_iterable([b'caf', the first byte of 'é']))",
                  hint="decode(b'', final=True) at the end refuses a character cut short")
    chars = Tokenizer.for_characters("abc ")
    expect_raises(ValueError, lambda: list(chars.encode_iterable(["ab", "cd"])),
                  call="list(Tokenizer.for_characters('abc ').encode_iterable(['ab', 'cd']))",
                  hint="a character outside the vocabulary has no id, streamed or not")


def test_bpe_of_gpt2_pattern_and_train_bpe():
    """a BPE with GPT-2's pattern encodes by it; train_bpe learns module 10's merges"""
    trained = trained_bpe(GPT2_SPLIT_PATTERN)
    tokenizer = Tokenizer.from_vocab(None, trained.merges, pattern=GPT2_SPLIT_PATTERN)
    text = "They'll say it's   fine\n\n 12345 café"
    expect_equal(tokenizer.encode(text), tiktoken_ids(GPT2_SPLIT_PATTERN, trained.merges, text),
                 call="Tokenizer.from_vocab(None, merges, pattern=GPT2_SPLIT_PATTERN).encode(text)",
                 hint="BPETokenizer(pattern): the pattern you are given, not GPT-4's")
    learned = Tokenizer.train_bpe(STREAM_TEXT * 4, 270)
    expect_equal([learned.kind, learned.merges], ["bpe", train_merges(STREAM_TEXT * 4, 270)],
                 call="Tokenizer.train_bpe(text, 270): kind, merges", hint="BPETokenizer(pattern).train(text, vocab_size)")


def test_get_batch_edge_cases():
    """get_batch takes a list, gives arrays of its own, and one window per row for batch_size 1"""
    data = [int(x) for x in token_data(50, 9, 31)]
    inputs, targets = get_batch(data, 1, 12, 2, 99)
    expected_inputs, expected_targets = recipe_batch(np.array(data), 1, 12, 2, 99)
    inputs[...] = -1
    expect_equal([inputs.shape, get_batch(data, 1, 12, 2, 99)[0], targets, data],
                 [(1, 12), expected_inputs, expected_targets, [int(x) for x in token_data(50, 9, 31)]],
                 call="get_batch(list of 50 tokens, 1, 12, seed=2, step=99); then inputs[...] = -1",
                 hint="index with an array of positions: the batch is a new array, the data is untouched")
    train, val = split_tokens(np.arange(7), 0.5)
    expect_equal([train, val], [np.arange(3), np.arange(3, 7)], call="split_tokens(np.arange(7), 0.5)",
                 hint="int(7 * 0.5) = 3 tokens to train on")


def test_resume_at_step_zero_and_past_the_schedule(tmp_path):
    """a checkpoint before the first step, and one past max_steps, resume bit-identically; a given model is trained"""
    config = config_of(max_steps=4, warmup_steps=1)
    data = token_data(300, config.vocab_size, 32)

    def fresh() -> TinyGPTTrainer:
        trainer = TinyGPTTrainer(config, data)
        trainer.model.load_state_dict(given_weights(config, 33))
        return trainer

    straight = fresh()
    straight_losses = [straight.train_step() for _ in range(7)]
    early = fresh()
    path = early.save_checkpoint(tmp_path / "step0.npz")
    model = build_model(config)
    resumed = TinyGPTTrainer.from_checkpoint(path, data, model=model)
    resumed_losses = [resumed.train_step() for _ in range(5)]
    late_path = resumed.save_checkpoint(tmp_path / "step5.npz")
    late = TinyGPTTrainer.from_checkpoint(late_path, data)
    late_losses = [late.train_step() for _ in range(2)]
    expect_that(((straight_losses, state_of(straight.model)), (resumed_losses + late_losses, state_of(late.model))),
                same_pair, call="7 steps straight vs save at 0, from_checkpoint(model=model), 5 steps, save, "
                                "from_checkpoint, 2 steps (max_steps=4)",
                expected="identical losses and weights",
                hint="the schedule's position is part of the state, also past max_steps (min_lr from there on)")
    expect_that((state_of(model), state_of(resumed.model)), same_pair,
                call="the model given to from_checkpoint, and resumed.model", expected="the same weights",
                hint="from_checkpoint(path, train, val, model=model) trains the model it is given")


def test_training_past_max_steps_matches_pytorch():
    """after max_steps the learning rate stays at min_lr: 7 steps of a 4-step schedule equal torch's"""
    config = config_of(max_steps=4, warmup_steps=1, lr=2e-2, min_lr=5e-3)
    data = token_data(300, config.vocab_size, 34)
    weights = given_weights(config, 35)
    trainer = TinyGPTTrainer(config, data)
    trainer.model.load_state_dict(weights)
    losses = [trainer.train_step() for _ in range(7)]
    expect_close(losses, torch_training(weights, config, data, 7)[0],
                 call="7 training steps with max_steps=4, warmup_steps=1 against torch: losses",
                 hint="lr_at(config, step) for steps past max_steps is min_lr", rtol=LOSS_RTOL, atol=0)
    expect_close([lr_at(config, s) for s in range(7)], [closed_form_lr(config, s) for s in range(7)],
                 call="[lr_at(config(max_steps=4, warmup_steps=1), s) for s in range(7)]", hint="module 07's schedule",
                 rtol=1e-12, atol=0)


def test_estimate_loss_keeps_eval_mode():
    """estimate_loss leaves a model in eval mode in eval mode"""
    config = config_of()
    weights = given_weights(config, 36)
    model = gpt_with(config, weights)
    model.eval()
    data = token_data(200, config.vocab_size, 37)
    value = estimate_loss(model, data, config, seed=3)
    expect_close([value, model.training], [torch_estimate(weights, data, config, 3), False],
                 call="estimate_loss(model in eval mode, data, config, seed=3); model.training",
                 hint="the previous mode comes back, whatever it was", rtol=LOSS_RTOL, atol=0)


def test_generate_text_with_bpe_decodes_the_whole_sequence():
    """generate_text with a byte-level BPE: PyTorch's greedy ids, decoded all at once"""
    trained = trained_bpe(GPT4_SPLIT_PATTERN)
    tokenizer = Tokenizer.from_vocab(trained.vocab, trained.merges)
    config = config_of(vocab_size=len(trained.vocab), block_size=8, n_layer=1)
    weights = given_weights(config, 38)
    model = gpt_with(config, weights)
    prompt = "café 日本"
    expect_equal(generate_text(model, tokenizer, prompt, 12, greedy=True),
                 trained.decode(torch_greedy(weights, tiktoken_ids(GPT4_SPLIT_PATTERN, trained.merges, prompt), 12,
                                             config)),
                 call=f"generate_text(model, bpe_tokenizer, {prompt!r}, 12, greedy=True)",
                 hint="tokenizer.encode(prompt); generate_cached; tokenizer.decode(all the ids)")


def test_adamw_groups_state_round_trip():
    """AdamWGroups.state_dict has both groups; a new optimizer loaded from it continues identically"""
    config = config_of(n_layer=1)
    weights = given_weights(config, 39)
    gradients = {name: np.random.default_rng([40, i]).standard_normal(w.shape).astype(np.float32)
                 for i, (name, w) in enumerate(weights.items())}
    first, second = build_model(config), build_model(config)
    first.load_state_dict(weights)
    optimizer = AdamWGroups(first, lr=0.02, weight_decay=0.3)
    for _ in range(2):
        for name, p in first.named_parameters():
            p.grad = Tensor(gradients[name].copy())
        optimizer.step()
    state = optimizer.state_dict()
    second.load_state_dict(first.state_dict())
    other = AdamWGroups(second, lr=0.5, weight_decay=0.0)
    other.load_state_dict(state)
    for model, opt in ((first, optimizer), (second, other)):
        for name, p in model.named_parameters():
            p.grad = Tensor(gradients[name].copy() * 2)
        opt.step()
    expect_equal(sorted(state), ["decay", "no_decay"], call="sorted(AdamWGroups(...).state_dict())",
                 hint='{"decay": ..., "no_decay": ...}')
    expect_that((flat(first.state_dict(), list(weights)), flat(second.state_dict(), list(weights))), same_pair,
                call="one more step of the optimizer and of a new one loaded with its state_dict",
                expected="identical weights", hint="both groups' moments, steps, lr and weight decay are restored")


def test_report_after_training_with_a_prompt():
    """benchmark_report after 2 steps, with a prompt: training_steps, new_tokens, the name, the loss of the trained model"""
    tokenizer = corpus_tokenizer()
    ids = np.array(tokenizer.encode(("the cat sat. a dog ran. my bird sang. " * 16)))
    config = TinyGPTConfig(vocab_size=17, n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4, max_steps=10,
                           warmup_steps=1, eval_batches=2, seed=5)
    train, val = split_tokens(ids, 0.25)
    trainer = TinyGPTTrainer(config, train, val)
    weights = given_weights(config, 41)
    trainer.model.load_state_dict(weights)
    trainer.train_step()
    trainer.train_step()
    int8_model = quantize(gpt_with(config, perturbed(weights, 42, 0.05)), calibration_batches(train, config))
    report = benchmark_report(trainer, tokenizer, int8_model, prompt="a dog", new_tokens=5, repeats=2, warmup=0)
    prompt = np.array([tokenizer.encode("a dog")])
    expect_close([report["metrics"]["training_steps"], report["metrics"]["new_tokens"], report["metrics"]["greedy_agreement"]],
                 [2, 5, float(np.mean(generate_cached(trainer.model, prompt, 5, greedy=True)[0, 5:]
                                      == generate_cached(int8_model, prompt, 5, greedy=True)[0, 5:]))],
                 call="benchmark_report(trainer after 2 steps, ..., prompt='a dog', new_tokens=5): training_steps, "
                      "new_tokens, greedy_agreement", hint="the prompt's ids come from tokenizer.encode(prompt)",
                 rtol=0, atol=1e-12)
    expect_close(report["metrics"]["val_loss"], torch_estimate(torch_training(weights, config, train, 2)[1], val, config,
                                                               EVAL_SEED),
                 call="benchmark_report(trainer after 2 steps, ...)['metrics']['val_loss']",
                 hint="estimate_loss of trainer.model as it is now", rtol=1e-4, atol=0)
    expect_equal(report["name"], "tinygpt", call="benchmark_report(...)['name']", hint='name="tinygpt" by default')
