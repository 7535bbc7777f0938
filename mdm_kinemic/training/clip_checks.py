"""Checks on the clips a run trains on, made before training starts.

A NaN or Inf frame in a target or prior turns the loss into NaN on the first step that draws the
clip, and the run then saves NaN weights; a clip of 0 frames fails only when a batch is padded.
Both are found here, for every clip at once, so that one error names all of them (id and file).

Minimum length of a target clip: :data:`MIN_TARGET_FRAMES` = 4 frames at 20 fps (0.2 s).
Nothing in the method fails above 0 frames (pad_motions and the window mining of Eq. 2 accept
1), so the bound comes from upstream MDM, which measures motion lengths in units of 4 frames
(its HumanML3D loader's ``unit_length``, which rounds lengths down to a multiple of 4: a shorter
clip has length 0 there). The authors' NTU-VIBE S0000 targets have 16-64 frames, HumanML3D's
clips at least 40. Priors (source clips) are held to ``--min_prior_frames`` by the corpus filter
(soft_positives.usable_captions), which drops shorter captions rather than refusing them: a
large corpus always has some.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MIN_TARGET_FRAMES = 4


def clip_problem(motion: np.ndarray, min_frames: int) -> str | None:
    """Why a clip cannot be trained on, or None.

    Args:
        motion: (T, F) features (or (T, ...)) at 20 fps.
        min_frames: fewest frames accepted.

    Returns:
        "N frame(s), fewer than the M needed" and/or "NaN or Inf in K frame(s) (first: ...)",
        joined by "; "; None when the clip is long enough and finite.
    """
    motion = np.asarray(motion)
    frames = int(motion.shape[0]) if motion.ndim else 0
    problems = []
    if frames < min_frames:
        problems.append(f"{frames} frame{'s' * (frames != 1)}, fewer than the {min_frames} needed")
    if frames:
        finite = np.isfinite(motion).all(axis=tuple(range(1, motion.ndim)))
        bad = np.flatnonzero(~finite)
        if bad.size:
            shown = ", ".join(map(str, bad[:5])) + (", ..." if bad.size > 5 else "")
            problems.append(f"NaN or Inf in {bad.size} of {frames} frames (frames {shown})")
    return "; ".join(problems) or None


def check_clips(clips: Iterable[tuple[str, str, np.ndarray]], min_frames: int, role: str, fix: str) -> None:
    """Raise one error naming every clip that :func:`clip_problem` refuses.

    Args:
        clips: (clip id, file it was read from, (T, F) motion) per clip.
        min_frames: fewest frames accepted (targets: :data:`MIN_TARGET_FRAMES`).
        role: what the clips are, for the message ("target", "source").
        fix: what the user can do, appended to the message.

    Raises:
        ValueError: "K {role} clip(s) cannot be trained on:" then one line per clip
            "  id (file): problem", then "Fix: {fix}".
    """
    lines = [f"  {clip_id} ({file}): {problem}" for clip_id, file, motion in clips
             if (problem := clip_problem(motion, min_frames)) is not None]
    if lines:
        raise ValueError("\n".join([f"{len(lines)} {role} clip{'s' * (len(lines) != 1)} cannot be trained on:",
                                    *lines, f"Fix: {fix}"]))
