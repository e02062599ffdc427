"""Checkpoint 10: Tokenization.

CharTokenizer; the BPE building blocks (count_pairs, merge_pair, bpe_encode_chunk); training
on a hand-checkable example, against the textbook algorithm (both split patterns) and within
chunk boundaries; and tiktoken as the oracle: a tiktoken.Encoding built from the same
vocabulary must encode exactly like your tokenizer on prose, code, Unicode, whitespace, digits,
special tokens, random text drawn by Hypothesis, and a hand-made vocabulary where replaying the
merges would give other ids. Round trips, broken characters, unknown ids, special-token safety,
and save/load complete it.

The encoding tests give your tokenizer its vocabulary (merges learned here by the textbook
loop, set as `tokenizer.merges` and turned into `vocab` by your `_rebuild()`), so they test your
encoder whatever your training does; training has tests of its own.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
import regex
import tiktoken
from hypothesis import example, given
from hypothesis import strategies as st
from pydoc_data.topics import topics

from grader.expect import expect_equal, expect_raises, expect_that
from tests.checkpoints.common import ranks_of
from tinytorch.tokenization import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    bpe_encode_chunk,
    count_pairs,
    merge_pair,
)

CORPUS = "".join(topics[name] for name in sorted(topics))  # the CPython docs, ~465k characters
MULTILINGUAL = ("déjà vu, café, naïve, Ærøskøbing; 日本語のテキストです。Привет, мир! "
                "🙂🙂 👍🏽 e\u0301 “quoted” — done…\n")
TRAIN_TEXT = CORPUS[:30_000] + MULTILINGUAL * 20  # merges inside multi-byte characters too
VOCAB = 360
SPECIALS = {"<|endoftext|>": VOCAB, "<|fim_middle|>": VOCAB + 1}
PATTERNS = {"GPT4_SPLIT_PATTERN": GPT4_SPLIT_PATTERN, "GPT2_SPLIT_PATTERN": GPT2_SPLIT_PATTERN}

SAMPLES = {
    "prose": "The quick brown fox jumps over the lazy dog. It's what they'd said: \"We're here, "
             "you'll see!\" DON'T SHOUT. Tokenizers split text; models read the ids.",
    "code": "def f(x_count: int = 10) -> list[str]:\n    \"\"\"Docstring.\"\"\"\n    if x_count >= 0x1F:\n"
            "        return [str(i) for i in range(x_count)]  # comment\n\treturn {'a': 1, **kw}\r\n",
    "unicode": "déjà vu — café naïve; 日本語のテキスト, Привет мир, 🙂👍🏽🇫🇷, e\u0301 a\u0308\u0323, "
               "ﬁ ½ ² ſ K Å, \u200b\ufeff, 한국어, עברית, हिन्दी",
    "whitespace": "  leading\n\n\n   indented\t\ttabs  \r\n\r\n trailing   \n \u00a0\u3000 \u2028x \x0c\x0b  ",
    "digits": "0 7 42 123 1234 12345678901 3.14159 1,000,000 2024-05-01 0x7fff 1e-10 ٣٤٥ ５６ 1\u00bd",
    "contractions": "'s 'S 'll 'LL 'Ve 'd it's IT'S we'RE don't 'ſ ''t can't've",
    "empty": "",
}

HINT_ENCODE = ("split with regex.findall(self.pattern, text); encode each chunk's UTF-8 bytes with "
               "bpe_encode_chunk: a whole chunk that is a token is that token, otherwise merge the adjacent "
               "pair whose concatenated bytes has the lowest rank, leftmost on ties, until none is a token")
TIKTOKEN_IDS = "the ids of a tiktoken.Encoding built from the same vocabulary"


def short(text: str, limit: int = 70) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


# -- the textbook algorithm: makes vocabularies and inputs, independently of your code --------

def merged(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Section 4's merge: left to right, no overlaps."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def textbook_merges(text: str, vocab_size: int, pattern: str) -> dict[tuple[int, int], int]:
    """Section 4's loop within the chunks of `pattern`, recounting every pair for every merge.

    Each distinct chunk is kept once with its count (section 6's first observation, which changes
    no count): the pairs are counted in order of first appearance, so the first maximum is the
    pair seen first in the text, as in the lesson.
    """
    chunks = {}
    for chunk in regex.findall(pattern, text):
        chunks[chunk] = chunks.get(chunk, 0) + 1
    words, weights = [list(chunk.encode("utf-8")) for chunk in chunks], list(chunks.values())
    merges = {}
    for new_id in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for ids, weight in zip(words, weights):
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + weight
        if not counts:
            break
        pair = max(counts, key=counts.get)  # first maximum in insertion order: the pair seen first
        merges[pair] = new_id
        words = [merged(ids, pair, new_id) if pair[0] in ids else ids for ids in words]
    return merges


def replay_encode(text: str, merges: dict[tuple[int, int], int], pattern: str) -> list[int]:
    """Valid token ids for `text` (replaying the merges): inputs for the decoding tests."""
    ids = []
    for chunk in regex.findall(pattern, text):
        part = list(chunk.encode("utf-8"))
        while len(part) > 1:
            pair = min(zip(part, part[1:]), key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            part = merged(part, pair, merges[pair])
        ids += part
    return ids


def with_merges(pattern: str, merges: dict[tuple[int, int], int], specials: dict[str, int] | None = None) -> BPETokenizer:
    """Your BPETokenizer holding the given merges: set `merges`, then `_rebuild()` (section 11)."""
    tokenizer = BPETokenizer(pattern)
    tokenizer.merges = dict(merges)
    tokenizer._rebuild()
    if specials:
        tokenizer.register_special_tokens(specials)
    return tokenizer


def oracle(pattern: str, merges: dict[tuple[int, int], int], specials: dict[str, int]) -> tiktoken.Encoding:
    return tiktoken.Encoding(name="oracle", pat_str=pattern, mergeable_ranks=ranks_of(merges), special_tokens=specials)


class Vocabulary(NamedTuple):
    tokenizer: BPETokenizer    # yours, holding `merges`
    encoding: tiktoken.Encoding  # tiktoken, built from the same merges
    merges: dict[tuple[int, int], int]


def vocabulary(pattern: str) -> Vocabulary:
    merges = textbook_merges(TRAIN_TEXT, VOCAB, pattern)
    return Vocabulary(with_merges(pattern, merges, SPECIALS), oracle(pattern, merges, SPECIALS), merges)


@pytest.fixture(scope="module")
def gpt4() -> Vocabulary:
    return vocabulary(GPT4_SPLIT_PATTERN)


@pytest.fixture(scope="module")
def gpt2() -> Vocabulary:
    return vocabulary(GPT2_SPLIT_PATTERN)


# Text that exercises the learned merges: pieces of the training corpus glued with Unicode.
PIECES = sorted(set(regex.findall(GPT4_SPLIT_PATTERN, CORPUS[:3000])))[:200] + [
    "é", "日本", "語", "🙂", "👍🏽", "\u0301", "\n", "\n\n", "   ", "\t", "'s", "'LL", "123", "4567", " ", "<|", "|>",
]
corpus_like_text = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
unicode_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)  # no lone surrogates


# -- predicates: judged on the trusted side over the values your code produced ---------------

class Difference(Exception):
    """Where two sequences part: a predicate raises it so that the failure message shows the place."""


def _first_difference(got: list, expected: list, what: str) -> bool:
    if got == expected:
        return True
    k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    raise Difference(f"{len(got)} {what}, expected {len(expected)}; the first difference is at position {k}: "
                     f"got {got[k:k + 6]}, expected {expected[k:k + 6]}")


def same_ids(got, expected: list[int]) -> bool:
    """The same token ids (any sequence of ints), in the same order."""
    return _first_difference([int(i) for i in got], [int(i) for i in expected], "ids")


def same_merges(got, expected: list) -> bool:
    """The same merges ((left, right), new_id), in the same order."""
    plain = [((int(left), int(right)), int(new_id)) for (left, right), new_id in got]
    return _first_difference(plain, [((int(a), int(b)), int(c)) for (a, b), c in expected], "merges")


def at_least(value, minimum: int) -> bool:
    return int(value) >= minimum


def tokens_inside_chunks(tokens, chunks: list[bytes]) -> bool:
    """Every learned token occurs inside some single chunk of the text."""
    crossing = [token for token in tokens if not any(token in chunk for chunk in chunks)]
    if crossing:
        raise Difference(f"these tokens span a chunk boundary: {crossing[:5]}")
    return bool(tokens)


def vocab_joins_merges(value) -> bool:
    """(merges, vocab): vocab[new_id] == vocab[left] + vocab[right] for every merge, and 256 single bytes."""
    merges, vocab = value
    bytes_ok = all(vocab[i] == bytes([i]) for i in range(256))
    broken = [(pair, new_id) for pair, new_id in merges if vocab[new_id] != vocab[pair[0]] + vocab[pair[1]]]
    if broken:
        raise Difference(f"merges whose vocab entry is not the two halves joined: {broken[:3]}")
    return bytes_ok and bool(merges)


# -- CharTokenizer -------------------------------------------------------------------------

def test_char_tokenizer_vocabulary():
    """CharTokenizer's vocabulary is the sorted set of characters, and ids are positions in it"""
    tokenizer = CharTokenizer("hello world")
    expect_equal(list(tokenizer.chars), [" ", "d", "e", "h", "l", "o", "r", "w"], call="CharTokenizer('hello world').chars",
                 hint="sorted(set(text)): sorting makes the ids the same on every run")
    expect_equal(tokenizer.vocab_size, 8, call="CharTokenizer('hello world').vocab_size", hint="len(chars)")
    expect_equal(list(tokenizer.encode("hello")), [3, 2, 4, 4, 5], call="CharTokenizer('hello world').encode('hello')",
                 hint="a character's id is its index in chars")
    expect_equal(tokenizer.decode([7, 5, 6, 4, 1]), "world", call="CharTokenizer('hello world').decode([7, 5, 6, 4, 1])",
                 hint="join chars[i] for every id")


