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
# # Module 10: Tokenization
#
# A language model does not read text. It reads a sequence of integers, *token ids*, and
# predicts the next one. The **tokenizer** is the translator between the two worlds:
#
# ```
# "Hello world!"  --encode-->  [9906, 1917, 0]  --model-->  ...  --decode-->  "Hello world!"
# ```
#
# It looks like plumbing, but it decides what the model can see. How long is a sequence (and
# so how much text fits in the model's context)? How big is the embedding table (module 11)
# and the final softmax? Can the model spell, count digits, read Japanese, or an emoji? Many
# odd behaviours of large language models are tokenizer behaviours.
#
# In this module you build
#
# - `CharTokenizer`: one token per character, the simplest tokenizer that works (the 2017
#   milestone's character model uses it),
# - `BPETokenizer`: **byte-level byte-pair encoding**, the tokenizer of GPT-2, GPT-4 and most
#   models since: training (learn merges from a corpus), encoding, decoding, special tokens,
#   and saving to a file.
#
# The checkpoint is strict in a useful way: it builds a `tiktoken.Encoding` (OpenAI's
# production tokenizer library, written in Rust) from *your* learned vocabulary and demands
# that your encoder produces exactly the same ids on prose, code, emoji, Japanese, runs of
# spaces and random text. Matching a production implementation id for id is what "correct"
# means for a tokenizer: a model trained with one encoder is useless with a slightly different
# one.

# %%
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

# `regex` is a drop-in extension of Python's `re` that understands Unicode classes such as
# \p{L} ("any letter, in any script") and \p{N} ("any digit"), which the GPT split patterns
# need and `re` does not have. It is installed together with tiktoken.
import regex

# %% [markdown]
# ## 1. Why tokens: characters, words or bytes?
#
# Three obvious ways to cut text into units, and what each costs:
#
# | unit | vocabulary | sequence length | the catch |
# | --- | --- | --- | --- |
# | words | 100,000s (every form: *run, runs, running*) | short | a word never seen in training (a name, a typo, `tokenizer.py`) has no id at all |
# | characters | ~100 for English text, but Unicode has ~150,000 | one token per character | long sequences; an unseen character (an emoji, a Greek letter) still has no id |
# | bytes (UTF-8) | exactly 256 | 1-4 tokens per character | nothing is ever unknown, but sequences are the longest of all |
#
# Sequence length matters because attention (module 12) costs time and memory proportional
# to the *square* of the length, and a context window holds a fixed number of tokens, not
# characters. Vocabulary size matters because every token needs a row in the embedding table
# and a column in the output layer.
#
# **Byte-pair encoding** (BPE) gets the best of both: start from the 256 bytes (so nothing is
# ever unknown), then *learn* from a corpus which byte sequences are common and give each a
# token of its own. Frequent words become one token, rare words fall apart into pieces, and
# any string at all can still be written down byte by byte. You choose the vocabulary size,
# and with it the trade-off between a big table and short sequences.

# %% [markdown]
# ## 2. A character tokenizer
#
# The simplest tokenizer that works: the vocabulary is the sorted set of characters of a
# training text, and a character's id is its position in that list. Sorting makes the ids
# reproducible (a Python `set` has no stable order between runs).
#
# - `chars`: the vocabulary, a sorted list of distinct characters; `vocab_size = len(chars)`.
# - `encode(text)`: one id per character. A character that is not in the vocabulary is an
#   error, a `ValueError` naming the character: silently dropping or replacing it would hide
#   the problem until a model produces garbage.
# - `decode(ids)`: the characters joined back into a string; an id outside the vocabulary is
#   a `ValueError` too (Python's negative indexing would otherwise quietly accept `-1`).
#
# This is exactly the weakness of the table in section 1: train it on English and it cannot
# encode `"é"`. Byte-level BPE will fix that.

# %% nbgrader={"grade": false, "grade_id": "char-tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _as_id_list(ids: Any) -> list[int]:
    """Token ids as a list of Python ints, from a list, a numpy array or a tinytorch Tensor."""
    if callable(getattr(ids, "numpy", None)):  # a Tensor: take its numpy array
        ids = ids.numpy()
    if hasattr(ids, "tolist"):  # a numpy array (or numpy integer)
        ids = ids.tolist()
    return [ids] if isinstance(ids, int) else [int(i) for i in ids]


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters of `text`."""

    def __init__(self, text: str) -> None:
        ### BEGIN SOLUTION
        self.chars: list[str] = sorted(set(text))
        # The reverse lookup makes encoding one dict access per character.
        self._index = {ch: i for i, ch in enumerate(self.chars)}
        ### END SOLUTION

    @property
    def vocab_size(self) -> int:
        ### BEGIN SOLUTION
        return len(self.chars)
        ### END SOLUTION

    def encode(self, text: str) -> list[int]:
        """The id of every character of `text`; ValueError naming an unknown character."""
        ### BEGIN SOLUTION
        ids = []
        for position, ch in enumerate(text):
            if ch not in self._index:
                raise ValueError(
                    f"character {ch!r} (U+{ord(ch):04X}) at position {position} is not in the "
                    f"vocabulary of this CharTokenizer ({self.vocab_size} characters)"
                )
            ids.append(self._index[ch])
        return ids
        ### END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of `ids` joined into a string."""
        ### BEGIN SOLUTION
        out = []
        for i in _as_id_list(ids):
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            out.append(self.chars[i])
        return "".join(out)
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={len(getattr(self, 'chars', []))})"


