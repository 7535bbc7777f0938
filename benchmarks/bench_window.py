"""Benchmark: Eq. 2 window mining vs one denoiser forward, at the paper's batch (B=30, T=196).

Window mining = mine_prior_windows on the prior attention plus the three gathers the objective
does (x_t^P and x0^P [B, 263, 1, T], teacher features [B, T, 512]). The reference is one
no-grad forward of a transformer the size of MDM's trans_enc (8 layers, d=512, ff 1024, 4 heads,
a condition token plus T frame tokens, 263 -> 512 -> 263), built here from torch.nn layers.
The cost ratio is measured in the same run (goal: < 1 %). Times are the minimum over --repeats
(as timeit advises: on a shared machine, larger values measure the other processes).

    python benchmarks/bench_window.py --threads 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _timing import write_json

import torch
from torch import nn

from mdm_kinemic.core.window import gather_window, mine_prior_windows


class MDMSizedDenoiser(nn.Module):
    """Layer sizes of MDM's trans_enc (model/mdm.py): the reference cost of one forward."""

    def __init__(
        self, n_features: int = 263, latent_dim: int = 512, layers: int = 8, ff_dim: int = 1024, heads: int = 4
    ) -> None:
        super().__init__()
        self.input_process = nn.Linear(n_features, latent_dim)
        layer = nn.TransformerEncoderLayer(latent_dim, heads, ff_dim, dropout=0.1, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.output_process = nn.Linear(latent_dim, n_features)

    def forward(self, x_t: torch.Tensor, cond_token: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        frames = self.input_process(x_t[:, :, 0].permute(2, 0, 1))  # [T, B, d], as upstream
        hidden = self.encoder(torch.cat([cond_token[None], frames]), src_key_padding_mask=padding)
        return self.output_process(hidden[1:]).permute(1, 2, 0)[:, :, None]


def min_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=30, help="B: target-prior pairs per step (paper: 30)")
    p.add_argument("--frames", type=int, default=196, help="T: frames per motion (MDM's maximum at 20 fps)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (minimum reported)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "window.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    g = torch.Generator().manual_seed(0)
    batch, frames = args.batch, args.frames
    x_t = torch.randn(batch, 263, 1, frames, generator=g).to(device)
    x0 = torch.randn(batch, 263, 1, frames, generator=g).to(device)
    features = torch.randn(batch, frames, 512, generator=g).to(device)
    attention = torch.softmax(torch.randn(batch, frames, generator=g), dim=1).to(device)
    prior_lengths = torch.randint(40, frames + 1, (batch,), generator=g).to(device)
    target_lengths = torch.randint(40, frames + 1, (batch,), generator=g).to(device)
    padding = torch.zeros(batch, frames + 1, dtype=torch.bool, device=device)
    padding[:, 1:] = torch.arange(frames, device=device)[None] >= prior_lengths[:, None]
    cond_token = torch.randn(batch, 512, generator=g).to(device)
    model = MDMSizedDenoiser().to(device).eval()

    def forward():
        with torch.no_grad():
            model(x_t, cond_token, padding)
        sync()

    def window_mining():
        window = mine_prior_windows(attention, prior_lengths, target_lengths)
        gather_window(x_t, window, frames)
        gather_window(x0, window, frames)
        gather_window(features, window, frames, time_dim=1)
        sync()

    forward_s = min_seconds(forward, args.repeats)
    window_s = min_seconds(window_mining, max(args.repeats, 50))
    report = {
        "device": str(device),
        "threads": args.threads,
        "batch": batch,
        "frames": frames,
        "denoiser_forward_ms": round(forward_s * 1e3, 2),
        "window_mining_ms": round(window_s * 1e3, 3),
        "ratio_percent": round(100 * window_s / forward_s, 3),
        "goal_percent": 1.0,
    }
    print(f"{'B':>4} {'T':>5} {'forward ms':>11} {'window ms':>10} {'ratio %':>8}")
    print(
        f"{batch:>4} {frames:>5} {report['denoiser_forward_ms']:>11.1f} {report['window_mining_ms']:>10.3f} "
        f"{report['ratio_percent']:>8.3f}"
    )
    write_json(report, args.out, indent=1)
    return report


if __name__ == "__main__":
    main()