@given(st.text(min_size=1, max_size=40))
def test_char_tokenizer_round_trip(text):
    """CharTokenizer decodes its own encoding back to the text, for any characters"""
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)
    expect_equal([int(i) for i in ids], [sorted(set(text)).index(ch) for ch in text],
                 call=f"CharTokenizer({short(text)}).encode(same text)", hint="one id per character, its index in chars")
    expect_equal(tokenizer.decode(ids), text, call=f"CharTokenizer({short(text)}).decode(encode(text))",
                 hint="decode must undo encode exactly")


def test_char_tokenizer_unknown_character_and_id():
    """CharTokenizer raises a ValueError for a character or an id outside its vocabulary, -1 included"""
    tokenizer = CharTokenizer("abc")
    expect_equal(list(tokenizer.encode("cab")), [2, 0, 1], call="CharTokenizer('abc').encode('cab')",
                 hint="ids are positions in the sorted vocabulary")
    expect_raises(ValueError, lambda: tokenizer.encode("abž"), call="CharTokenizer('abc').encode('abž')",
                  message_contains="ž", hint="raise ValueError and put the unknown character in the message")
    expect_equal(tokenizer.decode([2, 2, 0]), "cca", call="CharTokenizer('abc').decode([2, 2, 0])",
                 hint="chars[i] for every id")
    expect_raises(ValueError, lambda: tokenizer.decode([0, 3]), call="CharTokenizer('abc').decode([0, 3])",
                  hint="valid ids are 0 .. vocab_size - 1: 3 is one past the end")
    expect_raises(ValueError, lambda: tokenizer.decode([1, -1]), call="CharTokenizer('abc').decode([1, -1])",
                  hint="check 0 <= id < vocab_size: a Python list would quietly read chars[-1], the last character")


