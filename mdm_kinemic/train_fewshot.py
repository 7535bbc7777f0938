"""KineMIC fine-tuning of a pre-trained MDM on a few-shot action set (Cazzola & Alboody, arXiv 2512.11654).

    python -m mdm_kinemic.train_fewshot --mdm_ckpt humanml_trans_enc_512 \\
        [--target_data NTU-VIBE --fewshot_split S0000 --source_data HumanML3D --save_dir save/kinemic]

Every flag comes from a settings dataclass of the library (training/settings.py, core/mining.py,
core/objective.py, core/contrastive.py, mdm/lora.py, mdm/kinemic_mdm.py, mdm/options.py); its
default is the paper's where the paper gives one, else the choice in DESIGN.md's defaults table,
with the authors' differing choice as an option. Run again with the same flags to resume from the
latest checkpoint in --save_dir. docs/train.md describes the outputs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

from mdm_kinemic.core.contrastive import ContrastiveSettings
from mdm_kinemic.core.losses import DISTILLATION_NORMALISATIONS
from mdm_kinemic.core.mining import MINING_UNITS, PROMPT_SOURCES, MiningSettings
from mdm_kinemic.core.objective import TABLE2_PRESETS, LossWeights, ObjectiveSettings
from mdm_kinemic.mdm.kinemic_mdm import ACTION_INITS, TEACHER_MODES
from mdm_kinemic.mdm.lora import LoraSettings
from mdm_kinemic.mdm.options import UpstreamSettings
from mdm_kinemic.training.cli_options import add_dataclass_options, dataclass_from_args
from mdm_kinemic.training.settings import (
    FewShotDataSettings,
    LoggingSettings,
    NoiseSettings,
    OptimSettings,
    RunSettings,
)
from mdm_kinemic.training.soft_positives import MiningRunSettings

TABLE2_SWITCHES = ("contrastive", "window_rec", "distillation", "dww")
_PRESET_HELP = (
    "row of the paper's Table 2: mdm_lora (MDM+LoRA baseline: L_rec^T only), base (+ L_con + L_rec^{P*}), "
    "base_dist (+ L_dist), base_dww (+ dww), full (all terms, the paper's KineMIC); the four switches "
    "below override single terms (default: full)"
)
_HELP = {
    # core/mining.py MiningSettings
    "top_k": "soft positives kept per class (paper Sec. 4.1: k = 250)",
    "prompt_source": "class prompts: 'template' formats --templates with the class name (paper Sec. 4.1); "
                     "'ntu' takes the captions of --ntu_metadata (the authors' ntu_metadata.json)",
    "templates": "prompt templates with a {label} placeholder, averaged when several (paper: "
                 "'a person performs a {label}.')",
    "ntu_metadata": "NTU-style metadata JSON with captions per action (for --prompt_source ntu)",
    "unit": "mining unit: 'caption' ranks every caption with its #start#end sub-span (ours); 'clip_mean' "
            "ranks clips by their mean caption embedding (the authors' code)",
    # core/objective.py ObjectiveSettings
    "contrastive": "L_con, Eq. 1 (SNN loss), which trains the MIC module (Sec. 4.2); default: set by --preset",
    "window_rec": "L_rec^{P*}, Eq. 4: reconstruction of the mined prior window, labelled with the target's "
                  "class; default: set by --preset",
    "distillation": "L_dist, Eq. 5: student features on the window vs teacher features at the same frames; "
                    "default: set by --preset",
    "dww": "dynamic window weighting, Eq. 6: scale Eq. 4 and 5 per pair by (cos(z^T, z^{P*}) + 1) / 2; "
           "default: set by --preset",
    "text_dropout": "probability of dropping a student sample's text condition (classifier-free guidance; "
                    "paper silent, the authors' 0.1)",
    "action_dropout": "probability of dropping a student sample's action condition (paper silent, the authors' 0.1)",
    "distillation_normalisation": "Eq. 5 normalisation: 'frame' = mean over window frames of the squared L2 "
                                  "(paper), 'element' = also divided by d (the authors' code)",
    # core/objective.py LossWeights
    "lambda_rec": "lambda of L_rec^T, Eq. 3 (paper: 1)",
    "lambda_window_rec": "lambda of L_rec^{P*}, Eq. 4 (paper: 1)",
    "lambda_con": "lambda of L_con, Eq. 1 (paper: 1)",
    "lambda_dist": "lambda of L_dist, Eq. 5 (paper: 1; the authors' best command: 0)",
    # core/contrastive.py ContrastiveSettings
    "temperature": "temperature tau of Eq. 1 (paper: 0.07)",
    "learnable_temperature": "learn 1/tau as a logit scale initialised at 1/tau, clamped (the authors' code); "
                             "default fixed (paper)",
    "max_logit_scale": "upper clamp of the learnable 1/tau (the authors' 100)",
    "bank_size": "FIFO bank of detached prior embeddings from earlier steps as extra Eq. 1 candidates "
                 "(the authors' 60; paper: the batch only, 0)",
    # mdm/lora.py LoraSettings
    "rank": "LoRA rank r on every adapted layer (paper Sec. 4: 16)",
    "alpha": "LoRA alpha; the update is scaled by alpha / r (paper: 32)",
    "dropout": "dropout on the LoRA input of adapted linear layers, none on attention (paper: 0.1)",
    "targets": "layer groups that get LoRA (paper: all layers; embed_text, LayerNorms and CLIP never)",
    # mdm/options.py UpstreamSettings
    "mdm_root": "upstream MDM checkout (default: $MDM_ROOT, else the submodule third_party/motion-diffusion-model)",
    "clip_weights": "CLIP ViT-B/32 weights file, or 'random' for dry runs (meaningless text features, warned); "
                    "default: $MDM_KINEMIC_CLIP_WEIGHTS, else the caches",
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m mdm_kinemic.train_fewshot``, one group per settings dataclass."""
    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.train_fewshot", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_options(parser, RunSettings, "run")
    add_dataclass_options(parser, UpstreamSettings, "upstream", help_overrides=_HELP)
    add_dataclass_options(parser, FewShotDataSettings, "few-shot data")
    add_dataclass_options(parser, MiningSettings, "soft positive mining (Sec. 4.1)", help_overrides=_HELP,
                          choices={"prompt_source": PROMPT_SOURCES, "unit": MINING_UNITS})
    add_dataclass_options(parser, MiningRunSettings, "mining encoder and filters (Sec. 4.1)")
    objective = add_dataclass_options(
        parser, ObjectiveSettings, "objective (Sec. 4, Table 2)", help_overrides=_HELP,
        skip=("weights", "contrastive_settings"), defaults={k: None for k in TABLE2_SWITCHES},
        choices={"distillation_normalisation": DISTILLATION_NORMALISATIONS},
    )
    objective.add_argument("--preset", choices=list(TABLE2_PRESETS), default="full", help=_PRESET_HELP)
    add_dataclass_options(parser, LossWeights, "loss weights (Sec. 4)", help_overrides=_HELP)
    add_dataclass_options(parser, ContrastiveSettings, "contrastive loss (Eq. 1)", help_overrides=_HELP,
                          renames={"temperature": "tau"})
    student = add_dataclass_options(parser, LoraSettings, "student: LoRA (Sec. 4)", prefix="lora_",
                                    help_overrides=_HELP)
    student.add_argument("--action_init", choices=list(ACTION_INITS), default="normal",
                         help="init of the new action embedding: 'normal' = N(0, 0.02^2) (paper silent; ours), "
                              "'randn' = N(0, 1) (the authors' code) (default: normal)")
    student.add_argument("--teacher_mode", choices=list(TEACHER_MODES), default="eval",
                         help="module mode of the frozen teacher: 'eval', deterministic (paper: frozen; ours), or "
                              "'train', dropout and text masking active (the authors' code) (default: eval)")
    add_dataclass_options(parser, NoiseSettings, "forward diffusion")
    add_dataclass_options(parser, OptimSettings, "optimisation (Sec. 5)")
    add_dataclass_options(parser, LoggingSettings, "checkpoints and logging")
    return parser