# %% [markdown]
# ## 3. Text is bytes: UTF-8
#
# A Python `str` is a sequence of Unicode *code points* (`ord("é") == 233`,
# `ord("🙂") == 128578`). Files, sockets and tokenizers see **bytes**, and the encoding from
# one to the other that the whole web uses is UTF-8:
#
# | code points | bytes | example |
# | --- | --- | --- |
# | U+0000 - U+007F (ASCII) | 1: `0xxxxxxx` | `"A"` -> `41` |
# | U+0080 - U+07FF (accents, Greek, Cyrillic, ...) | 2: `110xxxxx 10xxxxxx` | `"é"` -> `c3 a9` |
# | U+0800 - U+FFFF (most of CJK, ...) | 3: `1110xxxx 10xxxxxx 10xxxxxx` | `"日"` -> `e6 97 a5` |
# | U+10000 and above (emoji, ...) | 4: `11110xxx` + three `10xxxxxx` | `"🙂"` -> `f0 9f 99 82` |
#
# Two facts to keep in mind for the rest of the module:
#
# 1. ASCII text costs one byte per character, so for English, "bytes" and "characters" are
#    almost the same; Japanese costs three bytes per character, an emoji four. A byte-level
#    tokenizer starts from a longer sequence for those languages, and must learn merges to
#    make them affordable.
# 2. Not every byte sequence is valid UTF-8. The bytes of one character belong together: cut
#    `"é"` after its first byte and `b"\xc3"` alone decodes to nothing. A byte-level tokenizer
#    can (and will) put one character's bytes into different tokens, so decoding must cope with
#    pieces that are not valid text on their own (section 8).
#
# `"é".encode("utf-8")` gives the bytes, `bytes.decode("utf-8")` turns them back into text,
# and `list(b)` shows them as integers 0-255: exactly the first 256 token ids of our BPE.

# %% [markdown]
# ## 4. Byte-pair encoding: merge the most frequent pair
#
# BPE training is one idea repeated: *find the pair of adjacent tokens that occurs most
# often, and give it a new token.* Start from the bytes of the text as ids 0-255. Each merge
# creates the next id, 256, 257, ..., and rewrites the sequence with it, so the sequence
# gets shorter and the vocabulary grows by one. Stop when the vocabulary has the size you
# asked for. The list of merges, in order, *is* the trained tokenizer.
#
# A hand-checkable example, the text `"aaabdaaabac"` (`a` = 97, `b` = 98, `c` = 99,
# `d` = 100):
#
# | step | sequence | most frequent pair | new token |
# | --- | --- | --- | --- |
# | 0 | `a a a b d a a a b a c` | `(a, a)`, 4 times | 256 = `"aa"` |
# | 1 | `256 a b d 256 a b a c` | `(256, a)` and `(a, b)`, twice each: a tie | 257 = `"aaa"` |
# | 2 | `257 b d 257 b a c` | `(257, b)`, twice | 258 = `"aaab"` |
# | 3 | `258 d 258 a c` | everything once: a tie | 259 = `"aaabd"` |
#
# Three details decide the exact result, and a tokenizer must get all of them right to match
# another implementation:
#
# - **Counting pairs** counts overlapping pairs: `a a a` holds the pair `(a, a)` twice.
# - **Merging** goes left to right and does not overlap: `a a a` becomes `256 a`, not `a 256`.
# - **Ties** go to the pair *seen first* in the text: in step 1 `(256, a)` starts at position
#   0 and `(a, b)` at position 1, so `(256, a)` wins. (Python's `max` over a dict returns the
#   first maximum in insertion order, which is the order the pairs were first seen.)
#
# Write the two building blocks: `count_pairs` (it can add into an existing dict, which lets
# you count over many chunks) and `merge_pair`.