# -- the building blocks -------------------------------------------------------------------

def test_count_pairs_counts_overlaps_in_order():
    """count_pairs counts overlapping pairs, in the order first seen, and can add to existing counts"""
    ids = list(b"aaabdaaabac")
    counts = count_pairs(ids)
    expected = {(97, 97): 4, (97, 98): 2, (98, 100): 1, (100, 97): 1, (98, 97): 1, (97, 99): 1}
    expect_equal(dict(counts), expected, call="count_pairs(list(b'aaabdaaabac'))",
                 hint="every adjacent pair zip(ids, ids[1:]) counts, so 'aaa' holds (a, a) twice")
    expect_equal(list(counts), list(expected), call="list(count_pairs(list(b'aaabdaaabac')))",
                 hint="insert pairs in the order they are first seen: that order breaks ties in training")
    more = count_pairs([1, 2, 1, 2], {(1, 2): 5})
    expect_equal(dict(more), {(1, 2): 7, (2, 1): 1}, call="count_pairs([1, 2, 1, 2], {(1, 2): 5})",
                 hint="when counts is given, add into it (and return it)")


@given(st.lists(st.integers(0, 3), max_size=20), st.tuples(st.integers(0, 3), st.integers(0, 3)))
@example([97, 97, 97], (97, 97))
@example([1, 2, 1, 2, 1], (1, 2))
def test_merge_pair_matches_bytes_replace(ids, pair):
    """merge_pair replaces a pair left to right without overlaps, like bytes.replace"""
    new_id = 200
    expect_equal([int(i) for i in merge_pair(list(ids), pair, new_id)],
                 list(bytes(ids).replace(bytes(pair), bytes([new_id]))),  # the same rule, done by Python
                 call=f"merge_pair({ids}, {pair}, {new_id})",
                 hint="scan left to right; on a match append new_id and skip both ids, so 'aaa' -> [new, a]")


