"""Few-shot batch assembly: every target plus one soft pair per target from its class's top-k pool.

Paper Sec. 4 / 5: a batch holds all few-shot targets (30 for 3 classes x 10 shots) and as many
soft pairs, each drawn from the top-k captions mined for its target's class (Sec. 4.1). A caption
points to a source clip, or to its #start#end sub-span. Motions are normalised with the
checkpoint's Mean/Std, laid out as MDM's [B, 263, 1, T] and zero-padded after normalisation, as
upstream's HumanML3D loader does. Every random choice (which caption, which crop of a clip longer
than max_frames) comes from one numpy Generator whose state is saved with each checkpoint, so a
resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from mdm_kinemic.core.objective import KineMICBatch
from mdm_kinemic.core.prompts import PromptSampler
from mdm_kinemic.training.clip_checks import check_clips


class SoftPair(NamedTuple):
    """One drawn soft positive: a source caption and the frames of its clip that were used.

    Attributes:
        clip_id: source clip id.
        text: the source caption (the teacher's text condition).
        start_frame: first frame of the used motion in the source clip, at 20 fps.
        length: frames used (after cropping to max_frames).
        pool_index: the caption's rank in its class's top-k pool (0 = most similar).
    """

    clip_id: str
    text: str
    start_frame: int
    length: int
    pool_index: int


class BatchProvenance(NamedTuple):
    """Where the clips of a batch came from: for logs, reports and mining pictures.

    Attributes:
        target_ids: B target clip ids.
        soft_pairs: B :class:`SoftPair` records (source clip, crop, pool rank), in target order.
    """

    target_ids: list[str]
    soft_pairs: list[SoftPair]


def batch_to(batch: KineMICBatch, device: torch.device | str) -> KineMICBatch:
    """The batch with its tensors on ``device``."""
    moved = {f.name: getattr(batch, f.name).to(device) for f in fields(batch)
             if isinstance(getattr(batch, f.name), Tensor)}
    return replace(batch, **moved)


def pad_motions(motions: Sequence[np.ndarray], pad_to: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """Stack motions of different lengths as MDM's input layout.

    Args:
        motions: B arrays (T_b, F), already normalised.
        pad_to: frames of the output; default: the longest motion.

    Returns:
        (x0 [B, F, 1, T] float32 zero-padded after each motion's last frame, lengths LongTensor [B]).

    Raises:
        ValueError: an empty list, an empty motion, motions of different feature widths, or a
            motion longer than ``pad_to``.
    """
    if not motions:
        raise ValueError("pad_motions needs at least one motion")
    lengths = [int(m.shape[0]) for m in motions]
    widths = {int(m.shape[1]) for m in motions}
    if min(lengths) < 1:
        raise ValueError("pad_motions got a motion with 0 frames")
    if len(widths) != 1:
        raise ValueError(f"pad_motions got motions of different feature widths {sorted(widths)}")
    frames = max(lengths) if pad_to is None else pad_to
    if max(lengths) > frames:
        raise ValueError(f"a motion of {max(lengths)} frames does not fit pad_to={frames}")
    out = np.zeros((len(motions), widths.pop(), frames), dtype=np.float32)
    for b, motion in enumerate(motions):
        out[b, :, : lengths[b]] = np.asarray(motion, dtype=np.float32).T
    return torch.from_numpy(out).unsqueeze(2), torch.tensor(lengths, dtype=torch.long)


def _span(motion: np.ndarray, start: int, end: int) -> np.ndarray:
    """A caption's frames: ``motion[start:end]``, the whole clip when end <= start (0, 0)."""
    return motion[start:end] if end > start else motion


@dataclass(frozen=True)
class Normaliser:
    """z-scoring with the checkpoint's statistics: (x - Mean) / Std, per feature.

    Attributes:
        mean: (F,) float32, e.g. HumanML3D's Mean.npy.
        std: (F,) float32, strictly positive.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"Mean {self.mean.shape} and Std {self.std.shape} must both have shape (F,)")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all() and (self.std > 0).all()):
            raise ValueError("Mean/Std must be finite and Std strictly positive")

    def __call__(self, motion: np.ndarray) -> np.ndarray:
        """(T, F) raw features -> (T, F) float32 z-scores."""
        if motion.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"motion has {motion.shape[-1]} features, Mean/Std have {self.mean.shape[0]}")
        return ((motion - self.mean) / self.std).astype(np.float32)


class FewShotBatcher:
    """Draws KineMIC batches: all targets, each paired with a soft positive of its class.

    Args:
        target_motions: B raw target motions (T_b, F) at 20 fps (HumanML3D features).
        target_labels: B class indices of the run, in 0..C-1.
        target_text: B student text conditions (label prompts or captions).
        target_ids: B target clip ids.
        pools: C sequences of captions (clip_id, text, start_frame, end_frame), the top-k of
            each class, most similar first (Sec. 4.1). start = end = 0 means the whole clip.
        source_motion: clip_id -> raw source motion (T, F).
        normalise: raw (T, F) -> normalised (T, F), the checkpoint's Mean/Std.
        max_frames: longer motions are cropped to a random window of this length (upstream
            HumanML3D's 196).
        pad_to: pad both streams to this many frames instead of to each stream's longest clip.
        seed: seed of the batcher's own Generator.
        source_file: clip_id -> the file ``source_motion`` reads, for messages; default: the id.
        prompt_sampler: with prompt augmentation, draws each target's text per batch from its
            class's prompts (core.prompts) instead of ``target_text``.

    Raises:
        ValueError: mismatched target lists, a label outside 0..C-1, an empty pool for a class
            that has targets (its message names the class), or pool captions whose frames are
            empty or hold NaN/Inf (checked here, before training; one message naming them all).
    """

    def __init__(
        self,
        target_motions: Sequence[np.ndarray],
        target_labels: Sequence[int],
        target_text: Sequence[str],
        target_ids: Sequence[str],
        pools: Sequence[Sequence[Any]],
        source_motion: Callable[[str], np.ndarray],
        normalise: Callable[[np.ndarray], np.ndarray],
        max_frames: int = 196,
        pad_to: Optional[int] = None,
        seed: int = 0,
        source_file: Optional[Callable[[str], str]] = None,
        prompt_sampler: Optional[PromptSampler] = None,
    ) -> None:
        n = len(target_motions)
        if n == 0 or not (len(target_labels) == len(target_text) == len(target_ids) == n):
            raise ValueError("target motions, labels, texts and ids must be non-empty lists of one length")
        labels = [int(c) for c in target_labels]
        if min(labels) < 0 or max(labels) >= len(pools):
            raise ValueError(f"target labels must lie in 0..{len(pools) - 1} (one pool per class), got {sorted(set(labels))}")
        for c in sorted(set(labels)):
            if len(pools[c]) == 0:
                raise ValueError(f"class {c} has targets but an empty soft-positive pool")
        self.max_frames = max_frames
        self.pad_to = pad_to
        self.pools = [list(p) for p in pools]
        spans = {(c.clip_id, int(c.start_frame), int(c.end_frame)) for pool in self.pools for c in pool}
        name = source_file or str
        check_clips(((f"{i} frames {s}..{e}" if e > s else i, name(i), _span(source_motion(i), s, e))
                     for i, s, e in sorted(spans)), 1, "source",
                    "repair or remove these clips of the source corpus (or their texts/ lines), then mine again")
        self.source_motion = source_motion
        self.normalise = normalise
        self.rng = np.random.default_rng(seed)
        self._targets = [normalise(np.asarray(m)) for m in target_motions]
        self.target_labels = torch.tensor(labels, dtype=torch.long)
        self.target_text = list(target_text)
        self.target_ids = list(target_ids)
        self.prompt_sampler = prompt_sampler

    def __len__(self) -> int:
        """Batches per epoch: 1, as every batch holds every target."""
        return 1

    def _crop(self, motion: np.ndarray) -> tuple[np.ndarray, int]:
        if motion.shape[0] <= self.max_frames:
            return motion, 0
        start = int(self.rng.integers(0, motion.shape[0] - self.max_frames + 1))
        return motion[start : start + self.max_frames], start

    def _draw_prior(self, label: int) -> tuple[np.ndarray, SoftPair]:
        pool = self.pools[label]
        rank = int(self.rng.integers(0, len(pool)))
        caption = pool[rank]
        start, end = int(caption.start_frame), int(caption.end_frame)
        motion = _span(self.source_motion(caption.clip_id), start, end)
        start = start if end > start else 0
        motion, offset = self._crop(motion)
        pair = SoftPair(caption.clip_id, caption.text, start + offset, int(motion.shape[0]), rank)
        return self.normalise(motion), pair

    def next_batch(self) -> tuple[KineMICBatch, BatchProvenance]:
        """Draw the next batch: targets (each cropped to max_frames if longer) and one prior each.

        Returns:
            (the objective's KineMICBatch on the CPU, where its clips came from). A prior's
            pseudo-class is its target's class (it was drawn from that class's pool).
        """
        targets = [self._crop(m)[0] for m in self._targets]
        labels = self.target_labels.tolist()
        priors, pairs = zip(*(self._draw_prior(int(c)) for c in self.target_labels))
        x0_target, target_lengths = pad_motions(targets, self.pad_to)
        x0_prior, prior_lengths = pad_motions(list(priors), self.pad_to)
        batch = KineMICBatch(
            x0_target=x0_target,
            target_lengths=target_lengths,
            target_action=self.target_labels.clone(),
            target_text=(self.prompt_sampler.draw(labels) if self.prompt_sampler is not None
                         else list(self.target_text)),
            x0_prior=x0_prior,
            prior_lengths=prior_lengths,
            prior_text=[p.text for p in pairs],
        )
        return batch, BatchProvenance(list(self.target_ids), list(pairs))

    def __iter__(self):
        """Yield one (batch, provenance) per epoch, as upstream's TrainLoop iterates its data."""
        yield self.next_batch()

    def state_dict(self) -> dict:
        """The Generator states (JSON-serialisable), for checkpoints."""
        state = {"bit_generator": self.rng.bit_generator.state}
        if self.prompt_sampler is not None:
            state["prompts"] = self.prompt_sampler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the Generator states saved by :meth:`state_dict`."""
        self.rng.bit_generator.state = state["bit_generator"]
        if self.prompt_sampler is not None and "prompts" in state:
            self.prompt_sampler.load_state_dict(state["prompts"])