# %% nbgrader={"grade": false, "grade_id": "pairs", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_pairs(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs in `ids` (overlaps count), added into `counts` if given.

    Pairs are inserted in the order they are first seen.
    """
    ### BEGIN SOLUTION
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """`ids` with every occurrence of `pair` replaced by `new_id`, left to right, no overlaps."""
    ### BEGIN SOLUTION
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2  # both halves are consumed: this is what makes merges non-overlapping
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %% [markdown]
# Run the example step by step (run this file, or the cell in the notebook):

# %%
if __name__ == "__main__":
    ids = list("aaabdaaabac".encode("utf-8"))
    names = {i: bytes([i]).decode() for i in set(ids)}
    for new_id in range(256, 260):
        counts = count_pairs(ids)
        pair = max(counts, key=counts.get)  # first maximum in insertion order = seen first
        names[new_id] = names[pair[0]] + names[pair[1]]
        ids = merge_pair(ids, pair, new_id)
        print(f"merge {pair} ({names[pair[0]]!r} + {names[pair[1]]!r}, {counts[pair]}x) -> {new_id} = "
              f"{names[new_id]!r}; sequence now {ids}")

# %% [markdown]
# ## 5. Pre-splitting: no merges across words, spaces and punctuation
#
# Run the plain algorithm on real English and it learns tokens like `"dog."`, `"dog!"`,
# `"dog?"` and `"e th"` (the end of one word, a space, the start of the next): frequent
# pairs that *cross* a boundary waste vocabulary on accidents of what word follows what.
# GPT-2's fix: first cut the text into **chunks** with a regular expression, learn merges
# only *inside* chunks, and encode each chunk on its own. A merge can never cross a chunk
# boundary.
#
# GPT-2's pattern, read alternative by alternative (the first one that matches wins):
#
# ```
# 's|'t|'re|'ve|'m|'ll|'d       English contractions: "don't" -> "don", "'t"
#  ?\p{L}+                      a word, with at most one leading space: " dog"
#  ?\p{N}+                      a number, with at most one leading space
#  ?[^\s\p{L}\p{N}]+            a run of punctuation/symbols: "!!!", " ->"
# \s+(?!\S)                     whitespace, except the last space before a word
# \s+                           any other whitespace (the end of the text)
# ```
#
# The space *before* a word belongs to the word (`" dog"` is one chunk), so the tokenizer
# learns `" dog"` as one token. `\p{L}` means a letter of *any* script and `\p{N}` any
# digit; Python's `re` does not know these classes, which is why we use the `regex` package.
#
# GPT-4's pattern (`cl100k_base`) refines it: contractions are case-insensitive (`"IT'S"`),
# a word takes one leading character that is not a letter, digit or newline (a space as
# before, but also `"_count"` or `".py"`), numbers are split into groups of **at most three
# digits** (so the model does not need a token for every number up to 999,999,999), and
# newlines stay with the punctuation or whitespace before them (`";\n\n"`: code is full of
# line ends and indentation). Both patterns are below; `BPETokenizer` uses GPT-4's by default,
# and the checkpoint tests both against tiktoken.

# %%
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

if __name__ == "__main__":
    example = "Hello world!! It's 2024: x_count += 12345678;\n\n    print('done')  "
    print("GPT-2 chunks:", regex.findall(GPT2_SPLIT_PATTERN, example))
    print("GPT-4 chunks:", regex.findall(GPT4_SPLIT_PATTERN, example))

# %% [markdown]
# ## 6. Training on a real corpus, fast enough
#
# The textbook loop of section 4 counts *every* pair of the whole text for *every* merge:
# for half a megabyte of text and a few thousand merges, that is billions of Python steps.
# Two observations make it fast:
#
# 1. **Identical chunks behave identically.** `" the"` occurs thousands of times in English
#    text, and every copy is merged in exactly the same way. So keep each *distinct* chunk
#    once, with a count (`Counter(chunks)`): a pair inside `" the"` counts `count` times.
#    The CPython documentation corpus has about 100,000 chunks but fewer than 7,000
#    distinct ones, 50 KB of bytes instead of 466 KB.
# 2. **A merge changes few chunks.** Merging `(t, h)` only touches chunks that contain
#    `t h`. Keep the pair counts from one merge to the next, and for each affected chunk,
#    subtract its old pairs, merge, add its new pairs. To find the affected chunks without
#    scanning everything, remember for every pair the set of chunks it occurs in.
#
# What remains per merge is finding the largest count (a pass over the pair counts, a few
# thousand entries) and the chunks that actually change.
#
# **Ties.** The rule is still "the pair seen first in the text". With distinct chunks kept in
# order of first appearance (a `Counter` preserves insertion order), a pair's first
# occurrence is in the earliest chunk that contains it, at the earliest position there; only
# tied candidates need this lookup.
#
# `train_merges` returns the merges as a dict `{(left id, right id): new id}` whose insertion
# order is the merge order. A `vocab_size` below 256 is a `ValueError` (the 256 bytes are
# always there). If every chunk has become a single token before `vocab_size` is reached,
# there is nothing left to merge and training stops early.

# %% nbgrader={"grade": false, "grade_id": "train-merges", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_merges(text: str, vocab_size: int, pattern: str = GPT4_SPLIT_PATTERN) -> dict[tuple[int, int], int]:
    """Learn up to `vocab_size - 256` byte-level merges from `text`, never across `pattern`'s chunks."""
    ### BEGIN SOLUTION
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (the byte tokens), got {vocab_size}")
    chunk_counts = Counter(regex.findall(pattern, text))
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]  # in order of first appearance
    weights = list(chunk_counts.values())

    pair_counts: dict[tuple[int, int], int] = {}
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words containing it

    def update(w: int, sign: int) -> None:
        """Add (sign=+1) or remove (sign=-1) word w's pairs, each counted once per copy of w."""
        for pair, n in count_pairs(words[w]).items():
            total = pair_counts.get(pair, 0) + sign * n * weights[w]
            if total:
                pair_counts[pair] = total
            else:
                del pair_counts[pair]
            if sign > 0:
                where[pair].add(w)
            else:
                where[pair].discard(w)

    def first_seen(pair: tuple[int, int]) -> tuple[int, int]:
        w = min(where[pair])
        ids = words[w]
        return w, next(i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == pair)

    for w in range(len(words)):
        update(w, +1)

    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        if not pair_counts:
            break  # every chunk is a single token: nothing left to learn
        best = max(pair_counts.values())
        tied = [pair for pair, n in pair_counts.items() if n == best]
        pair = tied[0] if len(tied) == 1 else min(tied, key=first_seen)
        merges[pair] = new_id
        for w in sorted(where.pop(pair)):
            update(w, -1)
            words[w] = merge_pair(words[w], pair, new_id)
            update(w, +1)
        where.pop(pair, None)  # the merged pair occurs nowhere now
    return merges
    ### END SOLUTION