@st.composite
def handmade_vocabularies(draw):
    """256 bytes plus tokens glued from earlier ones at random: not what training would learn."""
    ranks = {bytes([i]): i for i in range(256)}
    tokens = [b"a", b"b", b"c"]
    for _ in range(draw(st.integers(1, 12))):
        glued = draw(st.sampled_from(tokens)) + draw(st.sampled_from(tokens))
        if glued not in ranks:
            ranks[glued] = len(ranks)
            tokens.append(glued)
    return ranks


def test_bpe_encode_chunk_by_rank_of_bytes():
    """bpe_encode_chunk looks up the concatenated bytes' rank, as in the lesson's "abc" example"""
    ranks = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"bc": 257, b"abc": 258}
    for piece, expected in ((b"abc", [258]), (b"aabcc", [97, 258, 99]), (b"xbcab", [120, 257, 256]),
                            (b"abcbc", [258, 257]), (b"cba", [99, 98, 97])):
        expect_equal([int(i) for i in bpe_encode_chunk(piece, ranks)], expected,
                     call=f"bpe_encode_chunk({piece!r}, ranks with ab=256, bc=257, abc=258)",
                     hint="merge the adjacent pair whose concatenated bytes has the lowest rank; repeat until no "
                          "adjacent concatenation is in ranks")
    # "abcd" is a token, but merging by rank would make "bc" first and never reach it.
    ranks = {bytes([i]): i for i in range(256)} | {b"bc": 256, b"ab": 257, b"cd": 258, b"abcd": 259}
    for piece, expected in ((b"abcd", [259]), (b"abcdabcd", [97, 256, 100, 97, 256, 100])):
        expect_equal([int(i) for i in bpe_encode_chunk(piece, ranks)], expected,
                     call=f"bpe_encode_chunk({piece!r}, ranks with bc=256, ab=257, cd=258, abcd=259)",
                     hint="first look the whole chunk up: if its bytes are a token, that token is the answer "
                          "(tiktoken does this before merging)")


@given(handmade_vocabularies(), st.text(alphabet="abc", min_size=1, max_size=16))
def test_bpe_encode_chunk_matches_tiktoken_on_handmade_vocabularies(ranks, text):
    """bpe_encode_chunk gives tiktoken's ids for any vocabulary, not only trained ones"""
    extra = {token: rank for token, rank in ranks.items() if rank >= 256}
    expect_that(bpe_encode_chunk(text.encode("utf-8"), ranks), same_ids,
                tiktoken.Encoding(name="handmade", pat_str=r"[\s\S]+", mergeable_ranks=ranks,
                                  special_tokens={}).encode_ordinary(text),
                call=f"bpe_encode_chunk({text.encode()!r}, ranks with {extra})", expected=TIKTOKEN_IDS,
                hint="a whole piece that is a token is that token; otherwise merge the adjacent pair whose "
                     "concatenated bytes has the lowest rank, the leftmost one on a tie ('aaa' with 'aa' "
                     "-> ['aa', 'a']), until no adjacent concatenation is in ranks")


# -- training ------------------------------------------------------------------------------

def test_train_tiny_example():
    """Training on "aaabdaaabac" learns the merges of the lesson's table, ties to the pair seen first"""
    tokenizer = BPETokenizer()
    tokenizer.train("aaabdaaabac", 260)
    expected = {(97, 97): 256, (256, 97): 257, (257, 98): 258, (258, 100): 259}
    expect_equal(dict(tokenizer.merges), expected, call="BPETokenizer().train('aaabdaaabac', 260).merges",
                 hint="count pairs, merge the most frequent; on a tie (step 1: (256, a) vs (a, b)) the pair seen "
                      "first in the text wins")
    expect_equal(list(tokenizer.merges.values()), [256, 257, 258, 259], call="list(tokenizer.merges.values())",
                 hint="merge i creates id 256 + i; keep the dict in merge order")
    expect_equal(tokenizer.vocab[259], b"aaabd", call="tokenizer.vocab[259]",
                 hint="vocab[new_id] = vocab[left] + vocab[right]")
    expect_equal(tokenizer.vocab_size, 260, call="tokenizer.vocab_size", hint="256 bytes + 4 merges")
    # " ab" is one chunk and "ab" another: after two merges both are single tokens
    tokenizer.train("ab ab", 300)
    expect_equal((dict(tokenizer.merges), tokenizer.vocab_size), ({(97, 98): 256, (32, 256): 257}, 258),
                 call="BPETokenizer().train('ab ab', 300): (merges, vocab_size)",
                 hint="when every chunk is a single token there is nothing left to merge: stop early, "
                      "with fewer tokens than asked for")


