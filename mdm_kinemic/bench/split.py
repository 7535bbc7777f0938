"""Target/source split of a labelled HumanML3D-layout corpus (the Bandai Namco benchmark, issue 8).

The paper's setting is few-shot NTU actions (target) with a text-to-motion prior trained on
HumanML3D (source), whose captions never name the target classes. Here both domains come from
one converted corpus (both Bandai Namco datasets): the target contents (e.g. wave-both-hands,
raise-up-both-hands, run) become the target domain, and every clip of every other content the
source, so that mining must find related motion (waving one hand, dashing) as in the paper.

Written under OUT::

    OUT/source/   every clip of the other contents: new_joint_vecs/, new_joints/, texts/
                  (captions from content and style, as converted), all.txt, train.txt,
                  labels.txt + classes.txt (source contents), Mean.npy/Std.npy of these clips
    OUT/target/   every clip of the target contents: the same folders, labels.txt + classes.txt
                  (class i = i-th target content, in the order given), the few-shot split
                  splits/fewshot/S0000/xsub/{train,val}(_y).txt in the authors' layout
                  (data/fewshot.py; val = the test set), train.txt (the shots), test.txt
                  (a seeded half of the undrawn clips of each class), full_train.txt (the
                  shots plus the other half: the ceiling's training set), evaluator.txt and
                  val.txt (that other half, split per class into a seeded fifth, at least
                  one clip, for validation and the rest for the fixed evaluator's training),
                  each with its _y.txt labels, Mean.npy/Std.npy copied from source/; class names in
                  classes.txt are the contents' verb phrases ("waves both hands"), which
                  the class prompt "a person {label}." turns into "a person waves both hands."
    OUT/split.json the settings and the clip counts per content and domain

With ``mirror_source`` the source also holds every source clip mirrored left/right as
``M<id>`` (HumanML3D's augmentation: the motion mirrored, "left"/"right" swapped in its texts,
data/mirror.py), labelled with the mirrored content where the corpus has one (a mirrored
wave-left-hand clip counts as wave-right-hand) and included in Mean/Std, as HumanML3D's are.

The target keeps the source's Mean/Std on purpose: the student is the teacher plus adapters and
must see its inputs normalised as the teacher did (the paper feeds NTU clips with HumanML3D's
Mean/Std); statistics of 30 shots would be noise, and of all target clips would leak the test set.
Motion files are hard-linked when the file system allows it (the corpus is ~370 MB), else copied.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mdm_kinemic.atomic import atomic_path, atomic_save_npy, atomic_write_text
from mdm_kinemic.data.fewshot import (
    FewShotSettings,
    FewShotSplit,
    sample_fewshot,
    write_fewshot,
)
from mdm_kinemic.data.humanml3d import (
    JOINTS_DIR,
    MOTION_DIR,
    TEXT_DIR,
    HumanML3D,
    mean_std,
    mirror_caption,
    mirror_id,
    write_mean_std,
    write_split,
)
from mdm_kinemic.data.labelling import BANDAI_ACTIONS
from mdm_kinemic.data.labels import LabelledSet, load_labelled, write_labels
from mdm_kinemic.data.mirror import mirror_hml_vec
from mdm_kinemic.data.skeleton import swap_left_right

log = logging.getLogger(__name__)

SPLIT_FILE = "split.json"
SOURCE_DIR = "source"
TARGET_DIR = "target"
FEWSHOT_ID = "S0000"
DEFAULT_TARGET_CONTENTS = ("wave-both-hands", "raise-up-both-hands", "run")
#: a second split whose targets have near mirror images in the source (wave-left-hand,
#: raise-up-left-hand, walk-turn-left stay there, with wave-both-hands and raise-up-both-hands):
#: mining can find almost the target motion, so it tests transfer from close relatives where
#: the default split tests transfer from looser ones (one hand for both, dash or walk for run);
#: its classes hold 208 / 437 / 234 clips (docs/benchmark.md)
MIRRORED_TARGET_CONTENTS = ("wave-right-hand", "raise-up-right-hand", "walk-turn-right")
#: names accepted by --target_contents for these lists
NAMED_TARGET_CONTENTS = {"default": DEFAULT_TARGET_CONTENTS, "mirrored": MIRRORED_TARGET_CONTENTS}
PROMPT_TEMPLATE = "a person {label}."
#: version of the files a split writes; a split.json of an older layout is not reused
SPLIT_LAYOUT = 2
#: clips per target class beyond the shots: one each for the test set, the evaluator's
#: training set and the validation set, and the test half is the larger when odd
MIN_CLIPS_BEYOND_SHOTS = 4
#: share of the evaluator half kept for validation (at least one clip per class)
VAL_SHARE = 0.2


def prompt_name(content: str) -> str:
    """The verb phrase of a content for class prompts: "wave-both-hands" -> "waves both hands".

    With PROMPT_TEMPLATE this gives "a person waves both hands.", the Bandai analogue of the
    paper's "a person performs a side kick." (the content slug itself would give "a person
    performs a wave-both-hands."). Unknown contents read as their name, hyphens as spaces.
    """
    return BANDAI_ACTIONS.get(content, content.replace("-", " "))


class SplitError(ValueError):
    """A target/source split that cannot be made; the message names the input and the fix."""


@dataclass(frozen=True)
class SplitSettings:
    """Which contents form the target domain and how its shots are drawn.

    Attributes:
        target_contents: content (class) names of the target domain, in label order (class i of
            the target = the i-th name); every other content of the corpus is the source.
        shots: training clips per target class (the paper: 10).
        seed: seed of the shot draw (numpy default_rng, data/fewshot.py).
        mirror_source: add every source clip mirrored left/right as M<id> (HumanML3D's
            augmentation); the target domain is never mirrored.
    """

    target_contents: tuple[str, ...] = DEFAULT_TARGET_CONTENTS
    shots: int = 10
    seed: int = 0
    mirror_source: bool = False

    def __post_init__(self) -> None:
        contents = tuple(c.strip() for c in self.target_contents)
        if not contents or any(not c for c in contents):
            raise ValueError(f"SplitSettings.target_contents must name at least one content, got {self.target_contents!r}")
        duplicates = sorted({c for c in contents if contents.count(c) > 1})
        if duplicates:
            raise ValueError(f"SplitSettings.target_contents names {duplicates} more than once")
        object.__setattr__(self, "target_contents", contents)
        if self.shots < 1:
            raise ValueError(f"SplitSettings.shots must be >= 1, got {self.shots}")


def _place(src: Path, dst: Path) -> None:
    """Hard-link (else copy) ``src`` to ``dst`` through a temporary name and a rename."""
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _copy_clips(corpus: HumanML3D, ids: Sequence[str], out: Path) -> None:
    """new_joint_vecs/, new_joints/ and texts/ of ``ids`` into ``out`` (absent joints/texts skipped)."""
    for clip_id in ids:
        for folder, suffix in ((MOTION_DIR, ".npy"), (JOINTS_DIR, ".npy"), (TEXT_DIR, ".txt")):
            src = corpus.root / folder / f"{clip_id}{suffix}"
            if src.is_file():
                _place(src, out / folder / f"{clip_id}{suffix}")


def _check_contents(settings: SplitSettings, labelled: LabelledSet, corpus_root: Path) -> dict[str, list[str]]:
    """{content: clip ids} of the corpus, after checking the requested target contents."""
    by_name = {labelled.class_names[c]: ids for c, ids in labelled.by_class().items()}
    unknown = [c for c in settings.target_contents if c not in by_name]
    if unknown:
        raise SplitError(
            f"--target_contents {','.join(unknown)} not among the contents with clips in {corpus_root}; "
            f"choose from: {', '.join(sorted(by_name))}"
        )
    if len(set(settings.target_contents)) == len(by_name):
        raise SplitError(
            f"--target_contents names every content of {corpus_root}: leave at least one for the source domain"
        )
    phrases = [prompt_name(c) for c in settings.target_contents]
    same = sorted({c for c, ph in zip(settings.target_contents, phrases) if phrases.count(ph) > 1})
    if same:
        raise SplitError(f"target contents {same} share one class prompt: name contents with distinct verb phrases")
    need = settings.shots + MIN_CLIPS_BEYOND_SHOTS
    short = {c: len(by_name[c]) for c in settings.target_contents if len(by_name[c]) < need}
    if short:
        raise SplitError(
            f"target contents {short} (content: clips in {corpus_root}) need at least --shots {settings.shots} + "
            f"{MIN_CLIPS_BEYOND_SHOTS} clips (the shots, then at least two test clips, one to train the fixed evaluator "
            "and one for validation): lower --shots or choose other contents"
        )
    return by_name


def parse_target_contents(text: str) -> tuple[str, ...]:
    """A --target_contents value: a name of NAMED_TARGET_CONTENTS or comma-separated contents."""
    return NAMED_TARGET_CONTENTS.get(text.strip(), tuple(c.strip() for c in text.split(",")))


def split_name(contents: Sequence[str]) -> str:
    """Folder and summary name of a split: its name in NAMED_TARGET_CONTENTS, else the contents joined by '+'."""
    for name, named in NAMED_TARGET_CONTENTS.items():
        if tuple(contents) == named:
            return name
    return "+".join(contents)


def check_split(corpus_root: str | Path, settings: SplitSettings) -> None:
    """Check a split's contents against the corpus without writing anything (make_split's checks).

    Raises:
        SplitError: as make_split.
        FileNotFoundError: the corpus lacks labels.txt / classes.txt.
    """
    _check_contents(settings, load_labelled(corpus_root), Path(corpus_root))


def make_split(corpus_root: str | Path, out: str | Path, settings: SplitSettings | None = None) -> dict:
    """Write the target and source domains of a labelled corpus (layout in the module doc).

    Args:
        corpus_root: labelled HumanML3D-layout folder (labels.txt + classes.txt, e.g. written by
            ``python -m mdm_kinemic.data.convert --labels bandai``).
        out: output folder.
        settings: target contents, shots, seed.

    Returns:
        The summary also written to OUT/split.json: settings, clip counts per content of each
        domain, the few-shot split folder.

    Raises:
        SplitError: unknown contents, no content left for the source, a target content with
            fewer than shots + 4 clips, or OUT/split.json written with other settings.
        FileNotFoundError: the corpus lacks labels.txt / classes.txt.
    """
    settings = settings or SplitSettings()
    corpus_root, out = Path(corpus_root), Path(out)
    summary_path = out / SPLIT_FILE
    if summary_path.is_file():
        done = json.loads(summary_path.read_text())
        same = done.get("settings") == _settings_json(settings) and done.get("corpus") == str(corpus_root.resolve())
        if same and done.get("layout") != SPLIT_LAYOUT:
            raise SplitError(
                f"{summary_path} was written by an older version (no evaluator/validation lists): "
                "choose another --out or delete it"
            )
        if same:
            log.info("%s exists with these settings: split already made", summary_path)
            return done
        raise SplitError(
            f"{summary_path} holds a split with other settings or corpus ({done.get('settings')}, {done.get('corpus')}): "
            "choose another --out or delete it"
        )
    labelled = load_labelled(corpus_root)
    by_name = _check_contents(settings, labelled, corpus_root)
    corpus = HumanML3D(corpus_root)

    source_names = [n for n in labelled.class_names if n in by_name and n not in settings.target_contents]
    source_ids = [i for n in source_names for i in sorted(by_name[n])]
    source_root = out / SOURCE_DIR
    _copy_clips(corpus, source_ids, source_root)
    source_labels = [k for k, n in enumerate(source_names) for _ in by_name[n]]
    mirrored: list[str] = []
    if settings.mirror_source:
        mirrored, mirrored_labels = _write_mirrors(corpus, source_ids, source_labels, source_names, source_root)
        source_ids, source_labels = source_ids + mirrored, source_labels + mirrored_labels
    write_labels(source_root, source_ids, source_labels, source_names)
    write_split(source_root, "all", source_ids)
    write_split(source_root, "train", source_ids)
    source_data = HumanML3D(source_root) if mirrored else corpus
    mean, std = mean_std(source_data.motion(i) for i in source_ids)
    write_mean_std(source_root, mean, std)

    target_names = list(settings.target_contents)
    target_ids = [i for n in target_names for i in sorted(by_name[n])]
    target_labels = [k for k, n in enumerate(target_names) for _ in by_name[n]]
    target_root = out / TARGET_DIR
    _copy_clips(corpus, target_ids, target_root)
    # class names are what KineMIC's prompts and every later stage (synth, har) see
    class_names = [prompt_name(n) for n in target_names]
    write_labels(target_root, target_ids, target_labels, class_names)
    write_split(target_root, "all", target_ids)
    write_mean_std(target_root, mean, std)
    fewshot = sample_fewshot(
        LabelledSet(target_root, target_ids, target_labels, class_names),
        FewShotSettings(shots=settings.shots, seed=settings.seed),
    )
    test, pool = _halves(fewshot.val, settings.seed)
    val, evaluator = _carve_val(pool, settings.seed)
    split = FewShotSplit(fewshot.settings, fewshot.train, test)
    # a run interrupted before split.json was written may have left this folder: it is ours
    shutil.rmtree(target_root / "splits" / "fewshot" / FEWSHOT_ID, ignore_errors=True)
    folder = write_fewshot(target_root, split, FEWSHOT_ID)
    write_split(target_root, "train", fewshot.train.ids)
    write_split(target_root, "test", test.ids)
    write_split(target_root, "full_train", fewshot.train.ids + pool.ids)
    write_split(target_root, "evaluator", evaluator.ids)
    write_split(target_root, "val", val.ids)
    for name, part in (("train", fewshot.train), ("test", test), ("evaluator", evaluator), ("val", val), ("full_train", None)):
        labels = part.labels if part is not None else fewshot.train.labels + pool.labels
        write_split(target_root, f"{name}_y", [str(x) for x in labels])

    summary = {
        "layout": SPLIT_LAYOUT,
        "corpus": str(corpus_root.resolve()),
        "settings": _settings_json(settings),
        "source": {"root": str(source_root), "clips": len(source_ids), "mirrored_clips": len(mirrored),
                   "per_content": {n: len(by_name[n]) for n in source_names}},
        "target": {
            "root": str(target_root),
            "fewshot_split": str(folder.relative_to(target_root)),
            "class_names": dict(zip(target_names, class_names)),
            "train_per_class": {n: settings.shots for n in target_names},
            "test_per_class": _counts(test, target_names),
            "full_train_per_class": {n: settings.shots + c for n, c in _counts(pool, target_names).items()},
            "evaluator_per_class": _counts(evaluator, target_names),
            "val_per_class": _counts(val, target_names),
        },
        "normalisation": "Mean.npy/Std.npy of source/ (HumanML3D group-averaged std); target/ holds a copy",
    }
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return summary


def _write_mirrors(corpus: HumanML3D, ids: Sequence[str], labels: Sequence[int], names: Sequence[str],
                   out: Path) -> tuple[list[str], list[int]]:
    """Write the left/right mirror M<id> of each clip of ``ids`` into ``out``.

    Features by :func:`~mdm_kinemic.data.mirror.mirror_hml_vec`, joints by ``swap_left_right``
    (new_joints/ is recover_from_ric of the features, which commutes with the mirror), every
    texts/ line through ``mirror_caption`` (caption and tokens). A clip whose mirror is already
    among ``ids`` (a corpus converted with --mirror) is skipped.

    Returns:
        (mirrored ids, their labels: the class named by the mirrored content name where
        ``names`` has it, e.g. wave-left-hand -> wave-right-hand, else the original's).
    """
    present = set(ids)
    index = {name: k for k, name in enumerate(names)}
    written: list[str] = []
    written_labels: list[int] = []
    for clip_id, label in zip(ids, labels):
        new_id = mirror_id(clip_id)
        if new_id in present or (clip_id.startswith(mirror_id("")) and clip_id[1:] in present):
            continue
        atomic_save_npy(out / MOTION_DIR / f"{new_id}.npy", mirror_hml_vec(corpus.motion(clip_id)).astype(np.float32))
        if (corpus.root / JOINTS_DIR / f"{clip_id}.npy").is_file():
            atomic_save_npy(out / JOINTS_DIR / f"{new_id}.npy", swap_left_right(corpus.joints(clip_id)).astype(np.float32))
        text = corpus.root / TEXT_DIR / f"{clip_id}.txt"
        if text.is_file():
            atomic_write_text(out / TEXT_DIR / f"{new_id}.txt", mirror_caption(text.read_text(encoding="utf-8")))
        written.append(new_id)
        written_labels.append(index.get(mirror_caption(names[label]), label))
    return written, written_labels


def _halves(clips: LabelledSet, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """(test, pool): per class, a seeded half of the clips (the larger half when odd) and the rest.

    The ceiling (every real target clip for training) must not train on the test set, so the
    undrawn clips are halved: every method is tested on ``test``; the ceiling trains on the
    shots plus ``pool``.
    """
    rng = np.random.default_rng([seed, 1])
    test: list[tuple[str, int]] = []
    pool: list[tuple[str, int]] = []
    for label, ids in clips.by_class().items():
        ids = sorted(ids)
        order = rng.permutation(len(ids))
        n_test = (len(ids) + 1) // 2
        chosen = set(order[:n_test].tolist())
        for k, clip_id in enumerate(ids):
            (test if k in chosen else pool).append((clip_id, label))

    def labelled(pairs: list[tuple[str, int]]) -> LabelledSet:
        return LabelledSet(clips.root, [p[0] for p in pairs], [p[1] for p in pairs], clips.class_names)

    return labelled(test), labelled(pool)


def _carve_val(pool: LabelledSet, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """(val, evaluator): per class, a seeded VAL_SHARE of the pool (at least one clip) and the rest.

    The pool is the half of the undrawn clips that the ceiling trains on; the fixed evaluator
    trains on it without the validation clips, so that settings chosen on validation never see
    the clips that measure them, nor the test set.
    """
    rng = np.random.default_rng([seed, 2])
    val: list[tuple[str, int]] = []
    rest: list[tuple[str, int]] = []
    for label, ids in pool.by_class().items():
        ids = sorted(ids)
        n_val = max(1, int(len(ids) * VAL_SHARE))
        chosen = set(rng.permutation(len(ids))[:n_val].tolist())
        for k, clip_id in enumerate(ids):
            (val if k in chosen else rest).append((clip_id, label))

    def labelled(pairs: list[tuple[str, int]]) -> LabelledSet:
        return LabelledSet(pool.root, [p[0] for p in pairs], [p[1] for p in pairs], pool.class_names)

    return labelled(val), labelled(rest)


def _counts(clips: LabelledSet, names: Sequence[str]) -> dict[str, int]:
    by_class = clips.by_class()
    return {n: len(by_class.get(k, [])) for k, n in enumerate(names)}


def _settings_json(settings: SplitSettings) -> dict:
    data = asdict(settings)
    data["target_contents"] = list(settings.target_contents)
    if not settings.mirror_source:
        # splits written before the option existed hold no such key: they stay reusable
        del data["mirror_source"]
    return data
