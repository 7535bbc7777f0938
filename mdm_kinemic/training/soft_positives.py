"""The run's soft positive pools: corpus filtering, mining (Sec. 4.1) and the checks around it.

core.mining ranks captions; this module decides which captions of the source corpus can serve as
priors at all (their clip or #start#end sub-span must hold at least ``min_prior_frames`` frames
inside the clip), drops positives under a minimum cosine similarity, and refuses a class left
with none, so that a wrong corpus or encoder fails before training starts rather than after.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Optional, Sequence

import numpy as np

from mdm_kinemic.core.kinematic_rerank import (
    ClassRerank,
    KinematicRerankSettings,
    rerank_by_motion,
)
from mdm_kinemic.core.mining import Caption, MinedPositive, MiningResult
from mdm_kinemic.data.hml_vec import RIC

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningRunSettings:
    """Which encoder mines, and what counts as a usable soft positive."""

    mining_encoder: Literal["clip", "minilm"] = field(default="clip", metadata={
        "help": "text encoder of the mining: clip (CLIP ViT-B/32, paper Sec. 4.1) or minilm "
                "(all-MiniLM-L6-v2 sentence encoder)"})
    min_similarity: float = field(default=0.0, metadata={
        "help": "soft positives with a lower cosine similarity to their class prompt are dropped; a "
                "class left with none is an error (paper silent: top-k only)"})
    embedding_cache: Optional[str] = field(default=None, metadata={
        "help": "folder caching caption embeddings per encoder and corpus (default: "
                "~/.cache/mdm_kinemic/text_embeddings)"})

    def __post_init__(self) -> None:
        if self.mining_encoder not in ("clip", "minilm"):
            raise ValueError(f"mining_encoder must be clip or minilm, got {self.mining_encoder!r}")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must lie in [-1, 1] (a cosine), got {self.min_similarity!r}")


@dataclass(frozen=True)
class CorpusFilterReport:
    """What :func:`usable_captions` kept and dropped, and why (nothing is dropped silently)."""

    total: int
    kept: int
    dropped: dict[str, int]

    def lines(self) -> list[str]:
        """Readable summary lines for the mining report."""
        out = [f"source corpus: {self.total} captions, {self.kept} usable as priors"]
        out += [f"  dropped {n}: {reason}" for reason, n in sorted(self.dropped.items())]
        return out


def usable_captions(captions: Sequence[Caption], clip_frames: Callable[[str], int],
                    min_frames: int) -> tuple[list[Caption], CorpusFilterReport]:
    """Captions whose motion (whole clip or sub-span, clipped to the clip) has >= min_frames frames.

    A sub-span's end beyond the clip is clipped to the clip's last frame (HumanML3D spans are
    rounded seconds); a span that starts at or after the clip's end is dropped.

    Args:
        captions: the source corpus's captions.
        clip_frames: clip_id -> number of feature frames of that clip.
        min_frames: fewest frames a prior may have.

    Returns:
        (usable captions with spans clipped to their clip, the filter report).
    """
    kept: list[Caption] = []
    dropped: Counter[str] = Counter()
    frames_of: dict[str, int] = {}
    for caption in captions:
        if caption.clip_id not in frames_of:
            frames_of[caption.clip_id] = int(clip_frames(caption.clip_id))
        total = frames_of[caption.clip_id]
        start, end = int(caption.start_frame), int(caption.end_frame)
        if start == end == 0:
            length = total
        else:
            if start >= total or end <= start:
                dropped["sub-span outside its clip or empty"] += 1
                continue
            end = min(end, total)
            length = end - start
            caption = caption._replace(start_frame=start, end_frame=end)
        if length < min_frames:
            dropped[f"shorter than {min_frames} frames"] += 1
            continue
        kept.append(caption)
    return kept, CorpusFilterReport(total=len(captions), kept=len(kept), dropped=dict(dropped))


def apply_min_similarity(result: MiningResult, min_similarity: float) -> MiningResult:
    """Drop positives under ``min_similarity``; raise if a class keeps none.

    Raises:
        ValueError: a class with no positive at or above ``min_similarity``; the message names
            the class, its best caption and score, and the fixes.
    """
    kept: list[list[MinedPositive]] = []
    for name, positives in zip(result.class_names, result.positives):
        good = [p for p in positives if p.score >= min_similarity]
        if not good:
            best = positives[0] if positives else None
            detail = f"best: {best.caption.text!r} at {best.score:.3f}" if best else "no caption at all"
            raise ValueError(
                f"no source caption reaches cosine similarity {min_similarity} for class {name!r} "
                f"({detail}; encoder {result.encoder_identity}): lower --min_similarity, try "
                f"--mining_encoder clip/minilm, or use a source corpus that describes this action")
        if len(good) < len(positives):
            logger.info("class %r: %d of %d positives under min_similarity %.3f dropped",
                        name, len(positives) - len(good), len(positives), min_similarity)
        kept.append(good)
    return replace(result, positives=kept)


def check_corpus(captions: Sequence[Caption], source_root: str) -> None:
    """Raise when the source corpus has no caption at all.

    Raises:
        ValueError: naming the folder and what it must hold.
    """
    if not captions:
        raise ValueError(
            f"the source corpus {source_root} holds no usable caption: it needs texts/<clip_id>.txt "
            "files (HumanML3D layout, lines 'caption#tokens#start#end') beside new_joint_vecs/, with "
            "motions of at least --min_prior_frames frames")


def ric_trajectory(features: np.ndarray) -> np.ndarray:
    """Root-relative joint trajectories (T, 21, 3) of hml_vec features (T, 263): HumanML3D's ric
    block, joints 1..21 relative to the root on XZ, in the root's heading frame (metres)."""
    features = np.asarray(features)
    return features[:, RIC].reshape(len(features), -1, 3)


def rerank_soft_positives(result: MiningResult, target_motions: Sequence[np.ndarray], target_labels: Sequence[int],
                          source_motion: Callable[[str], np.ndarray],
                          settings: KinematicRerankSettings) -> tuple[MiningResult, list[ClassRerank]]:
    """Re-rank each class's soft positives by motion (DTW or activity) against its shots (core.kinematic_rerank).

    Args:
        result: the text mining, positives in text order.
        target_motions, target_labels: the run's shots, raw hml_vec (T, 263), and their classes.
        source_motion: clip_id -> raw hml_vec (T, 263) of a source clip; a positive's #start#end
            sub-span is cut from it.
        settings: the re-ranking settings (off: ``result`` unchanged).

    Returns:
        As :func:`~mdm_kinemic.core.kinematic_rerank.rerank_by_motion`.
    """
    if not settings.enabled:
        return result, []
    shots = [[ric_trajectory(m) for m, y in zip(target_motions, target_labels) if y == c]
             for c in range(len(result.class_names))]

    def trajectory(caption: Caption) -> np.ndarray:
        motion = source_motion(caption.clip_id)
        if not caption.whole_clip:
            motion = motion[caption.start_frame : caption.end_frame]
        return ric_trajectory(motion)

    kept, reports = rerank_by_motion(result, shots, trajectory, settings)
    for report in reports:
        logger.info("class %r: kinematic re-ranking kept %d of %d soft positives", report.name, len(report.kept),
                    len(report.distances))
    return kept, reports