def test_train_vocab_size_and_minimum():
    """train learns vocab_size - 256 merges with consistent vocab, and vocab_size < 256 is a ValueError"""
    tokenizer = BPETokenizer()
    tokenizer.train(CORPUS[:5000], 300)
    expect_equal(tokenizer.vocab_size, 300, call="BPETokenizer().train(CORPUS[:5000], 300); .vocab_size",
                 hint="256 byte tokens + one token per merge")
    expect_equal(list(tokenizer.merges.values()), list(range(256, 300)), call="list(tokenizer.merges.values())",
                 hint="merges in order, ids 256, 257, ...")
    expect_that((list(tokenizer.merges.items()), dict(tokenizer.vocab)), vocab_joins_merges,
                call="(tokenizer.merges, tokenizer.vocab) after train(CORPUS[:5000], 300)",
                expected="vocab[i] == bytes([i]) for i < 256, and vocab[new_id] == vocab[left] + vocab[right] "
                         "for every merge", hint="ids 0-255 are the single bytes; a merge joins the bytes of its halves")
    expect_raises(ValueError, lambda: BPETokenizer().train("some text", 255),
                  call="BPETokenizer().train('some text', 255)", hint="the 256 byte tokens are always there")


@pytest.mark.parametrize("pattern_name", list(PATTERNS))
def test_train_matches_textbook_algorithm(pattern_name):
    """Your (faster) training learns exactly the merges of the textbook loop, in the same order, with either pattern"""
    pattern = PATTERNS[pattern_name]
    text = CORPUS[40_000:44_000] + MULTILINGUAL
    tokenizer = BPETokenizer(pattern)
    tokenizer.train(text, 320)
    expect_that(list(tokenizer.merges.items()), same_merges, list(textbook_merges(text, 320, pattern).items()),
                call=f"BPETokenizer({pattern_name}).train(<4 KB of CPython docs>, 320).merges",
                expected="the textbook loop's 64 merges ((left, right), new_id), in order",
                hint="split with self.pattern; count pairs within chunks (each distinct chunk times its count), merge "
                     "the most frequent, ties to the pair seen first in the text; update the counts of the chunks "
                     "that changed")


def test_merges_never_cross_chunk_boundaries():
    """No learned token spans two chunks of the split pattern (e.g. a word and the space after it)"""
    text = "hello world. " * 40 + "x=1;\n" * 30
    tokenizer = BPETokenizer()
    tokenizer.train(text, 290)
    expect_that(tokenizer.vocab_size, at_least, 261, call="BPETokenizer().train('hello world. ' * 40 + ..., 290).vocab_size",
                expected="more than 260 tokens", hint="train must learn merges")
    expect_that([tokenizer.vocab[i] for i in tokenizer.merges.values()], tokens_inside_chunks,
                [chunk.encode("utf-8") for chunk in set(regex.findall(GPT4_SPLIT_PATTERN, text))],
                call="the learned tokens of BPETokenizer().train('hello world. ' * 40 + 'x=1;\\n' * 30, 290)",
                expected="every learned token inside one chunk of regex.findall(pattern, text)",
                hint="split the text with regex.findall(pattern, text) first and count pairs only inside chunks")


# -- encoding: tiktoken is the oracle --------------------------------------------------------

def test_encode_by_rank_not_by_replaying_merges():
    """encode follows tiktoken's rank rule on a hand-made vocabulary where replaying the merges gives other ids"""
    # the lesson's example: "ab" = 256, "bc" = 257, and "abc" = 258 recorded as (a, "bc")
    merges = {(97, 98): 256, (98, 99): 257, (97, 257): 258}
    tokenizer = with_merges(GPT4_SPLIT_PATTERN, merges)
    for text in ("abc", "abcx", "xabcabc ab bc abcd"):
        expect_that(tokenizer.encode(text), same_ids, oracle(GPT4_SPLIT_PATTERN, merges, {}).encode(text),
                    call=f"encode({text!r}) with merges (a, b) -> 256, (b, c) -> 257, (a, 257) -> 258",
                    expected=TIKTOKEN_IDS,
                    hint="replaying merges gives 'ab' + 'c' = [256, 99] for 'abc', but tiktoken looks up bytes: "
                         "the whole chunk 'abc' is token 258, and in 'abcx' the concatenation 'ab' + 'c' is a "
                         "token too. Encode each chunk with bpe_encode_chunk(chunk bytes, ranks)")