# %% [markdown]
# ## 7. Encoding by rank: the tiktoken rule
#
# To encode new text, split it into chunks with the same pattern, turn each chunk into its
# bytes, and merge. *Which* merges, in which order? tiktoken, the encoder OpenAI uses for
# GPT-2 up to GPT-4, needs no list of merges at all, only the **ranks**: a dict from every
# token's bytes to its id (`mergeable_ranks`; a lower id was learned earlier, from a more
# frequent pair). Within one chunk:
#
# 1. If the chunk's bytes are a token of their own, that token is the answer.
# 2. Otherwise start from single bytes. Look at every adjacent pair of parts, concatenate
#    their bytes, and look the result up in the ranks. Merge the pair whose concatenation has
#    the **lowest rank** (the leftmost one on a tie). Repeat until no adjacent concatenation
#    is a token. Each part is then a token; output their ids.
#
# The lookup is on *bytes*, not on the pair of ids that training recorded: to tiktoken a
# vocabulary is just a table of byte strings. The other natural rule is to *replay* the
# merges: repeatedly apply the earliest learned merge `(left id, right id)` that occurs in the
# sequence. For a vocabulary learned in one training run, like yours, the two agree: training
# *is* replaying the merges, chunk by chunk, so every token is reached by its own merge (the
# "Try it" cell checks this on every chunk of the CPython docs). They disagree as soon as the
# table of ranks did not come from replaying exactly these merges. A hand-made example: ranks
# `"ab"` = 256, `"bc"` = 257, `"abc"` = 258, with the merges recorded as `(a, b)`, `(b, c)`
# and `(a, "bc")`. Replaying on `"abc"` makes `"ab"` first, and `("ab", c)` is not a
# recorded merge, so the result is `[256, 99]`. The rank rule answers `[258]`: `"abc"` is a
# token (rule 1), and even without rule 1, after making `"ab"` it sees that `"ab" + "c"` is
# a token of rank 258. Rule 1 matters on its own: with `"bc"` = 256, `"ab"` = 257,
# `"cd"` = 258 and `"abcd"` = 259, merging `"abcd"` by rank makes `"bc"` first and gets stuck
# at `[a, "bc", d]`; only the whole-chunk lookup finds 259. This happens in real life: Llama 3 took GPT-4's 100,000 tokens and
# added 28,000 more, so some of its tokens (`" Việt"` is one) cannot be reached by replaying
# merges, and other libraries (Hugging Face's `tokenizers`, llama.cpp) had to add rule 1 to
# give the same ids as tiktoken.
#
# Both answers decode to the same text; what matters is that the encoder agrees with the one
# the model was trained with. We follow tiktoken, the encoder of OpenAI's GPT models, which
# keeps nothing but the ranks, and the checkpoint holds you to it, on hand-made vocabularies
# too: a `tiktoken.Encoding` built from the same ranks must give your ids.
#
# A chunk is short (a word, a number, some spaces), so the simple loop below, which scans
# all pairs after every merge, is fast enough here.

