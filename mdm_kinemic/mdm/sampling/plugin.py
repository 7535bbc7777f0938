"""The ``--kinemic`` model plugin: KineMIC checkpoints in upstream MDM's own scripts.

``PLUGIN`` implements the model-plugin interface of patches/0001 (upstream utils/model_plugins.py
once patched): options, argument rules, condition mode, model and diffusion creation, checkpoint
loading and the sampling dataset. Two routes use it:

* patched upstream: ``python -m sample.generate --kinemic ...`` from upstream's root, the plugin
  found through the entry point ``mdm.model_plugins`` (or ``MDM_MODEL_PLUGINS``);
* unpatched upstream: ``python -m mdm_kinemic.run sample.generate --kinemic ...``, where
  mdm/sampling/hooks.py calls the same methods from the places the patch would.

``--kinemic`` is a plugin option, outside the dataset/model/diffusion groups that upstream
overwrites from args.json, so the command line decides it (upstream's parse_and_load_from_model).

With the flag, sample/generate.py samples the student: actions by name (``--action_name``, NTU
names such as "side kick"), by class index (``--action_index``), or every class (the default),
``--num_samples`` motions per action, each conditioned on its class prompt plus its action, or
on ``--text_prompt`` plus its action (dual composition, the paper's Fig. 5).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mdm_kinemic.flags import add_dataclass_options
from mdm_kinemic.mdm.sampling.student import DUAL_COND_MODE, SamplingInputError

__all__ = ["PLUGIN", "KineMICOptions", "KineMICPlugin", "SamplingInputError", "add_kinemic_options"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KineMICOptions:
    """Options the plugin adds to upstream's scripts (group "kinemic")."""

    kinemic: bool = field(default=False, metadata={
        "help": "the model is a KineMIC checkpoint (folder written by python -m mdm_kinemic.train_fewshot): "
                "sample its actions with the student; wins over args.json"})
    action_index: tuple[int, ...] = field(default=(), metadata={
        "help": "--kinemic: class indices (0-based, in the checkpoint's class order) to sample; default: "
                "every class unless --action_name / --action_file is given"})
    timestep_respacing: str = field(default="", metadata={
        "help": "--kinemic: respace the checkpoint's diffusion steps with upstream's space_timesteps "
                "('ddim50', '100', ...; '' keeps them)"})
    norm_stats: str | None = field(default=None, metadata={
        "help": "--kinemic: folder with the Mean.npy/Std.npy the base MDM was trained with (default: "
                "args.json's kinemic.norm_stats, the checkpoint folder, data_dir, upstream's dataset/HumanML3D, "
                "HumanML3D's shipped with mdm_kinemic)"})
    clip_weights: str | None = field(default=None, metadata={
        "help": "--kinemic: CLIP ViT-B/32 weights file, or 'random' for dry runs (default: "
                "$MDM_KINEMIC_CLIP_WEIGHTS, then those of the training run recorded in args.json if present, "
                "then the local caches)"})

    def __post_init__(self) -> None:
        if any(int(i) < 0 for i in self.action_index):
            raise ValueError(f"action_index must hold class indices >= 0, got {list(self.action_index)}")


