"""Hidden checks for module 10 (tokenization): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from pydoc_data.topics import topics

from grader.expect import expect_equal, expect_raises, expect_that
# the checkpoint's textbook trainer, vocabulary builder and predicates: both files test against one oracle
from tests.checkpoints.test_10_tokenization import (
    TIKTOKEN_IDS,
    oracle,
    replay_encode,
    same_ids,
    same_merges,
    textbook_merges,
    with_merges,
)
from tinytorch.tokenization import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, CharTokenizer

CORPUS = "".join(topics[name] for name in sorted(topics))
HINT = "split with the pattern, then merge by the rank of the concatenated bytes"


# Few letters and short words: counts tie all the time, and chunks collapse into single tokens.
tie_heavy_text = st.lists(st.text(alphabet="abcé", min_size=1, max_size=6), min_size=1, max_size=12).map(" ".join)


@given(tie_heavy_text, st.integers(256, 290), st.sampled_from([GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN]))
def test_training_ties_and_early_stop_match_textbook(text, vocab_size, pattern):
    """On tie-heavy tiny texts, training equals the textbook loop, including stopping when nothing is left"""
    tokenizer = BPETokenizer(pattern)
    tokenizer.train(text, vocab_size)
    expect_that(list(tokenizer.merges.items()), same_merges, list(textbook_merges(text, vocab_size, pattern).items()),
                call=f"BPETokenizer(...).train({text!r}, {vocab_size}).merges", expected="the textbook loop's merges, in order",
                hint="ties go to the pair seen first in the text; when every chunk is a single token, stop")
    expect_equal(tokenizer.vocab_size, 256 + len(textbook_merges(text, vocab_size, pattern)), call="vocab_size after training",
                 hint="256 bytes + the merges actually learned")


def test_allowed_special_set_like_tiktoken():
    """allowed_special as a set encodes those specials and still refuses the others, like tiktoken"""
    merges = textbook_merges(CORPUS[:8000], 300, GPT4_SPLIT_PATTERN)
    specials = {"<|endoftext|>": 300, "<|im_start|>": 301, "<|im_end|>": 302}
    tokenizer = with_merges(GPT4_SPLIT_PATTERN, merges, specials)
    text = "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>"
    allowed = {"<|im_start|>", "<|im_end|>"}
    expect_that(tokenizer.encode(text, allowed_special=allowed), same_ids,
                oracle(GPT4_SPLIT_PATTERN, merges, specials).encode(text, allowed_special=allowed),
                call=f"tokenizer.encode({text!r}, allowed_special={allowed})", expected=TIKTOKEN_IDS,
                hint="specials in the set become their ids; the text between is ordinary")
    expect_raises(ValueError, lambda: tokenizer.encode(text + "<|endoftext|>", allowed_special=allowed),
                  call=f"tokenizer.encode(<text with <|endoftext|>>, allowed_special={allowed})",
                  message_contains="<|endoftext|>", hint="a special token not in the set is still refused")


ADVERSARIAL = [
    "\n\n\n    \n\t \n  x  \r\n\r\r\n", "   ", " \n", "a\u2028b\u2029c\x85d", "\x1c\x1d\x1e\x1f x",
    "'S'LL'VE'M'D 'ſ 'K", "ÉCOLE école İstanbul ǅemal", "1234567890123 ٠١٢٣٤٥٦٧٨٩ ①②③",
    "x" * 300, " " * 100 + "y", "🏳️‍🌈👨‍👩‍👧‍👦 café", "\ufeffBOM\u200d\u200c", CORPUS[200_000:205_000],
]


def test_larger_vocabulary_adversarial_text():
    """A 520-token vocabulary matches tiktoken on whitespace, case, and script edge cases, both patterns"""
    for pattern in (GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN):
        merges = textbook_merges(CORPUS[150_000:162_000] + " ".join(ADVERSARIAL[:-1]) * 3, 520, pattern)
        tokenizer = with_merges(pattern, merges)
        for text in ADVERSARIAL:
            got = tokenizer.encode(text)
            expect_that(got, same_ids, oracle(pattern, merges, {}).encode(text),
                        call=f"encode({text[:40]!r}...) with a 520-token vocabulary", expected=TIKTOKEN_IDS, hint=HINT)
            expect_equal(tokenizer.decode(got), text, call=f"decode(encode({text[:40]!r}...))", hint="exact round trip")


def test_ids_as_numpy_arrays():
    """decode accepts a numpy array of ids, for both tokenizers, and CharTokenizer refuses a negative one"""
    merges = textbook_merges("low lower lowest " * 5, 270, GPT4_SPLIT_PATTERN)
    tokenizer = with_merges(GPT4_SPLIT_PATTERN, merges)
    ids = replay_encode("lowest low", merges, GPT4_SPLIT_PATTERN)
    expect_equal(tokenizer.decode(np.array(ids, dtype=np.int64)), "lowest low",
                 call="tokenizer.decode(np.array(<the ids of 'lowest low'>))", hint="convert each id with int(...)")
    chars = CharTokenizer("abc")
    expect_equal(chars.decode(np.array([2, 1, 0])), "cba", call="CharTokenizer('abc').decode(np.array([2, 1, 0]))",
                 hint="any sequence of ints")
    expect_raises(ValueError, lambda: chars.decode(np.array([1, -3])), call="CharTokenizer('abc').decode(np.array([1, -3]))",
                  hint="negative ids are not tokens, even though Python lists accept index -3")


def test_save_load_gpt2_pattern_unicode_specials(tmp_path):
    """Save/load keeps GPT-2's pattern and non-ASCII special tokens"""
    merges = textbook_merges(CORPUS[60_000:70_000] + "naïve café 日本 " * 10, 320, GPT2_SPLIT_PATTERN)
    specials = {"<|début|>": 320, "<|終|>": 321}
    tokenizer = with_merges(GPT2_SPLIT_PATTERN, merges, specials)
    path = tmp_path / "bpe.json"
    tokenizer.save(path)
    loaded = BPETokenizer.load(str(path))
    text = "<|début|>naïve café 日本<|終|> it's 2024"
    expect_equal(loaded.pattern, GPT2_SPLIT_PATTERN, call="BPETokenizer.load(path).pattern", hint="save the pattern")
    expect_that(loaded.encode(text, allowed_special="all"), same_ids,
                oracle(GPT2_SPLIT_PATTERN, merges, specials).encode(text, allowed_special="all"),
                call=f"BPETokenizer.load(path).encode({text!r}, allowed_special='all')", expected=TIKTOKEN_IDS,
                hint="merges, pattern and special tokens all survive the file")
    expect_equal(loaded.decode(loaded.encode(text, allowed_special="all")), text, call="decode after load",
                 hint="special tokens decode to their text")


def test_register_special_tokens_again():
    """A special token registered again may move to a free id; another special token's id is taken"""
    tokenizer = with_merges(GPT4_SPLIT_PATTERN, {(97, 97): 256})
    tokenizer.register_special_tokens({"<|a|>": 257, "<|b|>": 258})
    tokenizer.register_special_tokens({"<|a|>": 259})
    expect_equal((dict(tokenizer.special_tokens), tokenizer.vocab_size), ({"<|a|>": 259, "<|b|>": 258}, 259),
                 call="register {'<|a|>': 257, '<|b|>': 258}, then {'<|a|>': 259}: (special_tokens, vocab_size)",
                 hint="registering a token again replaces its id; the old id is free again")
    expect_equal(tokenizer.decode([256, 259, 258]), "aa<|a|><|b|>", call="tokenizer.decode([256, 259, 258])",
                 hint="rebuild vocab from the merges and the current special tokens")
    expect_raises(ValueError, lambda: tokenizer.register_special_tokens({"<|d|>": 258}),
                  call="register_special_tokens({'<|d|>': 258}) when 258 is '<|b|>'",
                  hint="another special token's id is taken too")