# %% nbgrader={"grade": false, "grade_id": "encode-chunk", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bpe_encode_chunk(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """The token ids of one chunk's bytes, merging the lowest-ranked adjacent pair first."""
    ### BEGIN SOLUTION
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best_rank, best_index = None, -1
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            # strict < keeps the leftmost pair on a tie
            if rank is not None and (best_rank is None or rank < best_rank):
                best_rank, best_index = rank, i
        if best_rank is None:
            break  # no adjacent pair forms a token: done
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return [ranks[part] for part in parts]
    ### END SOLUTION


# %%
if __name__ == "__main__":
    # The hand-made vocabulary of the text above: the 256 bytes, then "ab", "bc", "abc".
    handmade = {bytes([i]): i for i in range(256)} | {b"ab": 256, b"bc": 257, b"abc": 258}
    for piece in (b"abc", b"abcbc", b"xbcab", b"aabcc"):
        print(f"bpe_encode_chunk({piece!r}) = {bpe_encode_chunk(piece, handmade)}")


# %% [markdown]
# ## 8. Decoding: bytes first, then text
#
# Decoding is a lookup and a join: `vocab[id]` is the bytes of each token, and
# `b"".join(...)` is the bytes of the text; `decode_bytes` returns exactly that.
#
# Turning bytes into a `str` needs care. A sequence of ids from a model (or a slice of one)
# can end in the middle of a character: `"é"` may be two tokens, `b"\xc3"` and `b"\xa9"`,
# and `b"\xc3"` alone is not valid UTF-8. A strict decode would raise in the middle of text
# generation. tiktoken's answer, and ours, is `bytes.decode("utf-8", errors="replace")`:
# each broken piece becomes the replacement character `"\ufffd"` (shown as �), and the rest
# of the text decodes normally. The price is that `decode` is *lossy* on such pieces; use
# `decode_bytes` when you need every byte (a streaming printer keeps the incomplete bytes
# until the character is complete).
#
# An unknown id is a `ValueError` naming it.

# %% [markdown]
# ## 9. Special tokens
#
# Models need a few tokens that are *not text*: `<|endoftext|>` separates documents in the
# training data, chat models mark where each turn begins and ends. They get ids above the
# learned vocabulary (`register_special_tokens({"<|endoftext|>": 100257})`), are never
# produced by merges, and are kept out of `mergeable_ranks`. Their ids must not collide with
# an existing token.
#
# The danger is that their *text* can appear in ordinary input. If a web page or a user's
# message contains the characters `<|endoftext|>` and the encoder turns them into the special
# id, an outsider has just injected a control signal into your model (end the document, start
# a new "system" turn, ...). So, like tiktoken, `encode` **refuses by default**:
#
# What `encode("hi<|endoftext|>", allowed_special=...)` gives:
#
# - `"none_raise"` (the default): a `ValueError`, because the text contains a special token;
#   the caller must decide explicitly.
# - `"all"`: `encode("hi")` followed by the id of `<|endoftext|>`.
# - a set, e.g. `{"<|endoftext|>"}`: the special ids of the tokens in the set; the text of any
#   *other* special token still raises, as in tiktoken.
# - `"none"`: ordinary text, `<`, `|`, `endoftext`, ... as normal tokens, the same as
#   `encode_ordinary`.
#
# With specials allowed, the text is cut at each special token and the pieces between them
# are encoded as ordinary text (the split pattern never sees across a special token). To find
# them, one regex that matches any special token (`regex.escape` each one, longest first,
# joined by `|`) does the work.

# %% [markdown]
# ## 10. Saving and loading
#
# A trained tokenizer is small: the pattern, the merges in order, and the special tokens.
# Everything else (the vocabulary, the ranks) is rebuilt from the merges, because merge
# `(left, right) -> id` makes `vocab[id] = vocab[left] + vocab[right]`. `save(path)` writes
# them as JSON (readable, diffable, no pickle, so loading a file cannot run code), and the
# class method `BPETokenizer.load(path)` reads them back into a tokenizer that encodes
# identically.

# %% [markdown]
# ## 11. The BPETokenizer
#
# The pieces, assembled. The attributes other modules rely on:
#
# - `pattern`: the split pattern (a string), `merges`: `{(left, right): id}` in merge order,
#   `vocab`: `{id: bytes}` for all tokens (bytes, merges and special tokens),
#   `special_tokens`: `{text: id}`, `vocab_size`: the number of tokens (`len(vocab)`).
# - `mergeable_ranks()`: `{bytes: id}` of every non-special token, the table tiktoken takes.
#
# Write `_rebuild()` first: it recomputes `vocab` (and the ranks that encoding looks up) from
# `merges` and `special_tokens`, and `__init__`, `train`, `register_special_tokens` and `load`
# all end by calling it. `train` starts from scratch: it replaces the merges and forgets
# special tokens (register them after training, with ids above the vocabulary).

