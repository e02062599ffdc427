"""Hidden checks for module 10 (tokenization): edge cases beyond the visible checkpoint."""

from __future__ import annotations

import numpy as np
import tiktoken
from hypothesis import given
from hypothesis import strategies as st
from pydoc_data.topics import topics

from grader.expect import expect_equal, expect_raises
# the checkpoint's textbook trainer: both files test against one oracle
from tests.checkpoints.test_10_tokenization import textbook_merges
from tinytorch.tokenization import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN, BPETokenizer, CharTokenizer

CORPUS = "".join(topics[name] for name in sorted(topics))


def oracle(tokenizer: BPETokenizer) -> tiktoken.Encoding:
    return tiktoken.Encoding(name="student", pat_str=tokenizer.pattern, mergeable_ranks=tokenizer.mergeable_ranks(),
                             special_tokens=tokenizer.special_tokens)


# Few letters and short words: counts tie all the time, and chunks collapse into single tokens.
tie_heavy_text = st.lists(st.text(alphabet="abcé", min_size=1, max_size=6), min_size=1, max_size=12).map(" ".join)


@given(tie_heavy_text, st.integers(256, 290), st.sampled_from([GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN]))
def test_training_ties_and_early_stop_match_textbook(text, vocab_size, pattern):
    """On tie-heavy tiny texts, training equals the textbook loop, including stopping when nothing is left"""
    tokenizer = BPETokenizer(pattern)
    tokenizer.train(text, vocab_size)
    expected = textbook_merges(text, vocab_size, pattern)
    expect_equal(list(tokenizer.merges.items()), list(expected.items()), call=f"BPETokenizer(...).train({text!r}, {vocab_size}).merges",
                 hint="ties go to the pair seen first in the text; when every chunk is a single token, stop")
    expect_equal(tokenizer.vocab_size, 256 + len(expected), call="vocab_size after training",
                 hint="256 bytes + the merges actually learned")


def test_allowed_special_set_like_tiktoken():
    """allowed_special as a set encodes those specials and still refuses the others, like tiktoken"""
    tokenizer = BPETokenizer()
    tokenizer.train(CORPUS[:8000], 300)
    tokenizer.register_special_tokens({"<|endoftext|>": 300, "<|im_start|>": 301, "<|im_end|>": 302})
    encoding = oracle(tokenizer)
    text = "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>"
    allowed = {"<|im_start|>", "<|im_end|>"}
    expect_equal(tokenizer.encode(text, allowed_special=allowed), encoding.encode(text, allowed_special=allowed),
                 call=f"tokenizer.encode({text!r}, allowed_special={allowed})",
                 hint="specials in the set become their ids; the text between is ordinary")
    expect_raises(ValueError, lambda: tokenizer.encode(text + "<|endoftext|>", allowed_special=allowed),
                  call=f"tokenizer.encode(<text with <|endoftext|>>, allowed_special={allowed})",
                  message_contains="<|endoftext|>", hint="a special token not in the set is still refused")


def test_larger_vocabulary_adversarial_text():
    """A 700-token vocabulary matches tiktoken on whitespace, case, and script edge cases, both patterns"""
    texts = [
        "\n\n\n    \n\t \n  x  \r\n\r\r\n", "   ", " \n", "a\u2028b\u2029c\x85d", "\x1c\x1d\x1e\x1f x",
        "'S'LL'VE'M'D 'ſ 'K", "ÉCOLE école İstanbul ǅemal", "1234567890123 ٠١٢٣٤٥٦٧٨٩ ①②③",
        "x" * 300, " " * 100 + "y", "🏳️‍🌈👨‍👩‍👧‍👦 café", "\ufeffBOM\u200d\u200c", CORPUS[200_000:205_000],
    ]
    for pattern in (GPT4_SPLIT_PATTERN, GPT2_SPLIT_PATTERN):
        tokenizer = BPETokenizer(pattern)
        tokenizer.train(CORPUS[150_000:190_000] + " ".join(texts[:-1]) * 3, 700)
        encoding = oracle(tokenizer)
        for text in texts:
            got = tokenizer.encode(text)
            expect_equal(got, encoding.encode(text), call=f"encode({text[:40]!r}...) with a 700-token vocabulary",
                         hint="split with the pattern, then merge by the rank of the concatenated bytes")
            expect_equal(tokenizer.decode(got), text, call=f"decode(encode({text[:40]!r}...))", hint="exact round trip")


def test_ids_as_numpy_arrays_and_bad_ids():
    """decode accepts a numpy array of ids, and CharTokenizer refuses an id outside its vocabulary"""
    tokenizer = BPETokenizer()
    tokenizer.train("low lower lowest " * 5, 270)
    ids = tokenizer.encode("lowest low")
    expect_equal(tokenizer.decode(np.array(ids, dtype=np.int64)), "lowest low",
                 call="tokenizer.decode(np.array(ids))", hint="convert each id with int(...)")
    chars = CharTokenizer("abc")
    expect_equal(chars.decode(np.array([2, 1, 0])), "cba", call="CharTokenizer('abc').decode(np.array([2, 1, 0]))",
                 hint="any sequence of ints")
    expect_raises(ValueError, lambda: chars.decode([0, 3]), call="CharTokenizer('abc').decode([0, 3])",
                  hint="3 is outside the vocabulary (0..2)")
    expect_raises(ValueError, lambda: chars.decode([-1]), call="CharTokenizer('abc').decode([-1])",
                  hint="negative ids are not tokens, even though Python lists accept index -1")


def test_save_load_gpt2_pattern_unicode_specials(tmp_path):
    """Save/load keeps GPT-2's pattern and non-ASCII special tokens, and retraining forgets old specials"""
    tokenizer = BPETokenizer(GPT2_SPLIT_PATTERN)
    tokenizer.train(CORPUS[60_000:70_000] + "naïve café 日本 " * 10, 320)
    tokenizer.register_special_tokens({"<|début|>": 320, "<|終|>": 321})
    path = tmp_path / "bpe.json"
    tokenizer.save(path)
    loaded = BPETokenizer.load(str(path))
    text = "<|début|>naïve café 日本<|終|> it's 2024"
    expect_equal(loaded.pattern, GPT2_SPLIT_PATTERN, call="BPETokenizer.load(path).pattern", hint="save the pattern")
    expect_equal(loaded.encode(text, allowed_special="all"), oracle(tokenizer).encode(text, allowed_special="all"),
                 call=f"BPETokenizer.load(path).encode({text!r}, allowed_special='all')",
                 hint="merges, pattern and special tokens all survive the file")
    expect_equal(loaded.decode(loaded.encode(text, allowed_special="all")), text, call="decode after load",
                 hint="special tokens decode to their text")
    tokenizer.train("aaabdaaabac", 258)
    expect_equal((tokenizer.vocab_size, dict(tokenizer.special_tokens)), (258, {}),
                 call="(vocab_size, special_tokens) after training again",
                 hint="train starts from scratch: new merges, no special tokens")
