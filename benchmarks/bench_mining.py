"""Benchmark: soft positive mining over a large caption corpus, first run vs cached run.

Both runs mine the same synthetic corpus (N unique HumanML3D-like captions, one in three with a
#start#end sub-span) for the three paper classes, through CachedTextEncoder on a fresh cache
folder: the first run embeds every caption and writes the cache, the second reads it back.
The speed-up is the ratio of the two, measured in the same run (goal: >= 50x).

--encoder minilm embeds with all-MiniLM-L6-v2 (the real cost of a first run); --encoder hashing
uses a cheap deterministic bag-of-words hashing encoder defined here, for machines where
embedding 100k captions with a transformer takes too long. The report says which was used.

    python benchmarks/bench_mining.py --encoder hashing --n_captions 100000
    python benchmarks/bench_mining.py --encoder minilm --n_captions 10000
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import warnings
import zlib
from pathlib import Path

from _timing import write_json

import torch

from mdm_kinemic.core.mining import Caption, MiningSettings, mine_soft_positives
from mdm_kinemic.text.cache import CachedTextEncoder
from mdm_kinemic.text.encoder import TextEncoder, get_text_encoder

CLASSES = ["run on the spot", "side kick", "stretch oneself"]
SUBJECTS = ["a person", "someone", "a man", "a woman", "the figure", "a human", "the person", "an athlete"]
VERBS = [
    "walks",
    "runs",
    "jogs",
    "kicks",
    "punches",
    "jumps",
    "waves",
    "bows",
    "sits down",
    "stands up",
    "turns",
    "stretches",
    "dances",
    "crouches",
    "spins",
    "hops",
    "skips",
    "throws a ball",
    "picks something up",
    "claps",
    "steps",
    "lunges",
    "squats",
    "reaches up",
    "climbs",
    "crawls",
    "slides",
    "stumbles",
    "swings",
    "raises both arms",
    "lifts the left leg",
    "kicks to the side",
    "runs in place",
    "shuffles",
    "marches",
    "leans",
    "twists",
    "rolls",
    "falls",
    "balances",
]
MANNERS = [
    "slowly",
    "quickly",
    "carefully",
    "energetically",
    "with the right leg",
    "with the left leg",
    "with both hands",
    "to the left",
    "to the right",
    "forward",
    "backward",
    "in a circle",
    "twice",
    "three times",
    "while looking down",
    "while turning",
    "in place",
    "on the spot",
    "then stops",
    "gracefully",
]
ENDINGS = [
    "",
    " and then stands still",
    " and walks away",
    " before turning around",
    " and raises the hands",
    " and sits",
    " and jumps",
    " and looks around",
    " and bows",
    " and kneels",
    " and waves",
    " and steps back",
    " and claps",
    " and stretches",
    " and leans forward",
    " and spins",
    " and crouches",
    " and hops",
    " and lunges",
    " and rests",
]


class HashingEncoder(TextEncoder):
    """Bag of hashed unigrams and bigrams (CRC32) in 384 dims: cheap and deterministic."""

    def __init__(self, dim: int = 384, batch_size: int = 4096) -> None:
        self._dim = dim
        self.batch_size = batch_size
        self.show_progress = False

    @property
    def identity(self) -> str:
        return f"hashing-bow-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self._dim)
        for row, text in enumerate(texts):
            words = text.lower().split()
            for token in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = zlib.crc32(token.encode())
                out[row, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
        return out


def synthetic_corpus(n: int) -> list[Caption]:
    """N distinct captions, three per clip id, one in three with a sub-span; at most 128,000."""
    combos = itertools.product(ENDINGS, MANNERS, VERBS, SUBJECTS)
    corpus = []
    for i, (ending, manner, verb, subject) in enumerate(itertools.islice(combos, n)):
        span = (20 * (i % 5), 20 * (i % 5) + 60) if i % 3 == 2 else (0, 0)
        corpus.append(Caption(f"{i // 3:06d}", f"{subject} {verb} {manner}{ending}", *span))
    if len(corpus) < n:
        raise ValueError(f"the synthetic corpus has at most {len(corpus)} distinct captions; lower --n_captions")
    return corpus


def timed_mining(
    corpus: list[Caption], encoder: TextEncoder, cache_dir: Path, top_k: int
) -> tuple[float, CachedTextEncoder, object]:
    cached = CachedTextEncoder(encoder, cache_dir)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mine_soft_positives(CLASSES, corpus, cached, MiningSettings(top_k=top_k))
    return time.perf_counter() - start, cached, result


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", choices=["minilm", "hashing"], default="hashing", help="text encoder of the first run")
    p.add_argument("--n_captions", type=int, default=100_000, help="corpus size (distinct captions)")
    p.add_argument("--top_k", type=int, default=250, help="soft positives per class")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "mining.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    corpus = synthetic_corpus(args.n_captions)
    encoder = HashingEncoder() if args.encoder == "hashing" else get_text_encoder("minilm", batch_size=256)
    with tempfile.TemporaryDirectory() as tmp:
        first_s, first, first_result = timed_mining(corpus, encoder, Path(tmp), args.top_k)
        cached_s, second, second_result = timed_mining(corpus, encoder, Path(tmp), args.top_k)
        cache_mb = sum(f.stat().st_size for f in Path(tmp).glob("*.pt")) / 2**20
    assert (first.misses, second.hits, second.misses) == (2, 2, 0), "the second run must read both embeddings from disk"
    assert first_result == second_result, "cached mining must give the same positives"
    report = {
        "encoder": encoder.identity,
        "captions": len(corpus),
        "classes": len(CLASSES),
        "top_k": args.top_k,
        "threads": args.threads,
        "first_run_s": round(first_s, 3),
        "cached_run_s": round(cached_s, 3),
        "speedup": round(first_s / cached_s, 1),
        "goal_speedup": 50,
        "cache_mb": round(cache_mb, 1),
    }
    print(f"{'encoder':<28} {'captions':>9} {'first s':>9} {'cached s':>9} {'speed-up':>9} {'cache MB':>9}")
    print(
        f"{args.encoder:<28} {report['captions']:>9} {report['first_run_s']:>9.2f} {report['cached_run_s']:>9.3f} "
        f"{report['speedup']:>8.1f}x {report['cache_mb']:>9.1f}"
    )
    write_json(report, args.out, indent=1)
    return report


if __name__ == "__main__":
    main()
