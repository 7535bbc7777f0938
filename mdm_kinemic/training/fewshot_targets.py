"""The few-shot target set of a run: which clips, which classes, and the checks on them.

Either an existing split (the authors' NTU-VIBE S0000: A099 run on the spot, A102 side kick,
A104 stretch oneself, 10 clips each) read from ``target_data/splits/fewshot/<id>/<task>/``, or
``--shots`` clips per ``--classes`` drawn with the run's seed (data.fewshot). The run's classes
are numbered 0..C-1 in increasing dataset class index; that number is the student's action
index and the contrastive class of Eq. 1.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdm_kinemic.data.fewshot import FEWSHOT_DIR, FewShotSettings, sample_fewshot
from mdm_kinemic.data.humanml3d import MOTION_DIR, HumanML3D
from mdm_kinemic.data.labels import LabelledSet, load_labelled
from mdm_kinemic.training.clip_checks import MIN_TARGET_FRAMES, check_clips
from mdm_kinemic.training.settings import FewShotDataSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FewShotTargets:
    """The run's target clips.

    Attributes:
        ids: N clip ids, class by class.
        motions: N raw hml_vec motions (T_n, 263) float32 at 20 fps (not normalised).
        labels: N run class indices in 0..C-1.
        dataset_classes: C dataset class indices (NTU: A099 -> 98), increasing.
        class_names: C class names.
        captions: N first captions of each clip from texts/ ("" when it has none).
        source: a short description of where the clips came from, for reports.
    """

    ids: list[str]
    motions: list[np.ndarray]
    labels: list[int]
    dataset_classes: list[int]
    class_names: list[str]
    captions: list[str]
    source: str

    def summary(self) -> list[str]:
        """Per-class counts and lengths (frames at 20 fps), for the mining report."""
        lines = [f"targets: {len(self.ids)} clips from {self.source}"]
        for c, name in enumerate(self.class_names):
            lengths = [m.shape[0] for m, y in zip(self.motions, self.labels) if y == c]
            lines.append(f"  [{c}] {name} (dataset class {self.dataset_classes[c]}): {len(lengths)} clips, "
                         f"{min(lengths)}-{max(lengths)} frames")
        return lines


def _read_split(root: Path, settings: FewShotDataSettings) -> tuple[LabelledSet, list[int], str]:
    split_dir = root / FEWSHOT_DIR / str(settings.fewshot_split)
    meta_path = split_dir / "meta.json"
    if not meta_path.is_file():
        available = sorted(p.name for p in (root / FEWSHOT_DIR).iterdir()) if (root / FEWSHOT_DIR).is_dir() else []
        raise FileNotFoundError(
            f"{meta_path} not found: {root} has no few-shot split {settings.fewshot_split!r} "
            f"(available: {available or 'none'}). Fix: pass an existing --fewshot_split, or --fewshot_split none "
            "with --classes and --shots to draw one")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    class_list = sorted(int(c) for c in meta.get("class_list", []))
    list_name = str(FEWSHOT_DIR / str(settings.fewshot_split) / settings.task_split / "train")
    labelled = load_labelled(root, list_name, class_names=settings.class_names, missing="error")
    return labelled, class_list or sorted(set(labelled.labels)), f"{root} split {settings.fewshot_split}/{settings.task_split}"


def _draw(root: Path, settings: FewShotDataSettings, seed: int) -> tuple[LabelledSet, list[int], str]:
    labelled = load_labelled(root, class_names=settings.class_names, missing="error")
    present = labelled.by_class()
    absent = [c for c in settings.classes if c not in present]
    if absent:
        raise ValueError(
            f"classes {absent} have no clip in the target data {root} (its classes: {sorted(present)}). "
            "Fix: choose --classes among those, or add labelled clips of these classes")
    split = sample_fewshot(labelled, FewShotSettings(settings.shots, seed, tuple(settings.classes)))
    return split.train, sorted(settings.classes), f"{root}, {settings.shots} shots per class drawn with seed {seed}"


def load_fewshot_targets(settings: FewShotDataSettings, seed: int) -> FewShotTargets:
    """Read the target clips of a run.

    Args:
        settings: target_data, fewshot_split / task_split or classes, shots, class_names.
        seed: the draw's seed when no split is given.

    Returns:
        :class:`FewShotTargets`, ``shots`` clips per class (the first ones of a split's list).

    Raises:
        FileNotFoundError: target_data is not a HumanML3D-layout folder, or the split, its lists
            or the class names are missing.
        ValueError: a class of the split (or of --classes) absent from the target data, or with
            fewer clips than --shots; listed clips without motion files; chosen clips with NaN or
            Inf frames or fewer than :data:`~mdm_kinemic.training.clip_checks.MIN_TARGET_FRAMES`
            frames (one message naming all of them, with their files).
    """
    root = Path(settings.target_data)
    HumanML3D(root)  # raises with the layout fix when new_joint_vecs/ is missing
    if settings.fewshot_split is not None:
        labelled, classes, source = _read_split(root, settings)
    else:
        labelled, classes, source = _draw(root, settings, seed)
    by_class = labelled.by_class()
    absent = [c for c in classes if c not in by_class]
    if absent:
        names = [labelled.class_names[c] if c < len(labelled.class_names) else "?" for c in absent]
        raise ValueError(
            f"split {settings.fewshot_split!r} of {root} lists classes {absent} ({', '.join(names)}) in its "
            "meta.json, but its train list holds no clip of them. Fix: repair the split, or draw a new one "
            "with python -m mdm_kinemic.data.fewshot")
    short = {c: len(by_class[c]) for c in classes if len(by_class[c]) < settings.shots}
    if short:
        raise ValueError(
            f"{source}: classes {short} (class: clips) have fewer than the {settings.shots} shots asked for. "
            f"Fix: pass --shots {min(short.values())}, or use a split with more clips per class")
    dataset = labelled.dataset
    ids: list[str] = []
    labels: list[int] = []
    for run_class, c in enumerate(classes):
        chosen = by_class[c][: settings.shots]
        ids += chosen
        labels += [run_class] * len(chosen)
    motions = [np.asarray(dataset.motion(i), dtype=np.float32) for i in ids]
    check_clips(((i, str(root / MOTION_DIR / f"{i}.npy"), m) for i, m in zip(ids, motions)), MIN_TARGET_FRAMES,
                "target", "repair or re-convert these clips (python -m mdm_kinemic.data.convert refuses NaN "
                "frames), or leave them out of the target data's train list")
    captions = []
    for clip_id in ids:
        texts = dataset.captions(clip_id)
        captions.append(texts[0].text if texts else "")
    class_names = [labelled.class_names[c] for c in classes]
    logger.info("few-shot targets: %d clips of %d classes from %s", len(ids), len(classes), source)
    return FewShotTargets(ids, motions, labels, classes, class_names, captions, source)


def target_text(targets: FewShotTargets, prompts: list[tuple[str, ...]], mode: str) -> list[str]:
    """The student's text condition c^T of each target.

    Args:
        targets: the run's targets.
        prompts: per run class, its mining prompts; the first is the label prompt (paper Sec. 4:
            "a person performs a side kick.").
        mode: "prompt" (the label prompt) or "caption" (the clip's own caption, the authors').

    Raises:
        ValueError: mode "caption" and a target without a caption (names the clip and the fix).
    """
    if mode == "prompt":
        return [prompts[y][0] for y in targets.labels]
    missing = [i for i, c in zip(targets.ids, targets.captions) if not c]
    if missing:
        raise ValueError(
            f"--target_text caption: targets {missing[:3]} have no caption in texts/ of the target data; "
            "add texts/<clip_id>.txt or use --target_text prompt")
    return list(targets.captions)

