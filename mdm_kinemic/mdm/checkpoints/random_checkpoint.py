"""Upstream-format MDM checkpoints with RANDOM weights, for dry runs and tests.

    python -m mdm_kinemic.mdm.checkpoints.random_checkpoint --like humanml_trans_enc_512 --out DIR \
        [--layers 2 --latent_dim 64] [--seed 0]

writes ``DIR/args.json``, ``DIR/model000000000.pt`` and ``DIR/RANDOM_WEIGHTS.txt``. The network is
upstream's own ``model.mdm.MDM`` built by ``utils.model_util.create_model_and_diffusion`` from the
preset's args.json; the weights are its random initialisation (seeded), saved as upstream's
TrainLoop.save does (CLIP removed; ``{'model', 'model_avg'}`` when the preset trains with EMA).
args.json carries ``"random_weights": true`` and the loader warns on every load.

Presets (``PRESETS``):

* ``humanml_trans_enc_512``: the args.json of upstream's released "humanml-encoder-512" model
  (the paper's best), i.e. the 2022 training flags: trans_enc, 8 layers, latent 512, cond_mask_prob
  0.1, 1000 cosine diffusion steps, sigma_small, no auxiliary losses. Its values were read from a
  public copy of that args.json (key for key the flags of upstream's 2022 train_args); keys newer
  upstream added later (mask_frames, use_ema, text_encoder_type, pos_embed_max_len, ...) are absent
  from it, so upstream's defaults apply, as they do when upstream loads the released file.
* ``humanml_enc_512_50steps``: the 50-step release, approximated by upstream README's training
  command for it (``--diffusion_steps 50 --mask_frames --use_ema``) on the same base flags.
* ``kit_trans_enc_512``: the KIT model (251 features), the base flags with ``--dataset kit``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mdm_kinemic.atomic import atomic_torch_save, atomic_write_text
from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args
from mdm_kinemic.mdm.upstream.options import UpstreamSettings, add_upstream_options

__all__ = ["PRESETS", "RANDOM_MARKER", "RandomCheckpointSettings", "main", "make_random_checkpoint"]

logger = logging.getLogger(__name__)

RANDOM_MARKER = "RANDOM_WEIGHTS.txt"

_HUMANML_TRANS_ENC_512 = {
    "arch": "trans_enc",
    "batch_size": 64,
    "cond_mask_prob": 0.1,
    "cuda": True,
    "data_dir": "",
    "dataset": "humanml",
    "device": 0,
    "diffusion_steps": 1000,
    "emb_trans_dec": False,
    "eval_batch_size": 32,
    "eval_during_training": False,
    "eval_num_samples": 1000,
    "eval_rep_times": 3,
    "eval_split": "test",
    "lambda_fc": 0.0,
    "lambda_rcxyz": 0.0,
    "lambda_vel": 0.0,
    "latent_dim": 512,
    "layers": 8,
    "log_interval": 1000,
    "lr": 0.0001,
    "lr_anneal_steps": 0,
    "noise_schedule": "cosine",
    "num_frames": 60,
    "num_steps": 600000,
    "overwrite": False,
    "resume_checkpoint": "",
    "save_dir": "save/my_humanml_trans_enc_512",
    "save_interval": 50000,
    "seed": 10,
    "sigma_small": True,
    "train_platform_type": "NoPlatform",
    "unconstrained": False,
    "weight_decay": 0.0,
}

PRESETS: dict[str, dict] = {
    "humanml_trans_enc_512": _HUMANML_TRANS_ENC_512,
    "humanml_enc_512_50steps": {
        **_HUMANML_TRANS_ENC_512,
        "diffusion_steps": 50,
        "mask_frames": True,
        "use_ema": True,
        "save_dir": "save/my_humanml_trans_enc_512_50steps",
    },
    "kit_trans_enc_512": {**_HUMANML_TRANS_ENC_512, "dataset": "kit", "save_dir": "save/my_kit_trans_enc_512"},
}


@dataclass
class RandomCheckpointSettings:
    """What random checkpoint to write."""

    out: str = field(metadata={"help": "Output folder (created; must not hold a model*.pt unless --overwrite)."})
    like: str = field(
        default="humanml_trans_enc_512",
        metadata={"help": "Released checkpoint whose args.json to use.", "choices": tuple(PRESETS)},
    )
    layers: int | None = field(default=None, metadata={"help": "Override the transformer depth (tiny tests: 2)."})
    latent_dim: int | None = field(default=None, metadata={"help": "Override the latent width (tiny tests: 64)."})
    seed: int = field(default=0, metadata={"help": "Seed of the random initialisation."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing checkpoint in --out."})

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ValueError("out: give the output folder (--out DIR)")
        self.out = os.path.abspath(os.path.expanduser(str(self.out)))
        if self.like not in PRESETS:
            raise ValueError(f"like: {self.like!r} is unknown; accepted values are {sorted(PRESETS)}")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"layers: {self.layers} must be >= 1")
        # upstream's MDM has 4 attention heads; the sinusoidal embedding needs an even width
        if self.latent_dim is not None and (self.latent_dim < 4 or self.latent_dim % 4):
            raise ValueError(f"latent_dim: {self.latent_dim} must be a positive multiple of 4 (4 attention heads)")


def make_random_checkpoint(
    settings: RandomCheckpointSettings, *, mdm_root: str | os.PathLike | None = None
) -> Path:
    """Write an upstream-format checkpoint with random weights (see the module docstring).

    Args:
        settings: output folder, preset and size overrides.
        mdm_root: ``--mdm_root`` (``import_upstream``).

    Returns:
        Path of the written ``model000000000.pt``.

    Raises:
        FileExistsError: the folder already holds a checkpoint and ``overwrite`` is False.
        UpstreamNotFoundError: no upstream MDM.
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import upstream_default_args
    from mdm_kinemic.mdm.model.build import build_upstream_model
    from mdm_kinemic.mdm.upstream import clip_compat
    from mdm_kinemic.mdm.upstream.locate import import_upstream, upstream_state

    out = Path(settings.out)
    if out.is_dir() and any(out.glob("model*.pt")) and not settings.overwrite:
        raise FileExistsError(f"{out} already holds a checkpoint; pass --overwrite or choose another --out")
    import_upstream(mdm_root)
    from utils.parser_util import apply_rules

    saved = dict(PRESETS[settings.like])
    if settings.layers is not None:
        saved["layers"] = settings.layers
    if settings.latent_dim is not None:
        saved["latent_dim"] = settings.latent_dim
    args = upstream_default_args()
    for key, value in saved.items():
        setattr(args, key, value)
    args = apply_rules(args)

    # CLIP is never saved in a checkpoint, so which CLIP builds the model does not matter: use the
    # random one rather than demanding real weights for a random checkpoint
    previous = clip_compat.configured_weights()
    state = upstream_state()
    if state is not None and state.clip_stand_in:
        clip_compat.configure("random")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model, _ = build_upstream_model(args)
    finally:
        if state is not None and state.clip_stand_in:
            clip_compat.configure(previous)
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("clip_model.")}
    payload = {"model": weights, "model_avg": {k: v.clone() for k, v in weights.items()}} if saved.get("use_ema") else weights

    out.mkdir(parents=True, exist_ok=True)
    saved["random_weights"] = True
    saved["random_checkpoint"] = {
        "like": settings.like,
        "seed": settings.seed,
        "note": "RANDOM weights from mdm_kinemic.mdm.checkpoints.random_checkpoint: for dry runs and tests only",
    }
    ckpt = out / f"model{0:09d}.pt"
    atomic_torch_save(ckpt, payload)
    atomic_write_text(out / "args.json", json.dumps(saved, indent=4, sort_keys=True))
    atomic_write_text(
        out / RANDOM_MARKER,
        f"The weights in this folder are RANDOM (mdm_kinemic.mdm.checkpoints.random_checkpoint --like {settings.like}, "
        f"seed {settings.seed}). They generate noise, not motion. Use them for dry runs and tests only.\n",
    )
    logger.warning("wrote a RANDOM-weight MDM checkpoint %s (like %s): not a trained model", ckpt, settings.like)
    return ckpt


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.mdm.checkpoints.random_checkpoint",
        description="Write an upstream MDM checkpoint with RANDOM weights (dry runs and tests only).",
    )
    add_dataclass_options(parser, RandomCheckpointSettings, "random checkpoint")
    add_upstream_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = dataclass_from_args(RandomCheckpointSettings, args)
        upstream = UpstreamSettings.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    make_random_checkpoint(settings, mdm_root=upstream.mdm_root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
