"""A trained KineMIC student as sampling sees it: its classes, prompts, statistics and network.

Shared by the two sampling routes: upstream's sample/generate.py under ``--kinemic`` (the runner
or the patch, mdm/sampling/plugin.py) and ``python -m mdm_kinemic.synth``.

* ``read_student_info``: class names and the text condition c^T of each class, from the
  checkpoint folder's args.json ("kinemic" section, mdm/checkpoints/kinemic_checkpoint.py);
* ``select_actions``: actions by name (NTU's, e.g. "side kick"), by class index, or all;
* ``find_norm_stats``: the Mean/Std the student's base was trained with, to de-normalise samples;
* ``KineMICSamplingModel``: the student with upstream MDM's model interface, where a sample
  without text is conditioned on its class prompt plus its action (paper Sec. 4: c^T is the
  label prompt), and with text on that text plus its action (dual composition, paper Fig. 5);
* ``load_student``: all of the above from a checkpoint path.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "DUAL_COND_MODE",
    "ClassPromptModel",
    "KineMICSamplingModel",
    "LoadedStudent",
    "SamplingInputError",
    "StudentInfo",
    "find_norm_stats",
    "load_student",
    "read_student_info",
    "resolve_model_file",
    "run_clip_weights",
    "select_actions",
]

logger = logging.getLogger(__name__)

#: the condition mode a KineMIC student declares to upstream's scripts (text and action at once)
DUAL_COND_MODE = "text_action"
_STAT_FILES = ("Mean.npy", "Std.npy")
_SHIPPED = "HumanML3D's statistics shipped with mdm_kinemic"


class SamplingInputError(ValueError):
    """A sampling request that cannot be served; the message names the file or flag and the fix."""


@dataclass(frozen=True)
class StudentInfo:
    """What a KineMIC checkpoint folder says about its classes.

    Attributes:
        model_path: the model%09d.pt file (absolute).
        class_names: name of each action class, in class-index order.
        class_prompts: the text condition c^T of each class (paper Sec. 4, "a person performs a
            side kick."): args.json's kinemic.class_prompts where the training run recorded them,
            else the mining default template "a person performs a {label}." (core/mining.py).
        section: the whole "kinemic" section of args.json.
        args_json: the whole args.json (upstream's flags of the base plus the section).
        class_prompt_sets: per class, the prompts a run trained with --prompt_augmentation drew
            from (args.json's kinemic.class_prompt_sets); empty when it was trained without.
    """

    model_path: Path
    class_names: tuple[str, ...]
    class_prompts: tuple[str, ...]
    section: Mapping[str, Any]
    args_json: Mapping[str, Any]
    class_prompt_sets: tuple[tuple[str, ...], ...] = ()

    @property
    def num_actions(self) -> int:
        return len(self.class_names)


def resolve_model_file(model_path: str | os.PathLike) -> Path:
    """A model file from a file or a checkpoint folder (its latest model*.pt), for --model_path.

    Raises:
        SamplingInputError: no such file, or a folder without model*.pt.
    """
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        resolve_model_file as resolve,
    )

    try:
        return resolve(model_path)
    except FileNotFoundError as err:
        raise SamplingInputError(f"--model_path: {err}") from err


def read_student_info(model_path: str | os.PathLike) -> StudentInfo:
    """Classes and prompts of a KineMIC checkpoint.

    Args:
        model_path: SAVE/model%09d.pt or SAVE.

    Returns:
        StudentInfo.

    Raises:
        SamplingInputError: the path is missing, or is a plain MDM checkpoint (its args.json
            has no "kinemic" section), or args.json is unreadable.
    """
    from mdm_kinemic.core.mining import DEFAULT_PROMPT_TEMPLATE
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import (
        KINEMIC_SECTION,
        KineMICCheckpointError,
        read_kinemic_args,
    )

    path = resolve_model_file(model_path)
    try:
        args_json = read_kinemic_args(path)
    except KineMICCheckpointError as err:
        args_file = path.parent / "args.json"
        if args_file.is_file() and "no 'kinemic' section" in str(err):
            raise SamplingInputError(
                f"{path} is a plain MDM checkpoint ({args_file} has no '{KINEMIC_SECTION}' section), but "
                "--kinemic was given. Fix: drop --kinemic to sample it with upstream's own generate, or pass "
                "a KineMIC checkpoint folder written by python -m mdm_kinemic.train_fewshot."
            ) from err
        raise SamplingInputError(str(err)) from err
    section = dict(args_json[KINEMIC_SECTION])
    num_actions = int(section.get("num_actions", 0))
    names = tuple(str(n) for n in section.get("class_names") or ())
    if not names:
        names = tuple(f"class {i}" for i in range(num_actions))
    prompts = tuple(str(p) for p in section.get("class_prompts") or ())
    if not prompts:
        prompts = tuple(DEFAULT_PROMPT_TEMPLATE.format(label=n) for n in names)
        logger.info("%s records no class_prompts; using %r per class", path.parent / "args.json", DEFAULT_PROMPT_TEMPLATE)
    if len(prompts) != len(names):
        raise SamplingInputError(
            f"{path.parent / 'args.json'}: kinemic.class_prompts has {len(prompts)} prompts for {len(names)} classes; "
            "restore the args.json written with the checkpoint"
        )
    sets = tuple(tuple(str(p) for p in group) for group in section.get("class_prompt_sets") or ())
    if sets and (len(sets) != len(names) or not all(sets)):
        raise SamplingInputError(
            f"{path.parent / 'args.json'}: kinemic.class_prompt_sets has {len(sets)} sets for {len(names)} classes "
            "(or an empty one); restore the args.json written with the checkpoint"
        )
    return StudentInfo(path, names, prompts, section, args_json, sets)


def run_clip_weights(explicit: str | os.PathLike | None, info: StudentInfo) -> str | None:
    """The CLIP weights to sample a student with: those its training run used, unless told otherwise.

    The student's action embedding and adapters were trained against the text features of the
    CLIP the run loaded, so sampling reuses it: ``explicit`` (--clip_weights) wins, then
    ``$MDM_KINEMIC_CLIP_WEIGHTS``; else the value recorded in args.json's
    kinemic.train.upstream.clip_weights, if it is "random" or a file that exists (logged); else
    None (the caches, text/clip.py ``resolve_clip_weights``).

    Returns:
        A path or "random" to pass on, or None.
    """
    from mdm_kinemic.text.clip import CLIP_WEIGHTS_ENV, RANDOM_WEIGHTS

    if explicit is not None or os.environ.get(CLIP_WEIGHTS_ENV):
        return None if explicit is None else os.fspath(explicit)
    train = info.section.get("train")
    upstream = train.get("upstream") if isinstance(train, Mapping) else None
    recorded = upstream.get("clip_weights") if isinstance(upstream, Mapping) else None
    if recorded is None or not (str(recorded) == RANDOM_WEIGHTS or Path(str(recorded)).is_file()):
        return None
    logger.info("CLIP weights of the training run (%s kinemic.train.upstream.clip_weights): %s",
                info.model_path.parent / "args.json", recorded)
    return str(recorded)


def _normalise_name(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower()).rstrip(".")


def select_actions(
    info: StudentInfo,
    names: Sequence[str] = (),
    indices: Sequence[int] = (),
) -> list[int]:
    """Class indices for actions given by name, by index, or (neither given) all classes.

    Names match the checkpoint's class names case-insensitively ("Side Kick" = "side kick").

    Args:
        info: the checkpoint's classes.
        names: class names (NTU's names for NTU checkpoints).
        indices: 0-based class indices into the checkpoint's classes.

    Returns:
        Class indices in the order given (names first, then indices); every class when both
        are empty.

    Raises:
        SamplingInputError: an unknown name or an index out of range; the message lists the
            valid names and indices.
    """
    table = {_normalise_name(n): i for i, n in enumerate(info.class_names)}
    valid = ", ".join(f"{i}: {n!r}" for i, n in enumerate(info.class_names))
    chosen = []
    for name in names:
        key = _normalise_name(name)
        if key not in table:
            raise SamplingInputError(
                f"action {name!r} is not a class of the KineMIC checkpoint {info.model_path}; valid actions "
                f"(--action_name or --action_index): {valid}"
            )
        chosen.append(table[key])
    for index in indices:
        if not 0 <= int(index) < info.num_actions:
            raise SamplingInputError(
                f"--action_index {index} is out of range for the KineMIC checkpoint {info.model_path} "
                f"({info.num_actions} classes); valid actions: {valid}"
            )
        chosen.append(int(index))
    return chosen if chosen else list(range(info.num_actions))


def find_norm_stats(
    info: StudentInfo, explicit: str | os.PathLike | None = None, mdm_root: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, Path]:
    """The Mean/Std (263,) the student's base model was trained with.

    Looked up, in order: ``explicit`` (--norm_stats); the folder recorded in args.json's
    kinemic.norm_stats; the checkpoint folder itself; the base args' data_dir; upstream's
    dataset/HumanML3D (where upstream's own scripts read it); for a 263-feature model,
    HumanML3D's statistics shipped with the package (data/packaged_stats.py; logged).

    Returns:
        (mean, std, folder they came from), float32 arrays of the model's feature width.

    Raises:
        SamplingInputError: none of the places holds Mean.npy and Std.npy (the message lists
            them and the fix), or the files have another width than the model's features.
    """
    from mdm_kinemic.data.packaged_stats import packaged_stats_folder
    from mdm_kinemic.mdm.model.build import DATASET_FEATURES

    dataset = str(info.args_json.get("dataset", "humanml"))
    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--norm_stats", Path(os.path.abspath(os.path.expanduser(os.fspath(explicit))))))
    else:
        if info.section.get("norm_stats"):
            candidates.append(("args.json kinemic.norm_stats", Path(str(info.section["norm_stats"]))))
        candidates.append(("the checkpoint folder", info.model_path.parent))
        if info.args_json.get("data_dir"):
            candidates.append(("args.json data_dir", Path(str(info.args_json["data_dir"]))))
        if mdm_root is not None:
            candidates.append(("upstream's dataset", Path(mdm_root) / "dataset" / "HumanML3D"))
        shipped = packaged_stats_folder(DATASET_FEATURES.get(dataset, 0))
        if shipped is not None:
            candidates.append((_SHIPPED, shipped))
    for source, folder in candidates:
        if all((folder / f).is_file() for f in _STAT_FILES):
            if source == _SHIPPED:
                logger.info("no Mean.npy/Std.npy with %s: using HumanML3D's, shipped in %s", info.model_path, folder)
            mean = np.load(folder / "Mean.npy").astype(np.float32)
            std = np.load(folder / "Std.npy").astype(np.float32)
            width = DATASET_FEATURES.get(dataset, mean.shape[-1])
            if mean.shape != (width,) or std.shape != (width,):
                raise SamplingInputError(
                    f"{folder}/Mean.npy and Std.npy have shapes {mean.shape} and {std.shape}, but the checkpoint's "
                    f"model has {width} features; pass --norm_stats with the statistics of its training data"
                )
            return mean, std, folder
    tried = "; ".join(f"{source}: {folder}" for source, folder in candidates)
    raise SamplingInputError(
        f"no Mean.npy/Std.npy for de-normalising samples of {info.model_path} (tried {tried}). Fix: pass "
        "--norm_stats DIR with the Mean.npy/Std.npy the base MDM was trained with (HumanML3D's)."
    )


class ClassPromptModel(nn.Module):
    """A sampling network with its action classes and the text features of their prompts c^T.

    The base of ``KineMICSamplingModel`` and of mdm/sampling/prompt_model.py ``PromptSamplingModel``.

    Args:
        network: the module the subclass calls.
        base: the upstream MDM inside it, whose attributes upstream's scripts read (njoints,
            nfeats, data_rep, translation, rot2xyz, cond_mask_prob, latent_dim) and whose
            ``encode_text`` encodes the prompts.
        class_names, class_prompts: per class, in class-index order.
    """

    _COPIED = ("njoints", "nfeats", "data_rep", "translation", "rot2xyz", "cond_mask_prob", "latent_dim")

    def __init__(
        self, network: nn.Module, base: nn.Module, class_names: Sequence[str], class_prompts: Sequence[str]
    ) -> None:
        super().__init__()
        self.network = network
        for name in self._COPIED:
            setattr(self, name, getattr(base, name))
        self.encode_text = base.encode_text
        self.class_names = tuple(class_names)
        self.class_prompts = tuple(class_prompts)
        self._prompt_features: Tensor | None = None

    def prompt_features(self) -> Tensor:
        """Text features [C, D] of the class prompts (D = 512 for CLIP), encoded once."""
        device = next(self.network.parameters()).device
        if self._prompt_features is None or self._prompt_features.device != device:
            self._prompt_features = self.text_features(self.class_prompts)
        return self._prompt_features

    def text_features(self, texts: Sequence[str]) -> Tensor:
        """Text features [N, D] of any texts (e.g. the prompts drawn with prompt augmentation)."""
        with torch.no_grad():
            return self.encode_text(list(texts))[0].float()

    def class_prompt_embed(self, action: Tensor, batch: int) -> Tensor:
        """Tensor [1, B, D]: the prompt features of each sample's class (action: [B] or [B, 1])."""
        features = self.prompt_features()
        return features[action.reshape(batch, -1)[:, 0].long().to(features.device)][None]


class KineMICSamplingModel(ClassPromptModel):
    """The KineMIC student with upstream MDM's model interface, for sampling.

    ``forward(x, t, y)`` conditions every sample on its action (``y['action']``) and on a text:
    ``y['text_embed']`` / ``y['text']`` where given (a prompt composed with the action, paper
    Fig. 5), else the class prompt c^T of its action (paper Sec. 4). Everything else in y
    (``uncond``, ``drop_text``, ``drop_action``, ``mask``) passes to KineMICMDM.forward.

    Args:
        network: KineMICMDM, or the peft model around one (adapters on).
        class_names, class_prompts: per class, in class-index order.

    Attributes copied for upstream's scripts: njoints, nfeats, data_rep, translation, rot2xyz,
    cond_mask_prob, num_actions, latent_dim, encode_text; ``cond_mode`` is 'text_action'.
    """

    def __init__(self, network: nn.Module, class_names: Sequence[str], class_prompts: Sequence[str]) -> None:
        base = network.get_base_model() if hasattr(network, "get_base_model") else network
        super().__init__(network, base, class_names, class_prompts)
        self.num_actions = base.num_actions
        self.cond_mode = DUAL_COND_MODE

    def forward(self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None) -> Tensor:
        """x0 prediction.

        Args:
            x: Tensor [B, F, 1, T], x_t normalised by Mean/Std.
            timesteps: LongTensor [B].
            y: 'action' (LongTensor [B] or [B, 1], required), optional 'text' (B strings) or
                'text_embed' (Tensor [1, B, 512]), and KineMICMDM's other keys.

        Returns:
            Tensor [B, F, 1, T].

        Raises:
            ValueError: y has no 'action'.
        """
        y = {} if y is None else y
        if y.get("action") is None:
            raise ValueError("a KineMIC student samples actions: y['action'] (class indices) is required")
        if y.get("text_embed") is None and y.get("text") is None:
            y = dict(y, text_embed=self.class_prompt_embed(y["action"], x.shape[0]))
        return self.network(x, timesteps, y)


@dataclass
class LoadedStudent:
    """What ``load_student`` returns: ``model`` (KineMICSamplingModel, or mdm/sampling/prompt_model.py's
    PromptSamplingModel for a plain MDM; eval mode), ``diffusion`` (upstream's, for the base
    checkpoint's args), ``args`` (upstream flags of the base), ``info``."""

    model: ClassPromptModel
    diffusion: Any
    args: Any
    info: StudentInfo


def load_student(
    model_path: str | os.PathLike,
    *,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    merge_lora: bool = True,
) -> LoadedStudent:
    """Load a KineMIC checkpoint for sampling.

    Args:
        model_path: SAVE/model%09d.pt or SAVE.
        mdm_root, clip_weights: see mdm/upstream/locate.py ``import_upstream``.
        device: where the model goes.
        merge_lora: fold the LoRA adapters into the base weights (peft ``merge_and_unload``):
            sampling then runs plain MDM layers, without the adapters' extra matmuls.

    Returns:
        LoadedStudent.

    Raises:
        SamplingInputError: a plain MDM checkpoint, a missing path.
        KineMICCheckpointError, CheckpointError: unreadable or mismatching files.
    """
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import load_kinemic_checkpoint

    info = read_student_info(model_path)
    loaded = load_kinemic_checkpoint(info.model_path, mdm_root=mdm_root, clip_weights=clip_weights, device=device)
    network = loaded.model.network
    if merge_lora:
        network = network.merge_and_unload()
    model = KineMICSamplingModel(network, info.class_names, info.class_prompts)
    model.to(device)
    model.eval()
    return LoadedStudent(model, loaded.diffusion, loaded.args, info)
