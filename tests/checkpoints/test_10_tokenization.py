"""Checkpoint 10: Tokenization.

CharTokenizer; the BPE building blocks (count_pairs, merge_pair, bpe_encode_chunk); training
on a hand-checkable example, against the textbook algorithm and within chunk boundaries; and
tiktoken as the oracle: a tiktoken.Encoding built from your learned vocabulary must encode
exactly like your tokenizer on prose, code, Unicode, whitespace, digits, special tokens and
random text drawn by Hypothesis. Round trips, broken characters, special-token safety, and
save/load complete it.
"""

from __future__ import annotations

import json

import pytest
import regex
import tiktoken
from hypothesis import example, given
from hypothesis import strategies as st
from pydoc_data.topics import topics

from grader.expect import expect_equal, expect_raises, expect_true
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


def short(text: str, limit: int = 70) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def expect_same_ids(got, expected: list[int], *, call: str, hint: str = HINT_ENCODE) -> None:
    """Equal token id lists; a difference is shown from the first position where they differ."""
    got = [int(i) for i in got]
    if got != expected:
        k = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        expect_equal(got[k : k + 8], expected[k : k + 8], hint=hint,
                     call=f"{call}: ids from position {k}, the first difference ({len(got)} ids, expected {len(expected)})")
    expect_equal(got, expected, call=call, hint=hint)


def trained(pattern: str) -> tuple[BPETokenizer, tiktoken.Encoding]:
    """Your tokenizer trained on TRAIN_TEXT, and tiktoken built from its vocabulary."""
    tokenizer = BPETokenizer(pattern)
    tokenizer.train(TRAIN_TEXT, VOCAB)
    tokenizer.register_special_tokens(SPECIALS)
    encoding = tiktoken.Encoding(name="student", pat_str=tokenizer.pattern,
                                 mergeable_ranks=tokenizer.mergeable_ranks(),
                                 special_tokens=tokenizer.special_tokens)
    return tokenizer, encoding


@pytest.fixture(scope="module")
def gpt4():
    return trained(GPT4_SPLIT_PATTERN)


@pytest.fixture(scope="module")
def gpt2():
    return trained(GPT2_SPLIT_PATTERN)


# Text that exercises the learned merges: pieces of the training corpus glued with Unicode.
PIECES = sorted(set(regex.findall(GPT4_SPLIT_PATTERN, CORPUS[:3000])))[:200] + [
    "é", "日本", "語", "🙂", "👍🏽", "\u0301", "\n", "\n\n", "   ", "\t", "'s", "'LL", "123", "4567", " ", "<|", "|>",
]
corpus_like_text = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
unicode_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)  # no lone surrogates


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


