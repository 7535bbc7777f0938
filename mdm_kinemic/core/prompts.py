"""Prompt augmentation: several text prompts per class, one drawn per sample and step.

The paper conditions the student on one label prompt per class ("a person performs a side
kick.", Sec. 4); with 10 shots per class the student can tie a class to that exact sentence.
Here each class has a set of prompts (its mining prompts: every ``--templates`` template, or the
NTU metadata's captions, plus optional paraphrases from a file) and every student sample draws
one uniformly, anew at every training step and for every sampled motion, from a Generator of its
own so that turning the option on changes no other random draw.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

#: Second seed word of the prompt draws (after the run's seed): a random stream of their own.
PROMPT_STREAM = 0x50524F4D


@dataclass(frozen=True)
class PromptAugmentationSettings:
    """Whether the student's text condition is drawn from several prompts per class."""

    prompt_augmentation: bool = field(default=False, metadata={
        "help": "condition each student sample on one of its class's prompts drawn uniformly per sample and "
                "step (every --templates template, or the --prompt_source ntu captions, plus --paraphrases), "
                "at training and at sampling; off: the class's first prompt (paper Sec. 4)"})
    paraphrases: Optional[str] = field(default=None, metadata={
        "help": "JSON file {class name: [prompt, ...]} of extra prompts per class for --prompt_augmentation"})

    def __post_init__(self) -> None:
        if self.paraphrases is not None and not self.prompt_augmentation:
            raise ValueError("PromptAugmentationSettings.paraphrases is only used with prompt_augmentation: "
                             "add --prompt_augmentation or drop --paraphrases")


def load_paraphrases(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """Extra prompts per class from a JSON object {class name: [prompt, ...]}.

    Returns:
        {lower-cased, stripped class name: prompts}.

    Raises:
        FileNotFoundError, ValueError: a missing file or another layout (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"paraphrase file {path} not found: pass a JSON file "
                                '{"class name": ["prompt", ...]} (train_fewshot: --paraphrases FILE)')
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(
                isinstance(v, list) and v and all(isinstance(p, str) and p.strip() for p in v) for v in data.values()):
            raise ValueError("expected an object whose values are non-empty lists of non-empty strings")
    except ValueError as error:
        raise ValueError(f"{path} is not a paraphrase file ({error}); expected "
                         '{"class name": ["prompt", ...]}') from error
    return {str(k).strip().lower(): tuple(v) for k, v in data.items()}


def prompt_sets(class_names: Sequence[str], prompts: Sequence[Sequence[str]],
                settings: PromptAugmentationSettings) -> list[tuple[str, ...]]:
    """The prompts each class draws from: its own prompts, then its paraphrases, without repeats.

    Args:
        class_names: C labels.
        prompts: per class, its prompts (core.mining.class_prompts; the first is the label prompt).
        settings: the paraphrase file, if any.

    Returns:
        C tuples; with augmentation off, each class's first prompt alone.

    Raises:
        ValueError: augmentation on and every class left with a single prompt (nothing to draw),
            or a paraphrase entry naming no class of the run.
    """
    if not settings.prompt_augmentation:
        return [(tuple(p)[0],) for p in prompts]
    extra = load_paraphrases(settings.paraphrases) if settings.paraphrases else {}
    keys = {name.strip().lower() for name in class_names}
    unknown = sorted(set(extra) - keys)
    if unknown:
        raise ValueError(f"{settings.paraphrases} names classes {unknown} that the run does not have "
                         f"(its classes: {list(class_names)})")
    sets = [tuple(dict.fromkeys([*own, *extra.get(name.strip().lower(), ())])) for name, own in zip(class_names, prompts)]
    if all(len(s) == 1 for s in sets):
        raise ValueError("--prompt_augmentation needs several prompts per class, every class has one: give several "
                         "--templates, --prompt_source ntu, or --paraphrases FILE")
    return sets


class PromptSampler:
    """Draws one prompt per sample from its class's set, from a Generator of its own.

    Args:
        sets: per class, the prompts (:func:`prompt_sets`).
        seed: the run's seed; the stream is numpy's default_rng([seed, PROMPT_STREAM]).
    """

    def __init__(self, sets: Sequence[Sequence[str]], seed: int) -> None:
        if not sets or any(len(s) == 0 for s in sets):
            raise ValueError("PromptSampler needs at least one prompt for every class")
        self.sets = [tuple(s) for s in sets]
        self.rng = np.random.default_rng([int(seed), PROMPT_STREAM])

    def draw_indices(self, labels: Sequence[int]) -> list[int]:
        """Index into its class's set of each sample's prompt, uniform over the set."""
        sizes = np.array([len(self.sets[int(y)]) for y in labels])
        return np.floor(self.rng.random(len(sizes)) * sizes).astype(int).tolist()

    def draw(self, labels: Sequence[int]) -> list[str]:
        """One prompt per sample of classes ``labels``."""
        return [self.sets[int(y)][k] for y, k in zip(labels, self.draw_indices(labels))]

    def state_dict(self) -> dict:
        """The Generator state (JSON-serialisable), for checkpoints."""
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Restore the Generator state saved by :meth:`state_dict`."""
        self.rng.bit_generator.state = state["bit_generator"]


def draw_per_seed(sets: Sequence[Sequence[str]], classes: Sequence[int], seeds: Sequence[int]) -> list[str]:
    """One prompt per sampled motion, drawn uniformly from its class's set by the motion's own seed.

    A motion's prompt depends on its class and seed only (default_rng([seed, PROMPT_STREAM])),
    so an interrupted synthesis resumed later gives every motion the same prompt.

    Args:
        sets: per class, its prompts.
        classes, seeds: per motion, its class index and integer seed.

    Returns:
        The prompt of each motion.
    """
    out = []
    for c, seed in zip(classes, seeds):
        prompts = sets[int(c)]
        out.append(prompts[int(np.random.default_rng([int(seed), PROMPT_STREAM]).random() * len(prompts))])
    return out
