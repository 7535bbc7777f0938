"""KineMIC fine-tuning of a pre-trained MDM on a few-shot action set (Cazzola & Alboody, arXiv 2512.11654).

    python -m mdm_kinemic.train_fewshot --mdm_ckpt humanml_trans_enc_512 \\
        [--target_data NTU-VIBE --fewshot_split S0000 --source_data HumanML3D --save_dir save/kinemic]

Every flag comes from a settings dataclass of the library (training/settings.py, core/mining.py,
core/objective.py, core/contrastive.py, mdm/model/lora.py, mdm/model/kinemic_mdm.py, mdm/upstream/options.py); its
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
from typing import Any, Optional, Sequence

from mdm_kinemic.core.contrastive import ContrastiveSettings
from mdm_kinemic.core.kinematic_rerank import KinematicRerankSettings
from mdm_kinemic.core.mining import DEFAULT_PROMPT_TEMPLATE, MiningSettings
from mdm_kinemic.core.objective import TABLE2_PRESETS, LossWeights, ObjectiveSettings
from mdm_kinemic.core.prompts import PromptAugmentationSettings
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings
from mdm_kinemic.mdm.upstream.options import UpstreamSettings
from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args
from mdm_kinemic.training.settings import (
    FewShotDataSettings,
    LoggingSettings,
    NetworkSettings,
    NoiseSettings,
    OptimSettings,
    RunSettings,
)
from mdm_kinemic.training.soft_positives import MiningRunSettings

TABLE2_SWITCHES = ("contrastive", "window_rec", "distillation", "dww")
PAPER_PRESET = "paper"
#: --preset paper: every value the paper states (arXiv 2512.11654), by flag, whatever the current
#: defaults are; flags given on the command line still win. Points where the paper is silent
#: (condition dropout, action embedding init, weight decay, noise sharing) keep the defaults.
PAPER_VALUES: dict[str, Any] = {
    # Sec. 4.1: CLIP text of "a person performs a {label}.", top-k = 250 captions with sub-spans
    "mining_encoder": "clip", "prompt_source": "template", "templates": (DEFAULT_PROMPT_TEMPLATE,), "top_k": 250,
    "unit": "caption", "min_similarity": 0.0, "kinematic_rerank": "off",
    # Sec. 4: the student's text is the label prompt, one per class; the teacher is frozen
    "target_text": "prompt", "prompt_augmentation": False, "teacher_mode": "eval",
    # Sec. 4 / Table 2 Full: all terms weighted 1; Eq. 1 with tau = 0.07 over the batch; Eq. 5 per frame
    "lambda_rec": 1.0, "lambda_window_rec": 1.0, "lambda_con": 1.0, "lambda_dist": 1.0, "tau": 0.07,
    "learnable_temperature": False, "bank_size": 0, "distillation_normalisation": "frame",
    # Sec. 4: LoRA rank 16, alpha 32, dropout 0.1; Sec. 5: 10 shots, AdamW 2e-5, clip 1.0, 5000 steps
    "lora_rank": 16, "lora_alpha": 32.0, "lora_dropout": 0.1, "shots": 10, "lr": 2e-5, "grad_clip": 1.0,
    "num_steps": 5000,
}
_PRESET_HELP = (
    "row of the paper's Table 2: mdm_lora (MDM+LoRA baseline: L_rec^T only), base (+ L_con + L_rec^{P*}), "
    "base_dist (+ L_dist), base_dww (+ dww), full (all terms, the paper's KineMIC); or paper: full with "
    "every value the paper states (Eq. 5 per frame, lambdas 1, fixed tau 0.07, no bank, k = 250, LoRA "
    "16/32/0.1, 5000 steps at 2e-5; docs/core.md), over the current defaults; the four switches below "
    "override single terms, other flags override the paper's values (default: full)"
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m mdm_kinemic.train_fewshot``, one group per settings dataclass."""
    parser = argparse.ArgumentParser(
        prog="python -m mdm_kinemic.train_fewshot", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_options(parser, RunSettings, "run")
    add_dataclass_options(parser, UpstreamSettings, "upstream")
    add_dataclass_options(parser, FewShotDataSettings, "few-shot data")
    add_dataclass_options(parser, MiningSettings, "soft positive mining (Sec. 4.1)")
    add_dataclass_options(parser, MiningRunSettings, "mining encoder and filters (Sec. 4.1)")
    add_dataclass_options(parser, KinematicRerankSettings, "kinematic re-ranking of soft positives (future work)")
    add_dataclass_options(parser, PromptAugmentationSettings, "prompt augmentation of the student's text")
    objective = add_dataclass_options(
        parser, ObjectiveSettings, "objective (Sec. 4, Table 2)",
        skip=("weights", "contrastive_settings"), defaults={k: None for k in TABLE2_SWITCHES},
    )
    objective.add_argument("--preset", choices=[*TABLE2_PRESETS, PAPER_PRESET], default="full", help=_PRESET_HELP)
    add_dataclass_options(parser, LossWeights, "loss weights (Sec. 4)")
    add_dataclass_options(parser, ContrastiveSettings, "contrastive loss (Eq. 1)", renames={"temperature": "tau"})
    add_dataclass_options(parser, LoraSettings, "student: LoRA (Sec. 4)", prefix="lora_")
    add_dataclass_options(parser, KineMICModelSettings, "student: action embedding and teacher",
                          skip=("num_actions", "class_names"))
    add_dataclass_options(parser, NetworkSettings, "student: the pre-trained transformer")
    add_dataclass_options(parser, NoiseSettings, "forward diffusion")
    add_dataclass_options(parser, OptimSettings, "optimisation (Sec. 5)")
    add_dataclass_options(parser, LoggingSettings, "checkpoints and logging")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the flags; with ``--preset paper`` its :data:`PAPER_VALUES` replace the defaults first,
    so that a flag given on the command line still wins."""
    parser = build_parser()
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--preset")
    if early.parse_known_args(argv)[0].preset == PAPER_PRESET:
        parser.set_defaults(**PAPER_VALUES)
    return parser.parse_args(argv)


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
    from mdm_kinemic.mdm.upstream.locate import locate_upstream

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
    from mdm_kinemic.mdm.training.training_loop import FewShotRunConfig

    fill_upstream_defaults(args)

    switches = {k: getattr(args, k) for k in TABLE2_SWITCHES if getattr(args, k) is not None}
    objective = ObjectiveSettings.preset(
        "full" if args.preset == PAPER_PRESET else args.preset, **switches,
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
        rerank=dataclass_from_args(KinematicRerankSettings, args),
        prompts=dataclass_from_args(PromptAugmentationSettings, args),
        network=dataclass_from_args(NetworkSettings, args),
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse the flags, then train; bad input ends with its message and exit status 2."""
    parser = build_parser()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config = config_from_args(args)
        except (ValueError, FileNotFoundError) as err:
            parser.error(str(err))
    for warning in caught:
        logging.getLogger("mdm_kinemic.train_fewshot").warning("%s", warning.message)

    from mdm_kinemic.mdm.training.training_loop import NonFiniteLossError, run_fewshot_training

    try:
        save_dir = run_fewshot_training(config)
    except (ValueError, FileNotFoundError) as err:
        print(f"train_fewshot: error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    except NonFiniteLossError as err:
        print(f"train_fewshot: stopped: {err}", file=sys.stderr)
        raise SystemExit(1) from err
    logging.getLogger("mdm_kinemic.train_fewshot").info("done: %s", save_dir)


if __name__ == "__main__":
    main()