@pytest.mark.parametrize("name", list(SAMPLES))
def test_encode_matches_tiktoken(gpt4, name):
    """encode gives exactly tiktoken's ids on the same vocabulary"""
    tokenizer, encoding, _ = gpt4
    text = SAMPLES[name]
    expect_that(tokenizer.encode(text), same_ids, encoding.encode(text), call=f"tokenizer.encode({short(text)})",
                expected=TIKTOKEN_IDS, hint=HINT_ENCODE)
    expect_that(tokenizer.encode_ordinary(text), same_ids, encoding.encode_ordinary(text),
                call=f"tokenizer.encode_ordinary({short(text)})", expected=TIKTOKEN_IDS, hint=HINT_ENCODE)


@given(text=unicode_text)
def test_encode_matches_tiktoken_on_random_unicode(gpt4, text):
    """encode matches tiktoken on random Unicode text"""
    tokenizer, encoding, _ = gpt4
    expect_that(tokenizer.encode(text), same_ids, encoding.encode(text), call=f"tokenizer.encode({short(text)})",
                expected=TIKTOKEN_IDS, hint=HINT_ENCODE)


@given(text=corpus_like_text)
def test_encode_matches_tiktoken_on_corpus_like_text(gpt4, text):
    """encode matches tiktoken on text glued from corpus words, where many merges apply"""
    tokenizer, encoding, _ = gpt4
    expect_that(tokenizer.encode(text), same_ids, encoding.encode(text), call=f"tokenizer.encode({short(text)})",
                expected=TIKTOKEN_IDS, hint=HINT_ENCODE)


def test_encode_matches_tiktoken_on_unseen_corpus_text(gpt4):
    """encode matches tiktoken on 20 KB of documentation it was not trained on"""
    tokenizer, encoding, _ = gpt4
    text = CORPUS[100_000:120_000]
    expect_that(tokenizer.encode(text), same_ids, encoding.encode(text), call="tokenizer.encode(CORPUS[100_000:120_000])",
                expected=TIKTOKEN_IDS, hint=HINT_ENCODE)


@given(text=st.one_of(corpus_like_text, unicode_text))
@example(text="".join(SAMPLES.values()))
def test_gpt2_pattern_matches_tiktoken(gpt2, text):
    """With GPT-2's split pattern too, encode matches tiktoken"""
    tokenizer, encoding, _ = gpt2
    expect_that(tokenizer.encode(text), same_ids, encoding.encode(text),
                call=f"BPETokenizer(GPT2_SPLIT_PATTERN) with merges, .encode({short(text)})", expected=TIKTOKEN_IDS,
                hint=HINT_ENCODE + "; use the tokenizer's own pattern, not always GPT-4's")


# -- decoding ------------------------------------------------------------------------------

@given(text=unicode_text)
@example(text="".join(SAMPLES.values()))
def test_round_trip(gpt4, text):
    """decode(encode(text)) gives the text back exactly, and decode_bytes gives its UTF-8 bytes"""
    tokenizer, _, _ = gpt4
    ids = tokenizer.encode(text)
    expect_equal(tokenizer.decode_bytes(ids), text.encode("utf-8"), call=f"decode_bytes(encode({short(text)}))",
                 hint="join vocab[i] for every id")
    expect_equal(tokenizer.decode(ids), text, call=f"decode(encode({short(text)}))",
                 hint="decode the joined bytes as UTF-8")


def test_decode_broken_characters_like_tiktoken(gpt4):
    """Decoding part of a character gives U+FFFD, exactly like tiktoken"""
    tokenizer, encoding, merges = gpt4
    for text in ("é", "日", "🙂"):
        cut = list(text.encode("utf-8"))[:-1]
        expect_equal(tokenizer.decode(cut), "\ufffd", call=f"tokenizer.decode({cut})  (the bytes of {text!r} but the last)",
                     hint="bytes.decode('utf-8', errors='replace')")
        expect_equal(tokenizer.decode_bytes(cut), bytes(cut), call=f"tokenizer.decode_bytes({cut})",
                     hint="decode_bytes keeps every byte")
    ids = replay_encode(MULTILINGUAL, merges, GPT4_SPLIT_PATTERN)
    for k in range(len(ids) + 1):
        expect_equal(tokenizer.decode(ids[:k]), encoding.decode(ids[:k]),
                     call=f"tokenizer.decode(<the ids of {short(MULTILINGUAL, 30)}>[:{k}])",
                     hint="a prefix of the ids can end inside a character: replace the broken bytes with U+FFFD")