def add_kinemic_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Add the "kinemic" option group (built from ``KineMICOptions``) to a parser.

    Options another group already defines (``--clip_weights`` where the caller added
    mdm/upstream/options.py's upstream group) are skipped.

    Returns:
        The argparse group.
    """
    taken = tuple(f.name for f in fields(KineMICOptions) if f"--{f.name}" in parser._option_string_actions)
    return add_dataclass_options(parser, KineMICOptions, "kinemic", skip=taken,
                                 description="KineMIC checkpoints (mdm-kinemic plugin)")


def _write_action_file(names: list[str]) -> str:
    """A temporary action file (one name per line), removed at exit; upstream's generate.py
    reads actions only from --action_name (one sample) or --action_file."""
    handle, path = tempfile.mkstemp(prefix="kinemic_actions_", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write("\n".join(names))
    atexit.register(_remove_file, path)
    return path


def _remove_file(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


def _read_action_file(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _upstream_root() -> Path | None:
    from mdm_kinemic.mdm.upstream.locate import upstream_state

    state = upstream_state()
    return state.root if state is not None else None


class KineMICPlugin:
    """The model plugin (see the module docstring and upstream utils/model_plugins.py once patched)."""

    name = "kinemic"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--kinemic`` and its options (``add_kinemic_options``)."""
        add_kinemic_options(parser)

    def is_active(self, args: argparse.Namespace) -> bool:
        """True when ``--kinemic`` was given."""
        return bool(getattr(args, "kinemic", False) is True)

    def cond_mode(self, args: argparse.Namespace) -> str:
        """'text_action': the student is conditioned on a text and an action at once."""
        return DUAL_COND_MODE

    def apply_rules(self, args: argparse.Namespace) -> argparse.Namespace:
        """Check a --kinemic run and turn its action choice into upstream's --action_file.

        For sample/generate.py: reads the checkpoint's classes; resolves --action_name,
        --action_file names, --action_index, or every class; writes --num_samples lines per
        action into a temporary --action_file (upstream samples one motion per line) and sets
        num_samples to their count; records the class of each sample in ``args.kinemic_actions``.

        Raises:
            SamplingInputError: train.train_mdm or eval.eval_humanml with --kinemic (use
                mdm_kinemic.train_fewshot / mdm_kinemic.har); a plain MDM checkpoint; an unknown
                action; num_samples < 1; --input_text (use --text_prompt).
        """
        if not hasattr(args, "model_path"):
            raise SamplingInputError(
                "--kinemic: train.train_mdm trains a plain MDM (the teacher); KineMIC fine-tuning is "
                "python -m mdm_kinemic.train_fewshot"
            )
        if hasattr(args, "eval_mode"):
            raise SamplingInputError(
                "--kinemic: eval.eval_humanml measures text-to-motion on HumanML3D; a KineMIC student is "
                "evaluated by action recognition on its synthetic data (python -m mdm_kinemic.synth, then "
                "mdm_kinemic.har)"
            )
        from mdm_kinemic.mdm.sampling.student import read_student_info, run_clip_weights, select_actions

        options = KineMICOptions(action_index=tuple(getattr(args, "action_index", None) or ()))
        info = read_student_info(args.model_path)
        args.clip_weights = run_clip_weights(getattr(args, "clip_weights", None), info)
        if args.clip_weights:
            from mdm_kinemic.mdm.upstream.locate import import_upstream

            import_upstream(_upstream_root(), clip_weights=args.clip_weights)
        if getattr(args, "input_text", ""):
            raise SamplingInputError("--kinemic: compose actions with one --text_prompt; --input_text is not supported")
        if args.num_samples < 1:
            raise SamplingInputError(f"--num_samples must be >= 1 (motions per action), got {args.num_samples}")
        if getattr(args, "action_file", ""):
            names = [n for n in _read_action_file(args.action_file) if n.strip()]
            actions = select_actions(info, names=names)
            if options.action_index or args.action_name:
                raise SamplingInputError("--kinemic: give --action_file alone, not with --action_name / --action_index")
        else:
            chosen = select_actions(info, names=[args.action_name] if args.action_name else (),
                                    indices=options.action_index)
            actions = [c for c in chosen for _ in range(args.num_samples)]
        args.action_name = ""
        args.action_file = _write_action_file([info.class_names[c] for c in actions])
        args.num_samples = len(actions)
        args.kinemic_actions = actions
        args.kinemic_info = info
        logger.info("--kinemic: %d motions of %s", len(actions), sorted({info.class_names[c] for c in actions}))
        return args

    def create_model_and_diffusion(self, args: argparse.Namespace, data: Any) -> tuple[Any, Any]:
        """The student (KineMICSamplingModel, LoRA merged) and upstream's diffusion, respaced by
        --timestep_respacing; ``data`` is not used (the classes come from the checkpoint)."""
        from mdm_kinemic.mdm.sampling.sampler import respaced_diffusion
        from mdm_kinemic.mdm.sampling.student import load_student

        loaded = load_student(args.model_path, mdm_root=_upstream_root(), clip_weights=getattr(args, "clip_weights", None))
        diffusion = respaced_diffusion(loaded.args, getattr(args, "timestep_respacing", "") or "")
        loaded.model.kinemic_model_path = loaded.info.model_path
        return loaded.model, diffusion

    def owns_model(self, model: Any) -> bool:
        """True for the student this plugin created."""
        from mdm_kinemic.mdm.sampling.student import KineMICSamplingModel

        return isinstance(model, KineMICSamplingModel)

    def load_saved_model(self, model: Any, model_path: str, use_avg: bool = False) -> Any:
        """The student was loaded with its checkpoint at creation; check it is the same file.

        Raises:
            SamplingInputError: another path than the one the model was created from.
        """
        from mdm_kinemic.mdm.sampling.student import resolve_model_file

        if resolve_model_file(model_path) != getattr(model, "kinemic_model_path", None):
            raise SamplingInputError(f"{model_path} is not the KineMIC checkpoint the model was created from")
        return model

    def get_dataset_loader(self, args: argparse.Namespace, **kwargs: Any) -> Any:
        """For sample/generate.py: a ``SamplingLoader`` (mdm/sampling/sampling_data.py) with the student's
        classes and Mean/Std, so that no HumanML3D copy is needed; None otherwise.

        Raises:
            SamplingInputError: no Mean/Std found (see ``student.find_norm_stats``).
        """
        if kwargs.get("hml_mode") != "text_only":
            return None
        from mdm_kinemic.mdm.sampling.sampling_data import (
            SamplingDataset,
            SamplingLoader,
        )
        from mdm_kinemic.mdm.sampling.student import find_norm_stats, read_student_info

        info = getattr(args, "kinemic_info", None) or read_student_info(args.model_path)
        mean, std, folder = find_norm_stats(info, getattr(args, "norm_stats", None), mdm_root=_upstream_root())
        logger.info("--kinemic: de-normalising with %s/Mean.npy and Std.npy", folder)
        return SamplingLoader(SamplingDataset(mean, std, info.class_names))


PLUGIN = KineMICPlugin()


def _prepare_running_upstream() -> None:
    """Under patched upstream (this module loaded by its utils/model_plugins.py, before
    model/mdm.py is imported): set up the upstream that is running (its own root), so that
    ``import clip`` and SMPL work as mdm/upstream/locate.py arranges for every other route."""
    running = sys.modules.get("utils.model_plugins")
    file = getattr(running, "__file__", None)
    if not file:
        return
    from mdm_kinemic.mdm.upstream.locate import (
        MDM_ROOT_ENV,
        import_upstream,
        upstream_state,
    )

    root = os.path.dirname(os.path.dirname(os.path.abspath(file)))
    # the seam's loaders call import_upstream() without a root; they must find this one
    os.environ[MDM_ROOT_ENV] = root
    if upstream_state() is None:
        import_upstream(root)


_prepare_running_upstream()