def test_char_tokenizer_unknown_character():
    """CharTokenizer raises a ValueError naming a character it has never seen"""
    tokenizer = CharTokenizer("abc")
    expect_equal(list(tokenizer.encode("cab")), [2, 0, 1], call="CharTokenizer('abc').encode('cab')",
                 hint="ids are positions in the sorted vocabulary")
    expect_raises(ValueError, lambda: tokenizer.encode("abž"), call="CharTokenizer('abc').encode('abž')",
                  message_contains="ž", hint="raise ValueError and put the unknown character in the message")


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
    expected = list(bytes(ids).replace(bytes(pair), bytes([new_id])))  # the same rule, done by Python
    expect_equal([int(i) for i in merge_pair(list(ids), pair, new_id)], expected,
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
    encoding = tiktoken.Encoding(name="handmade", pat_str=r"[\s\S]+", mergeable_ranks=ranks, special_tokens={})
    extra = {token: rank for token, rank in ranks.items() if rank >= 256}
    expect_same_ids(bpe_encode_chunk(text.encode("utf-8"), ranks), encoding.encode_ordinary(text),
                    call=f"bpe_encode_chunk({text.encode()!r}, ranks with {extra})",
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


def test_train_vocab_size_and_minimum():
    """train learns vocab_size - 256 merges with consistent vocab, and vocab_size < 256 is a ValueError"""
    tokenizer = BPETokenizer()
    tokenizer.train(CORPUS[:5000], 300)
    expect_equal(tokenizer.vocab_size, 300, call="BPETokenizer().train(CORPUS[:5000], 300); .vocab_size",
                 hint="256 byte tokens + one token per merge")
    expect_equal(list(tokenizer.merges.values()), list(range(256, 300)), call="list(tokenizer.merges.values())",
                 hint="merges in order, ids 256, 257, ...")
    expect_equal(tokenizer.vocab[65], b"A", call="tokenizer.vocab[65]", hint="ids 0-255 are the single bytes")
    broken = [(pair, new_id) for pair, new_id in tokenizer.merges.items()
              if tokenizer.vocab[new_id] != tokenizer.vocab[pair[0]] + tokenizer.vocab[pair[1]]]
    expect_equal(broken, [], call="merges whose vocab entry is not the two halves joined",
                 hint="vocab[new_id] = vocab[left] + vocab[right]")
    expect_raises(ValueError, lambda: BPETokenizer().train("some text", 255),
                  call="BPETokenizer().train('some text', 255)", hint="the 256 byte tokens are always there")


def textbook_merges(text: str, vocab_size: int, pattern: str) -> dict[tuple[int, int], int]:
    """Section 4's loop over all chunks, recounting everything for every merge (slow, obvious)."""
    chunks = [list(chunk.encode("utf-8")) for chunk in regex.findall(pattern, text)]
    merges = {}
    for new_id in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for ids in chunks:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(counts, key=counts.get)  # first maximum in insertion order: the pair seen first
        merges[pair] = new_id
        new_chunks = []
        for ids in chunks:
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            new_chunks.append(out)
        chunks = new_chunks
    return merges


def test_train_matches_textbook_algorithm():
    """Your (faster) training learns exactly the merges of the textbook loop, in the same order"""
    text = CORPUS[40_000:44_000] + MULTILINGUAL
    tokenizer = BPETokenizer()
    tokenizer.train(text, 320)
    expected = textbook_merges(text, 320, GPT4_SPLIT_PATTERN)
    got = list(tokenizer.merges.items())
    first_bad = next((i for i, (a, b) in enumerate(zip(got, expected.items())) if a != b), None)
    expect_equal(got[first_bad] if first_bad is not None else None,
                 list(expected.items())[first_bad] if first_bad is not None else None,
                 call=f"merge number {first_bad} of BPETokenizer().train(<4 KB of CPython docs>, 320)",
                 hint="count pairs within chunks (each distinct chunk times its count), merge the most frequent, "
                      "ties to the pair seen first in the text; update the counts of the chunks that changed")
    expect_equal(got, list(expected.items()), call="all merges of BPETokenizer().train(<4 KB of CPython docs>, 320)",
                 hint="same merges, same order")


def test_merges_never_cross_chunk_boundaries():
    """No learned token spans two chunks of the split pattern (e.g. a word and the space after it)"""
    text = "hello world. " * 40 + "x=1;\n" * 30
    tokenizer = BPETokenizer()
    tokenizer.train(text, 290)
    expect_equal(tokenizer.vocab_size > 260, True, call="BPETokenizer().train('hello world. ' * 40 + ..., 290).vocab_size > 260",
                 hint="train must learn merges")
    chunks = [chunk.encode("utf-8") for chunk in set(regex.findall(GPT4_SPLIT_PATTERN, text))]
    crossing = [tokenizer.vocab[i] for i in tokenizer.merges.values()
                if not any(tokenizer.vocab[i] in chunk for chunk in chunks)]
    expect_equal(crossing, [], call="learned tokens that occur in no single chunk of the text",
                 hint="split the text with regex.findall(pattern, text) first and count pairs only inside chunks")


# -- tiktoken is the oracle ----------------------------------------------------------------

@pytest.mark.parametrize("name", list(SAMPLES))
def test_encode_matches_tiktoken(gpt4, name):
    """encode gives exactly tiktoken's ids on your vocabulary"""
    tokenizer, encoding = gpt4
    text = SAMPLES[name]
    expect_same_ids(tokenizer.encode(text), encoding.encode(text), call=f"tokenizer.encode({short(text)})")
    expect_same_ids(tokenizer.encode_ordinary(text), encoding.encode_ordinary(text),
                    call=f"tokenizer.encode_ordinary({short(text)})")


@given(text=unicode_text)
def test_encode_matches_tiktoken_on_random_unicode(gpt4, text):
    """encode matches tiktoken on random Unicode text"""
    tokenizer, encoding = gpt4
    expect_same_ids(tokenizer.encode(text), encoding.encode(text), call=f"tokenizer.encode({short(text)})")


@given(text=corpus_like_text)
def test_encode_matches_tiktoken_on_corpus_like_text(gpt4, text):
    """encode matches tiktoken on text glued from corpus words, where many merges apply"""
    tokenizer, encoding = gpt4
    expect_same_ids(tokenizer.encode(text), encoding.encode(text), call=f"tokenizer.encode({short(text)})")


def test_encode_matches_tiktoken_on_unseen_corpus_text(gpt4):
    """encode matches tiktoken on 20 KB of documentation it was not trained on"""
    tokenizer, encoding = gpt4
    text = CORPUS[100_000:120_000]
    expect_same_ids(tokenizer.encode(text), encoding.encode(text), call="tokenizer.encode(CORPUS[100_000:120_000])")


@given(text=st.one_of(corpus_like_text, unicode_text))
@example(text="".join(SAMPLES.values()))
def test_gpt2_pattern_matches_tiktoken(gpt2, text):
    """With GPT-2's split pattern too, encode matches tiktoken"""
    tokenizer, encoding = gpt2
    expect_same_ids(tokenizer.encode(text), encoding.encode(text),
                    call=f"BPETokenizer(GPT2_SPLIT_PATTERN) trained, .encode({short(text)})")


@given(text=unicode_text)
@example(text="".join(SAMPLES.values()))
def test_round_trip(gpt4, text):
    """decode(encode(text)) gives the text back exactly, and decode_bytes gives its UTF-8 bytes"""
    tokenizer, _ = gpt4
    ids = tokenizer.encode(text)
    expect_equal(tokenizer.decode_bytes(ids), text.encode("utf-8"), call=f"decode_bytes(encode({short(text)}))",
                 hint="join vocab[i] for every id")
    expect_equal(tokenizer.decode(ids), text, call=f"decode(encode({short(text)}))",
                 hint="decode the joined bytes as UTF-8")


def test_decode_broken_characters_like_tiktoken(gpt4):
    """Decoding part of a character gives U+FFFD, exactly like tiktoken"""
    tokenizer, encoding = gpt4
    for text in ("é", "日", "🙂"):
        cut = list(text.encode("utf-8"))[:-1]
        expect_equal(tokenizer.decode(cut), "\ufffd", call=f"tokenizer.decode({cut})  (the bytes of {text!r} but the last)",
                     hint="bytes.decode('utf-8', errors='replace')")
        expect_equal(tokenizer.decode_bytes(cut), bytes(cut), call=f"tokenizer.decode_bytes({cut})",
                     hint="decode_bytes keeps every byte")
    ids = tokenizer.encode(MULTILINGUAL)
    for k in range(len(ids) + 1):
        expect_equal(tokenizer.decode(ids[:k]), encoding.decode(ids[:k]),
                     call=f"tokenizer.decode(encode({short(MULTILINGUAL, 30)})[:{k}])",
                     hint="a prefix of the ids can end inside a character: replace the broken bytes with U+FFFD")


# -- special tokens ------------------------------------------------------------------------

SPECIAL_TEXT = "Hello<|endoftext|>world <|fim_middle|>\n<|endoftext|><|endoftext|> done <|endof"


def test_special_tokens_allowed_all(gpt4):
    """allowed_special="all" encodes special tokens to their ids, like tiktoken"""
    tokenizer, encoding = gpt4
    expect_equal(dict(tokenizer.special_tokens), SPECIALS, call="tokenizer.special_tokens after register_special_tokens",
                 hint="keep the {text: id} dict you were given")
    ids = tokenizer.encode(SPECIAL_TEXT, allowed_special="all")
    expect_same_ids(ids, encoding.encode(SPECIAL_TEXT, allowed_special="all"),
                    call=f"tokenizer.encode({short(SPECIAL_TEXT)}, allowed_special='all')",
                    hint="cut the text at special tokens; each is one id; encode the pieces between as ordinary text")
    expect_equal(tokenizer.decode(ids), SPECIAL_TEXT, call="tokenizer.decode(<those ids>)",
                 hint="vocab must hold the special tokens' text as bytes too")


def test_special_tokens_raise_by_default(gpt4):
    """By default, text containing a special token is a ValueError (no prompt injection)"""
    tokenizer, encoding = gpt4
    plain = "end of text, but not <|special|>"
    expect_same_ids(tokenizer.encode(plain), encoding.encode(plain), call=f"tokenizer.encode({plain!r})")
    expect_raises(ValueError, lambda: tokenizer.encode("user input <|endoftext|> more"),
                  call="tokenizer.encode('user input <|endoftext|> more')", message_contains="<|endoftext|>",
                  hint="the default allowed_special='none_raise' must refuse special-token text and name it")


def test_special_tokens_none_is_ordinary_text(gpt4):
    """allowed_special="none" encodes special-token text as ordinary text"""
    tokenizer, encoding = gpt4
    ids = tokenizer.encode(SPECIAL_TEXT, allowed_special="none")
    expect_same_ids(ids, encoding.encode_ordinary(SPECIAL_TEXT),
                    call=f"tokenizer.encode({short(SPECIAL_TEXT)}, allowed_special='none')",
                    hint="'none' is encode_ordinary: <, |, endoftext, ... are plain text")
    expect_same_ids(tokenizer.encode_ordinary(SPECIAL_TEXT), encoding.encode_ordinary(SPECIAL_TEXT),
                    call=f"tokenizer.encode_ordinary({short(SPECIAL_TEXT)})")


def test_register_special_tokens():
    """register_special_tokens adds ids above the vocabulary and refuses an id that is taken"""
    tokenizer = BPETokenizer()
    tokenizer.train("aaabdaaabac", 260)
    tokenizer.register_special_tokens({"<|end|>": 260})
    expect_equal(tokenizer.vocab_size, 261, call="vocab_size after train(..., 260) and one special token",
                 hint="vocab_size counts bytes, merges and special tokens")
    expect_equal(tokenizer.decode([259, 260]), "aaabd<|end|>", call="tokenizer.decode([259, 260])",
                 hint="a special token decodes to its text")
    expect_equal(tokenizer.encode("a<|end|>", allowed_special="all"), [97, 260],
                 call="tokenizer.encode('a<|end|>', allowed_special='all')", hint="the special token is one id")
    expect_raises(ValueError, lambda: tokenizer.register_special_tokens({"<|oops|>": 258}),
                  call="register_special_tokens({'<|oops|>': 258}) when 258 is the merge 'aaab'",
                  hint="a special token's id must not collide with an existing token")


def test_mergeable_ranks(gpt4):
    """mergeable_ranks maps every token's bytes to its id, without the special tokens"""
    tokenizer, _ = gpt4
    ranks = tokenizer.mergeable_ranks()
    expect_equal(len(ranks), VOCAB, call="len(tokenizer.mergeable_ranks())",
                 hint="256 bytes + the merges; special tokens are not mergeable")
    expect_equal(sorted(ranks.values()), list(range(VOCAB)), call="sorted(mergeable_ranks().values())",
                 hint="ids 0 .. vocab_size - 1 of the bytes and merges, each once")
    wrong = [i for i in range(VOCAB) if ranks.get(tokenizer.vocab[i]) != i]
    expect_equal(wrong, [], call="ids i with mergeable_ranks()[vocab[i]] != i", hint="{vocab[i]: i for every token}")


# -- saving --------------------------------------------------------------------------------

def test_save_and_load(gpt4, tmp_path):
    """A saved and loaded tokenizer has the same merges and specials and encodes identically"""
    tokenizer, encoding = gpt4
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    expect_true(isinstance(json.loads(path.read_text(encoding="utf-8")), dict), call="json.loads(<saved file>)",
                expected="a JSON object", got=path.read_text(encoding="utf-8")[:80], hint="write the file with json")
    loaded = BPETokenizer.load(path)
    expect_equal(loaded.pattern, tokenizer.pattern, call="BPETokenizer.load(path).pattern", hint="save the pattern")
    expect_equal(list(loaded.merges.items()), list(tokenizer.merges.items()), call="BPETokenizer.load(path).merges",
                 hint="save the merges in order; JSON has no tuples, so rebuild (left, right) pairs when loading")
    expect_equal(dict(loaded.special_tokens), SPECIALS, call="BPETokenizer.load(path).special_tokens",
                 hint="save the special tokens")
    expect_equal(loaded.vocab_size, tokenizer.vocab_size, call="BPETokenizer.load(path).vocab_size",
                 hint="rebuild vocab from the merges")
    for text in (*SAMPLES.values(), SPECIAL_TEXT):
        expect_same_ids(loaded.encode(text, allowed_special="all"), encoding.encode(text, allowed_special="all"),
                        call=f"BPETokenizer.load(path).encode({short(text)}, allowed_special='all')")