def test_decode_refuses_unknown_ids(gpt4):
    """decode turns special ids into their text and refuses an id that is not in the vocabulary"""
    tokenizer, _, _ = gpt4
    expect_equal(tokenizer.decode([72, 105, VOCAB]), "Hi<|endoftext|>", call=f"tokenizer.decode([72, 105, {VOCAB}])",
                 hint="vocab holds every token's bytes, the special tokens' too")
    expect_raises(ValueError, lambda: tokenizer.decode([72, VOCAB + 2]), call=f"tokenizer.decode([72, {VOCAB + 2}])",
                  message_contains=str(VOCAB + 2),
                  hint="an id that is neither a byte, a merge nor a special token is a ValueError naming it")
    expect_raises(ValueError, lambda: tokenizer.decode_bytes([-1]), call="tokenizer.decode_bytes([-1])",
                  hint="-1 is not a token id")


# -- special tokens ------------------------------------------------------------------------

SPECIAL_TEXT = "Hello<|endoftext|>world <|fim_middle|>\n<|endoftext|><|endoftext|> done <|endof"


def test_special_tokens_allowed_all(gpt4):
    """allowed_special="all" encodes special tokens to their ids, like tiktoken"""
    tokenizer, encoding, _ = gpt4
    expect_equal(dict(tokenizer.special_tokens), SPECIALS, call="tokenizer.special_tokens after register_special_tokens",
                 hint="keep the {text: id} dict you were given")
    ids = tokenizer.encode(SPECIAL_TEXT, allowed_special="all")
    expect_that(ids, same_ids, encoding.encode(SPECIAL_TEXT, allowed_special="all"),
                call=f"tokenizer.encode({short(SPECIAL_TEXT)}, allowed_special='all')", expected=TIKTOKEN_IDS,
                hint="cut the text at special tokens; each is one id; encode the pieces between as ordinary text")
    expect_equal(tokenizer.decode(ids), SPECIAL_TEXT, call="tokenizer.decode(<those ids>)",
                 hint="vocab must hold the special tokens' text as bytes too")


def test_special_tokens_raise_by_default(gpt4):
    """By default, text containing a special token is a ValueError (no prompt injection)"""
    tokenizer, encoding, _ = gpt4
    plain = "end of text, but not <|special|>"
    expect_that(tokenizer.encode(plain), same_ids, encoding.encode(plain), call=f"tokenizer.encode({plain!r})",
                expected=TIKTOKEN_IDS, hint=HINT_ENCODE)
    expect_raises(ValueError, lambda: tokenizer.encode("user input <|endoftext|> more"),
                  call="tokenizer.encode('user input <|endoftext|> more')", message_contains="<|endoftext|>",
                  hint="the default allowed_special='none_raise' must refuse special-token text and name it")


def test_special_tokens_allowed_as_a_set(gpt4):
    """allowed_special as a set encodes those special tokens and still refuses the others, like tiktoken"""
    tokenizer, encoding, _ = gpt4
    text = "<|fim_middle|>def f():\n    return 1<|fim_middle|> <|endof"
    allowed = {"<|fim_middle|>"}
    expect_that(tokenizer.encode(text, allowed_special=allowed), same_ids, encoding.encode(text, allowed_special=allowed),
                call=f"tokenizer.encode({short(text)}, allowed_special={allowed})", expected=TIKTOKEN_IDS,
                hint="the special tokens in the set become their ids; the text between is ordinary")
    expect_raises(ValueError, lambda: tokenizer.encode(text + "<|endoftext|>", allowed_special=allowed),
                  call=f"tokenizer.encode(<that text> + '<|endoftext|>', allowed_special={allowed})",
                  message_contains="<|endoftext|>",
                  hint="a special token that is not in the set is still refused, as with the default")