# %% nbgrader={"grade": false, "grade_id": "bpe-tokenizer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def _any_of(tokens: Iterable[str]) -> regex.Pattern:
    """A regex matching any of `tokens` literally, the longest first where one is a prefix of another."""
    return regex.compile("|".join(regex.escape(t) for t in sorted(tokens, key=len, reverse=True)))


class BPETokenizer:
    """Byte-level BPE with a regex pre-split, encoding exactly like tiktoken."""

    FILE_FORMAT = "tinytorch-bpe"

    def __init__(self, pattern: str = GPT4_SPLIT_PATTERN) -> None:
        ### BEGIN SOLUTION
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self.merges: dict[tuple[int, int], int] = {}
        self.special_tokens: dict[str, int] = {}
        self._rebuild()
        ### END SOLUTION

    def _rebuild(self) -> None:
        """Recompute `vocab` and the ranks from the merges and the special tokens."""
        ### BEGIN SOLUTION
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        for (left, right), new_id in self.merges.items():
            self.vocab[new_id] = self.vocab[left] + self.vocab[right]
        self._ranks: dict[bytes, int] = {}
        for i, token in self.vocab.items():
            # Should two merges ever build the same bytes (a hand-edited merge list can), the
            # bytes keep the first id: ids ascend in this loop.
            self._ranks.setdefault(token, i)
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")
        ### END SOLUTION

    @property
    def vocab_size(self) -> int:
        """Number of tokens: 256 bytes + merges + special tokens."""
        ### BEGIN SOLUTION
        return len(self.vocab)
        ### END SOLUTION

    def train(self, text: str, vocab_size: int) -> None:
        """Learn merges from `text` until the vocabulary has `vocab_size` tokens (fewer if it runs out)."""
        ### BEGIN SOLUTION
        self.merges = train_merges(text, vocab_size, self.pattern)
        self.special_tokens = {}
        self._rebuild()
        ### END SOLUTION

    def register_special_tokens(self, tokens: dict[str, int]) -> None:
        """Add special tokens {text: id}; an id already used by another token is a ValueError."""
        ### BEGIN SOLUTION
        special_ids = set(self.special_tokens.values())
        owner = {i: f"token {b!r}" for i, b in self.vocab.items() if i not in special_ids}
        # A special token registered again may keep or change its id, so only the others count.
        owner |= {i: f"special token {t!r}" for t, i in self.special_tokens.items() if t not in tokens}
        for text, i in tokens.items():
            if not isinstance(text, str) or not text:
                raise ValueError(f"a special token must be a non-empty string, got {text!r}")
            if int(i) < 0 or int(i) in owner:
                used = f"is already used by {owner[int(i)]}" if int(i) in owner else "is negative"
                raise ValueError(f"special token {text!r}: id {i} {used}; choose an id >= {max(self.vocab) + 1}")
            owner[int(i)] = f"special token {text!r}"
        for text, i in tokens.items():
            self.special_tokens[text] = int(i)
        self._rebuild()
        ### END SOLUTION

    def mergeable_ranks(self) -> dict[bytes, int]:
        """{bytes: id} for every token except the special tokens: what tiktoken.Encoding takes."""
        ### BEGIN SOLUTION
        return dict(self._ranks)
        ### END SOLUTION

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text`, treating special-token text as ordinary text."""
        ### BEGIN SOLUTION
        ids: list[int] = []
        for chunk in self._split.findall(text):
            ids.extend(bpe_encode_chunk(chunk.encode("utf-8"), self._ranks))
        return ids
        ### END SOLUTION

    def encode(self, text: str, allowed_special: str | set[str] = "none_raise") -> list[int]:
        """Token ids of `text`; `allowed_special` decides what special-token text becomes (see section 9)."""
        ### BEGIN SOLUTION
        if allowed_special == "none":
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special == "none_raise":
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset)):
            allowed = set(allowed_special) & set(self.special_tokens)
        else:
            raise ValueError(f"allowed_special must be 'none_raise', 'all', 'none' or a set of special "
                             f"tokens, got {allowed_special!r}")
        disallowed = set(self.special_tokens) - allowed
        if disallowed and (found := _any_of(disallowed).search(text)):
            raise ValueError(
                f"the text contains the special token {found.group()!r}; pass allowed_special='all' "
                f"(or a set containing it) to encode it as its special id, or allowed_special='none' "
                f"to encode it as ordinary text"
            )
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        # A capturing group makes split() keep the separators: text, special, text, special, ...
        for i, part in enumerate(regex.split(f"({_any_of(allowed).pattern})", text)):
            if i % 2:
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids
        ### END SOLUTION

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of the tokens `ids`, joined."""
        ### BEGIN SOLUTION
        pieces = []
        for i in _as_id_list(ids):
            if i not in self.vocab:
                raise ValueError(f"token id {i} is not in the vocabulary (size {self.vocab_size})")
            pieces.append(self.vocab[i])
        return b"".join(pieces)
        ### END SOLUTION

    def decode(self, ids: Iterable[int]) -> str:
        """The text of the tokens `ids`; bytes that are not valid UTF-8 become U+FFFD."""
        ### BEGIN SOLUTION
        return self.decode_bytes(ids).decode("utf-8", errors="replace")
        ### END SOLUTION

    def save(self, path: str | Path) -> None:
        """Write the pattern, the merges (in order) and the special tokens to a JSON file."""
        ### BEGIN SOLUTION
        data = {
            "format": self.FILE_FORMAT,
            "version": 1,
            "pattern": self.pattern,
            "merges": [[left, right, new_id] for (left, right), new_id in self.merges.items()],
            "special_tokens": self.special_tokens,
        }
        Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")
        ### END SOLUTION

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """A tokenizer read from a file written by `save`."""
        ### BEGIN SOLUTION
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != cls.FILE_FORMAT:
            raise ValueError(f"{path} is not a tinytorch BPE tokenizer file")
        tokenizer = cls(data["pattern"])
        tokenizer.merges = {(int(left), int(right)): int(new_id) for left, right, new_id in data["merges"]}
        tokenizer._rebuild()
        tokenizer.register_special_tokens(data["special_tokens"])
        return tokenizer
        ### END SOLUTION

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={len(getattr(self, 'vocab', {}))}, "
                f"merges={len(getattr(self, 'merges', {}))}, special_tokens={getattr(self, 'special_tokens', {})})")


# %% [markdown]
# ## Try it
#
# Train on the CPython documentation that ships with Python (`pydoc_data.topics`, about
# 465,000 characters of English and code), then look at what the tokenizer learned.

# %%
if __name__ == "__main__":
    import math
    import time

    from pydoc_data.topics import topics

    corpus = "".join(topics[name] for name in sorted(topics))

    chars = CharTokenizer(corpus)
    print(f"CharTokenizer: {chars.vocab_size} characters; encode('Tokens!') = {chars.encode('Tokens!')}")
    try:
        chars.encode("naïve 🙂")
    except ValueError as error:
        print("unknown character:", error)

    for text in ("A", "é", "日", "🙂"):
        print(f"{text!r}: code point U+{ord(text):04X}, UTF-8 bytes {list(text.encode('utf-8'))}")

    tokenizer = BPETokenizer()
    start = time.perf_counter()
    tokenizer.train(corpus, vocab_size=512)
    print(f"trained 256 merges on {len(corpus):,} characters in {time.perf_counter() - start:.2f} s")
    print("first merges:", [tokenizer.vocab[i] for i in range(256, 266)])
    print("last merges:", [tokenizer.vocab[i] for i in range(502, 512)])

    def replay(piece: bytes) -> list[int]:
        """The other rule of section 7: apply the earliest learned merge present, again and again."""
        ids = list(piece)
        while len(ids) > 1:
            rank, pair = min((tokenizer.merges.get(pair, math.inf), pair) for pair in zip(ids, ids[1:]))
            if rank == math.inf:
                break
            ids = merge_pair(ids, pair, rank)
        return ids

    ranks = tokenizer.mergeable_ranks()
    distinct_chunks = set(regex.findall(tokenizer.pattern, corpus))
    agree = sum(replay(c.encode("utf-8")) == bpe_encode_chunk(c.encode("utf-8"), ranks) for c in distinct_chunks)
    print(f"rank rule and replayed merges agree on {agree:,} of {len(distinct_chunks):,} distinct chunks")

    sample = "The tokenizer's job: déjà vu, 日本語, 🙂 and x = 12345;"
    ids = tokenizer.encode(sample)
    print(f"{len(sample)} characters, {len(sample.encode('utf-8'))} bytes -> {len(ids)} tokens "
          "(a token holding part of a character shows as \ufffd):", [tokenizer.decode([i]) for i in ids])
    assert tokenizer.decode(ids) == sample

    # A character cut in half: the first byte of "é" alone is not valid UTF-8.
    print("decode of half an 'é':", repr(tokenizer.decode(list("é".encode("utf-8"))[:1])),
          "| decode_bytes:", tokenizer.decode_bytes(list("é".encode("utf-8"))[:1]))

    tokenizer.register_special_tokens({"<|endoftext|>": 512})
    message = "first document<|endoftext|>second"
    print("allowed_special='all':", tokenizer.encode(message, allowed_special="all"))
    print("allowed_special='none':", tokenizer.encode(message, allowed_special="none"))
    try:
        tokenizer.encode(message)
    except ValueError as error:
        print("default:", error)

    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save(Path(folder) / "tokenizer.json")
        loaded = BPETokenizer.load(Path(folder) / "tokenizer.json")
        print("after save/load, same ids:", loaded.encode(message, allowed_special="all")
              == tokenizer.encode(message, allowed_special="all"))

# %% [markdown]
# ## Systems insight: vocabulary size buys compression
#
# The number a tokenizer is judged by is **compression**: bytes of text per token. More
# tokens in the vocabulary means shorter sequences (cheaper attention, more text per
# context window) but a bigger embedding table and output layer, and rarer tokens, each seen
# less often in training. The cell trains once on half of the CPython documentation topics
# and keeps the first k merges for several vocabulary sizes, then measures bytes per token on
# the training half and on the *other* half, which it has never seen. Typical numbers:
#
# | vocab size | 256 | 512 | 1024 | 2048 |
# | --- | --- | --- | --- | --- |
# | bytes/token, unseen half | 1.0 | about 2.1 | about 2.8 | about 3.5 |
#
# Each doubling of the vocabulary buys less than the one before, and the unseen half
# compresses a little worse than the training half: the late merges are ever more specific to
# the training text. GPT-2 (50,257 tokens) and GPT-4 (100,277) get about 4 bytes per token
# on English; on Japanese or Hindi, with few of their merges learned, the same tokenizers
# need several times more tokens for the same meaning, which is why such text is slower and
# more expensive for those models.
#
# **Speed.** Our encoder is a few lines of Python per chunk; tiktoken's is Rust. With the same
# 512-token vocabulary on the same text, the Python encoder is about ten times slower than
# tiktoken on one thread, and the gap grows with the vocabulary and the length of the chunks
# (the benchmarks in `bench/` measure it). Training, thanks to section 6's bookkeeping, takes
# a fraction of a second for 256 merges on the whole corpus. Python speed is fine for a lesson
# and for the milestone's corpora; it is why real pipelines train with their own code but
# tokenize terabytes with tiktoken, built from a vocabulary exactly like yours.

# %%
if __name__ == "__main__":
    names = sorted(topics)
    train_text = "".join(topics[name] for name in names[0::2])
    unseen_text = "".join(topics[name] for name in names[1::2])
    start = time.perf_counter()
    all_merges = train_merges(train_text, 2048)
    print(f"learned {len(all_merges)} merges in {time.perf_counter() - start:.1f} s")
    for size in (256, 512, 1024, 2048):
        truncated = BPETokenizer()
        truncated.merges = dict(list(all_merges.items())[: size - 256])
        truncated._rebuild()
        ratios = [len(text.encode("utf-8")) / len(truncated.encode_ordinary(text)) for text in (train_text, unseen_text)]
        print(f"vocab {size:5d}: {ratios[0]:.2f} bytes/token on the training half, {ratios[1]:.2f} on the unseen half")

# %% [markdown]
# ## Checkpoint
#
# `tito check 10` runs `tests/checkpoints/test_10_tokenization.py`. It checks `CharTokenizer`
# (sorted vocabulary, round trips, a `ValueError` for an unknown character and for an id
# outside the vocabulary, `-1` included); `count_pairs` and `merge_pair`; `bpe_encode_chunk` on
# the hand-made vocabularies of section 7 and on random ones, against tiktoken built from the
# same ranks; training on `"aaabdaaabac"` (the merges of the table in section 4, ties
# included), stopping early when every chunk is one token, the vocabulary size after
# training, `vocab_size < 256`, that no merge crosses a chunk boundary, and that your merges
# equal the textbook loop's on a small corpus, with both split patterns. The encoding tests
# give your tokenizer a vocabulary learned by the textbook loop (they set `tokenizer.merges`
# and call your `_rebuild()`), so your encoder is judged on its own, and build a
# `tiktoken.Encoding` from the same vocabulary: your `encode` must give tiktoken's ids on
# prose, code, accents, Japanese, emoji, combining marks, runs of spaces and newlines, digits,
# special tokens and random text drawn by Hypothesis, with both GPT-2's and GPT-4's split
# patterns, and on section 7's hand-made merges, where replaying them would give other ids.
# Then `decode(encode(x)) == x` on random Unicode; a character cut in half decodes to U+FFFD as
# in tiktoken; an unknown id is a `ValueError`; special-token text raises by default, is one id
# with `allowed_special="all"` (or in a set, while the others still raise) and ordinary text
# with `"none"`; `register_special_tokens` refuses a taken id and `train` forgets the special
# tokens; and a saved and loaded tokenizer, with either pattern, encodes identically.