UPSTREAM_LAYOUT = {"target_data": "dataset/NTU-VIBE", "source_data": "dataset/HumanML3D"}
"""Where the main job looks for its data when no folder is given: upstream's own layout, in which
HumanML3D already sits (upstream's README) and the authors' NTU-VIBE release goes beside it."""


def fill_upstream_defaults(args: argparse.Namespace) -> None:
    """Fill ``--target_data``, ``--source_data`` and ``--save_dir`` left empty from upstream's layout.

    The defaults are absolute paths under the upstream root (``--mdm_root``, ``$MDM_ROOT``, else
    the submodule); ``--save_dir`` becomes ``save/kinemic_<checkpoint name>`` beside upstream's
    own checkpoints.

    Raises:
        UpstreamNotFoundError: a default is needed and upstream is not found.
    """
    missing = [name for name in (*UPSTREAM_LAYOUT, "save_dir") if not getattr(args, name)]
    if not missing:
        return
    from mdm_kinemic.mdm.upstream import locate_upstream

    root = locate_upstream(args.mdm_root)
    for name, relative in UPSTREAM_LAYOUT.items():
        if name in missing:
            setattr(args, name, str(root / relative))
    if "save_dir" in missing:
        ckpt = Path(args.mdm_ckpt)
        name = ckpt.parent.name if ckpt.suffix == ".pt" else ckpt.name
        args.save_dir = str(root / "save" / f"kinemic_{name}")


