"""A plain text-to-motion MDM sampled per action class from class prompts: the zero-shot teacher.

The paper's Table 1 row "MDM (zero-shot)" samples the pre-trained text-to-motion MDM with each
class's prompt c^T ("a person performs a side kick.") and no fine-tuning. This module gives such
a checkpoint the sampling interface of a KineMIC student (mdm/sampling/student.py), so that
``python -m mdm_kinemic.synth`` and its guidance, batching and writers serve both:

* ``is_kinemic_checkpoint``: whether a checkpoint folder is a KineMIC student or a plain MDM;
* ``prompt_model_info``: class names and prompts of a plain MDM, given from outside (its
  args.json knows no classes);
* ``PromptSamplingModel``: the MDM with the student's ``forward(x, t, y)`` (action -> its class
  prompt) and per-sample ``drop_text`` for classifier-free guidance;
* ``load_prompt_model``: all of the above from a checkpoint path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mdm_kinemic.mdm.sampling.student import (
    ClassPromptModel,
    LoadedStudent,
    SamplingInputError,
    StudentInfo,
    resolve_model_file,
)

__all__ = ["PromptSamplingModel", "is_kinemic_checkpoint", "load_prompt_model", "prompt_model_info"]


def _args_json(model_file: Path) -> dict[str, Any]:
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import (
        CheckpointError,
        read_args_json,
    )

    try:
        return read_args_json(model_file)
    except CheckpointError as err:
        raise SamplingInputError(str(err)) from err


def is_kinemic_checkpoint(model_path: str | os.PathLike) -> bool:
    """Whether ``model_path`` (file or folder) is a KineMIC student (args.json has a "kinemic" section).

    Raises:
        SamplingInputError: no model file, or an unreadable args.json.
    """
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import KINEMIC_SECTION

    return isinstance(_args_json(resolve_model_file(model_path)).get(KINEMIC_SECTION), dict)


def prompt_model_info(
    model_path: str | os.PathLike, class_names: Sequence[str], prompt_template: str
) -> StudentInfo:
    """Classes and prompts for sampling a plain text-to-motion MDM per action class.

    Args:
        model_path: an upstream MDM checkpoint file or folder (its latest model*.pt).
        class_names: the action classes, in class-index order (e.g. the target data's classes.txt).
        prompt_template: the class prompt c^T with ``{label}`` for the class name (paper Sec. 4:
            "a person performs a {label}.").

    Returns:
        StudentInfo with an empty kinemic section.

    Raises:
        SamplingInputError: a KineMIC checkpoint, a checkpoint without text conditioning, no
            classes, or a template without ``{label}``.
    """
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import KINEMIC_SECTION

    path = resolve_model_file(model_path)
    args_json = _args_json(path)
    if isinstance(args_json.get(KINEMIC_SECTION), dict):
        raise SamplingInputError(f"{path} is a KineMIC checkpoint: it samples its own classes and prompts")
    if args_json.get("dataset", "humanml") not in ("humanml", "kit") or args_json.get("unconstrained"):
        raise SamplingInputError(
            f"{path.parent / 'args.json'} is not a text-to-motion MDM (dataset {args_json.get('dataset')!r}); "
            "zero-shot class prompts need a model trained on HumanML3D-layout text (humanml or kit)"
        )
    if not class_names:
        raise SamplingInputError("no classes to sample: pass --target_data with a labelled folder (classes.txt)")
    if "{label}" not in prompt_template:
        raise SamplingInputError(f"--prompt_template {prompt_template!r} has no '{{label}}' for the class name")
    names = tuple(str(n) for n in class_names)
    prompts = tuple(prompt_template.format(label=n) for n in names)
    return StudentInfo(path, names, prompts, {}, args_json)


class PromptSamplingModel(ClassPromptModel):
    """A plain text-to-motion MDM with the KineMIC student's sampling interface.

    ``forward(x, t, y)`` conditions each sample on ``y['text_embed']`` / ``y['text']`` where
    given, else on the prompt c^T of its class ``y['action']``. A True ``y['drop_text']``
    (or ``y['drop_action']``) zeroes that sample's text features, which is exactly upstream's
    unconditional pass: ``MDM.mask_cond(cond, force_mask=True)`` returns ``zeros_like(cond)``
    before ``embed_text`` (model/mdm.py), so one batch can hold guided and unguided samples.

    Args:
        network: upstream MDM (or a subclass, e.g. the sentence-encoder MDM) with a text cond_mode.
        class_names, class_prompts: per class, in class-index order.

    Attributes copied for upstream's scripts: those of ``ClassPromptModel`` and the network's
    cond_mode; ``num_actions`` = len(class_names).
    """

    def __init__(self, network: nn.Module, class_names: Sequence[str], class_prompts: Sequence[str]) -> None:
        super().__init__(network, network, class_names, class_prompts)
        self.cond_mode = network.cond_mode
        self.num_actions = len(self.class_names)

    def forward(self, x: Tensor, timesteps: Tensor, y: dict[str, Any] | None = None) -> Tensor:
        """x0 prediction.

        Args:
            x: Tensor [B, F, 1, T], x_t normalised by Mean/Std.
            timesteps: LongTensor [B].
            y: 'action' (LongTensor [B] or [B, 1]) unless 'text_embed' (Tensor [1, B, D]) or
                'text' (B strings) is given; optional 'drop_text' / 'drop_action' (BoolTensor [B]).

        Returns:
            Tensor [B, F, 1, T].

        Raises:
            ValueError: y has neither an action nor a text.
        """
        y = {} if y is None else y
        bs = x.shape[0]
        if y.get("text_embed") is not None:
            text_embed = y["text_embed"]
        elif y.get("text") is not None:
            text_embed = self.encode_text(list(y["text"]))
        elif y.get("action") is not None:
            text_embed = self.class_prompt_embed(y["action"], bs)
        else:
            raise ValueError("sampling a class prompt needs y['action'] (class indices), y['text'] or y['text_embed']")
        drop = y.get("drop_text")
        if drop is None:
            drop = y.get("drop_action")
        if drop is not None:
            text_embed = text_embed * (~drop.to(text_embed.device)).to(text_embed.dtype)[None, :, None]
        # a mask of one frame is upstream's "no mask" (generate.py's unpadded batches)
        mask = torch.ones((bs, 1, 1, 1), dtype=torch.bool, device=x.device)
        return self.network(x, timesteps, {"text_embed": text_embed, "mask": mask})


def load_prompt_model(
    info: StudentInfo,
    *,
    mdm_root: str | os.PathLike | None = None,
    clip_weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> LoadedStudent:
    """Load a plain MDM for class-prompt sampling.

    Args:
        info: from ``prompt_model_info``.
        mdm_root, clip_weights: see mdm/upstream/locate.py ``import_upstream``.
        device: where the model goes.

    Returns:
        LoadedStudent whose model is a PromptSamplingModel in eval mode.

    Raises:
        CheckpointError, CheckpointNotFoundError: unreadable or mismatching files (mdm/checkpoints/upstream_checkpoint.py).
    """
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import load_upstream_checkpoint

    loaded = load_upstream_checkpoint(info.model_path, mdm_root=mdm_root, clip_weights=clip_weights, device=device)
    model = PromptSamplingModel(loaded.model, info.class_names, info.class_prompts)
    model.to(device)
    model.eval()
    return LoadedStudent(model, loaded.diffusion, loaded.args, info)