def test_special_tokens_none_is_ordinary_text(gpt4):
    """allowed_special="none" encodes special-token text as ordinary text"""
    tokenizer, encoding, _ = gpt4
    expect_that(tokenizer.encode(SPECIAL_TEXT, allowed_special="none"), same_ids, encoding.encode_ordinary(SPECIAL_TEXT),
                call=f"tokenizer.encode({short(SPECIAL_TEXT)}, allowed_special='none')", expected=TIKTOKEN_IDS,
                hint="'none' is encode_ordinary: <, |, endoftext, ... are plain text")
    expect_that(tokenizer.encode_ordinary(SPECIAL_TEXT), same_ids, encoding.encode_ordinary(SPECIAL_TEXT),
                call=f"tokenizer.encode_ordinary({short(SPECIAL_TEXT)})", expected=TIKTOKEN_IDS, hint=HINT_ENCODE)


# The merges of the lesson's table: "aa" = 256, "aaa" = 257, "aaab" = 258, "aaabd" = 259.
TABLE_MERGES = {(97, 97): 256, (256, 97): 257, (257, 98): 258, (258, 100): 259}


def test_register_special_tokens():
    """register_special_tokens adds ids above the vocabulary and refuses an id that is taken; train forgets them"""
    tokenizer = with_merges(GPT4_SPLIT_PATTERN, TABLE_MERGES)
    tokenizer.register_special_tokens({"<|end|>": 260})
    expect_equal(tokenizer.vocab_size, 261, call="vocab_size with the 4 merges of the lesson's table and one special token",
                 hint="vocab_size counts bytes, merges and special tokens")
    expect_equal(tokenizer.decode([259, 260]), "aaabd<|end|>", call="tokenizer.decode([259, 260])",
                 hint="a special token decodes to its text")
    expect_equal(tokenizer.encode("a<|end|>", allowed_special="all"), [97, 260],
                 call="tokenizer.encode('a<|end|>', allowed_special='all')", hint="the special token is one id")
    expect_raises(ValueError, lambda: tokenizer.register_special_tokens({"<|oops|>": 258}),
                  call="register_special_tokens({'<|oops|>': 258}) when 258 is the merge 'aaab'",
                  hint="a special token's id must not collide with an existing token")
    tokenizer.train("aaabdaaabac", 258)
    expect_equal((tokenizer.vocab_size, dict(tokenizer.special_tokens)), (258, {}),
                 call="(vocab_size, special_tokens) after train('aaabdaaabac', 258) on that tokenizer",
                 hint="train starts from scratch: new merges, no special tokens (their ids may now be taken)")


def test_mergeable_ranks(gpt4):
    """mergeable_ranks maps every token's bytes to its id, without the special tokens"""
    tokenizer, _, merges = gpt4
    ranks = tokenizer.mergeable_ranks()
    expect_equal(len(ranks), VOCAB, call="len(tokenizer.mergeable_ranks())",
                 hint="256 bytes + the merges; special tokens are not mergeable")
    expect_equal(dict(ranks), ranks_of(merges), call="tokenizer.mergeable_ranks()",
                 hint="{vocab[i]: i} for every byte and merge token, not the special tokens")


# -- saving --------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["gpt4", "gpt2"])
def test_save_and_load(which, request, tmp_path):
    """A saved and loaded tokenizer has the same pattern, merges and specials and encodes identically"""
    tokenizer, encoding, merges = request.getfixturevalue(which)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    expect_equal(type(json.loads(path.read_text(encoding="utf-8"))).__name__, "dict", call="json.loads(<saved file>)",
                 hint="write the file with json, one object holding pattern, merges and special tokens")
    loaded = BPETokenizer.load(path)
    expect_equal(loaded.pattern, tokenizer.pattern, call=f"BPETokenizer.load(path).pattern ({which} vocabulary)",
                 hint="save the pattern and build the loaded tokenizer with it")
    expect_equal(list(loaded.merges.items()), list(merges.items()), call="BPETokenizer.load(path).merges",
                 hint="save the merges in order; JSON has no tuples, so rebuild (left, right) pairs when loading")
    expect_equal(dict(loaded.special_tokens), SPECIALS, call="BPETokenizer.load(path).special_tokens",
                 hint="save the special tokens")
    expect_equal(loaded.vocab_size, VOCAB + len(SPECIALS), call="BPETokenizer.load(path).vocab_size",
                 hint="rebuild vocab from the merges")
    for text in (*SAMPLES.values(), SPECIAL_TEXT):
        expect_that(loaded.encode(text, allowed_special="all"), same_ids, encoding.encode(text, allowed_special="all"),
                    call=f"BPETokenizer.load(path).encode({short(text)}, allowed_special='all')",
                    expected=TIKTOKEN_IDS, hint=HINT_ENCODE)