def config_from_args(args: argparse.Namespace):
    """The :class:`FewShotRunConfig` of parsed flags, empty data folders filled by
    :func:`fill_upstream_defaults`.

    Raises:
        ValueError: a setting out of range (the message names the flag).
        UpstreamNotFoundError: a default folder is needed and upstream is not found.
    """
    from mdm_kinemic.mdm.training_loop import FewShotRunConfig

    fill_upstream_defaults(args)

    switches = {k: getattr(args, k) for k in TABLE2_SWITCHES if getattr(args, k) is not None}
    objective = ObjectiveSettings.preset(
        args.preset, **switches,
        weights=dataclass_from_args(LossWeights, args),
        contrastive_settings=dataclass_from_args(ContrastiveSettings, args, renames={"temperature": "tau"}),
        text_dropout=args.text_dropout, action_dropout=args.action_dropout,
        distillation_normalisation=args.distillation_normalisation,
    )
    return FewShotRunConfig(
        run=dataclass_from_args(RunSettings, args),
        upstream=dataclass_from_args(UpstreamSettings, args),
        data=dataclass_from_args(FewShotDataSettings, args),
        mining=dataclass_from_args(MiningSettings, args),
        mining_run=dataclass_from_args(MiningRunSettings, args),
        lora=dataclass_from_args(LoraSettings, args, prefix="lora_"),
        action_init=args.action_init,
        teacher_mode=args.teacher_mode,
        objective=objective,
        noise=dataclass_from_args(NoiseSettings, args),
        optim=dataclass_from_args(OptimSettings, args),
        logging=dataclass_from_args(LoggingSettings, args),
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse the flags, then train; bad input ends with its message and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config = config_from_args(args)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
    for warning in caught:
        logging.getLogger("mdm_kinemic.train_fewshot").warning("%s", warning.message)

    from mdm_kinemic.mdm.training_loop import run_fewshot_training

    try:
        save_dir = run_fewshot_training(config)
    except (ValueError, FileNotFoundError) as err:
        print(f"train_fewshot: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    logging.getLogger("mdm_kinemic.train_fewshot").info("done: %s", save_dir)


if __name__ == "__main__":
    main()
