"""Byte-level BPE: training speed of the reference, and encoding speed vs tiktoken on the same merges.

The reference tokenizer (module 10) is trained once on the CPython documentation text that
ships with Python; tiktoken then gets an `Encoding` built from exactly those merges, so both
encoders do the same work and must give the same tokens (checked here too). Throughput is
megabytes of text per second; the ratio is what to read.

    .venv/bin/python bench/bpe_throughput.py [--vocab 512]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TITO_SOURCE", "solutions")

import tiktoken  # noqa: E402

from tinytorch.tokenization import BPETokenizer  # noqa: E402
from timing import median_seconds  # noqa: E402


def corpus() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    text = corpus()
    megabytes = len(text.encode("utf-8")) / 1e6
    tokenizer = BPETokenizer()
    started = time.perf_counter()
    tokenizer.train(text, arguments.vocab)
    train_seconds = time.perf_counter() - started

    encoding = tiktoken.Encoding(name="bench", pat_str=tokenizer.pattern,
                                 mergeable_ranks=tokenizer.mergeable_ranks(), special_tokens={})
    ours_tokens, theirs_tokens = tokenizer.encode_ordinary(text), encoding.encode_ordinary(text)
    if ours_tokens != theirs_tokens:
        raise SystemExit("the reference and tiktoken disagree on the corpus: fix module 10 first")

    t_ours = median_seconds(lambda: tokenizer.encode_ordinary(text), arguments.repeats, warmup=1)
    t_theirs = median_seconds(lambda: encoding.encode_ordinary(text), arguments.repeats, warmup=1)
    t_decode_ours = median_seconds(lambda: tokenizer.decode(ours_tokens), arguments.repeats, warmup=1)
    t_decode_theirs = median_seconds(lambda: encoding.decode(theirs_tokens), arguments.repeats, warmup=1)

    print(f"corpus: CPython documentation, {megabytes:.2f} MB, {len(ours_tokens):,} tokens "
          f"at vocabulary {tokenizer.vocab_size} ({len(text.encode('utf-8')) / len(ours_tokens):.2f} bytes/token)")
    print(f"training to {arguments.vocab} tokens (reference only; tiktoken does not train): "
          f"{train_seconds:.1f} s, {megabytes / train_seconds:.3f} MB/s")
    print(f"{'encode/decode':14} {'tinytorch MB/s':>15} {'tiktoken MB/s':>14} {'time ratio':>11}")
    print(f"{'encode':14} {megabytes / t_ours:15.2f} {megabytes / t_theirs:14.2f} {t_ours / t_theirs:10.1f}x")
    print(f"{'decode':14} {megabytes / t_decode_ours:15.2f} {megabytes / t_decode_theirs:14.2f} "
          f"{t_decode_ours / t_decode_theirs:10.1f}x")


if __name__ == "__main__":
    main()
