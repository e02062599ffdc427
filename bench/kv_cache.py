"""Generation with and without module 17's KV-cache: the same tokens, and the speed-up.

A small random GPT (2 layers, n_embd 64, 4 heads, block_size 320, float32) writes 256 tokens
after a 16-token prompt, once with `GPT.generate` (every step re-runs the whole context) and
once with `generate_cached` (one prefill, then one token per step), with the same sampling
generator. The tokens must be identical; the ratio of the two wall times, measured in this one
run, is what to read. Module 14's FlopCounter gives the multiply-adds of both runs: the
uncached total grows like N^2, the cached one like N. Run once more with n_kv_heads to see
multi-query attention's smaller cache (the time barely moves at this size: the cache is small
next to the weights here).

    TITO_SOURCE=solutions .venv/bin/python bench/kv_cache.py [--tokens 256] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TITO_SOURCE", "solutions")

import numpy as np  # noqa: E402

from tinytorch.memoization import GroupedQueryAttention, generate_cached, kv_cache_bytes  # noqa: E402
from tinytorch.profiling import FlopCounter  # noqa: E402
from tinytorch.tensor import manual_seed  # noqa: E402
from tinytorch.transformers import GPT, GPTConfig  # noqa: E402


def timed(action, repeats: int) -> tuple[float, object]:
    """Median seconds of `repeats` calls (no warm-up needed: one call is hundreds of steps), and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of the uncached generation (the cached one gets 2 more)")
    args = parser.parse_args()

    config = GPTConfig(vocab_size=65, block_size=320, n_layer=2, n_head=4, n_embd=64)
    manual_seed(0)
    model = GPT(config).eval()
    prompt = np.random.default_rng(1).integers(0, config.vocab_size, (1, 16))
    total = prompt.shape[1] + args.tokens
    print(f"GPT n_layer={config.n_layer}, n_embd={config.n_embd}, n_head={config.n_head}, "
          f"block_size={config.block_size}, float32; prompt 16 tokens + {args.tokens} new, top_k=10; "
          f"median of {args.repeats} uncached and {args.repeats + 2} cached runs")

    def uncached():
        return model.generate(prompt, args.tokens, top_k=10, rng=np.random.default_rng(2))

    def cached():
        return generate_cached(model, prompt, args.tokens, top_k=10, rng=np.random.default_rng(2))

    with FlopCounter() as slow_count:
        slow_tokens = uncached()
    with FlopCounter() as fast_count:
        fast_tokens = cached()
    if not np.array_equal(slow_tokens, fast_tokens):
        raise SystemExit("the cached generation wrote different tokens: fix module 17 first")
    t_slow, _ = timed(uncached, args.repeats)
    t_fast, _ = timed(cached, args.repeats + 2)
    print(f"{'':10} {'seconds':>8} {'tokens/s':>9} {'GMACs':>7}")
    print(f"{'uncached':10} {t_slow:8.2f} {args.tokens / t_slow:9.0f} {slow_count.macs / 1e9:7.3f}")
    print(f"{'cached':10} {t_fast:8.2f} {args.tokens / t_fast:9.0f} {fast_count.macs / 1e9:7.3f}")
    print(f"same tokens: yes; speed-up {t_slow / t_fast:.1f}x in time, {slow_count.macs / fast_count.macs:.1f}x in "
          f"multiply-adds; cache {kv_cache_bytes(config, total) / 1e3:.0f} KB at {total} positions")

    c = config
    for block in model.blocks:
        block.attn = GroupedQueryAttention(c.n_embd, c.n_head, 1)
    mqa_fast, _ = timed(cached, args.repeats + 2)
    print(f"multi-query (n_kv_heads=1, new random weights): cached {mqa_fast:.2f} s, cache "
          f"{kv_cache_bytes(config, total, n_kv_heads=1) / 1e3:.0f} KB ({c.n_head}x smaller)")


if __name__ == "__main__":
    main()
