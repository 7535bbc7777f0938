"""The HumanML3D dataset layout: lazy, memory-mapped reading and atomic writing.

Layout (github EricGuo5513/HumanML3D, as MDM's data loaders read it)::

    ROOT/new_joint_vecs/ID.npy   (T, 263) float32 hml_vec features, 20 fps
    ROOT/new_joints/ID.npy       (T, 22, 3) joints recovered from the features (optional)
    ROOT/texts/ID.txt            one caption per line: caption#word/POS ...#start#end
                                 (start/end in seconds; 0.0#0.0 = the whole clip)
    ROOT/{train,val,test,all,...}.txt   one clip id per line
    ROOT/Mean.npy, ROOT/Std.npy  (263,) feature statistics

Mirrored clips are ordinary clips whose id is the original's with an ``M`` prefix (M000021),
their joints mirrored left/right before feature extraction and "left"/"right" swapped in text.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from itertools import pairwise
from pathlib import Path

import numpy as np

from mdm_kinemic.atomic import atomic_save_npy, atomic_write_text
from mdm_kinemic.core.mining import Caption
from mdm_kinemic.data.hml_vec import FEATURE_DIM, recover_from_ric
from mdm_kinemic.data.resample import HML_FPS

MOTION_DIR = "new_joint_vecs"
JOINTS_DIR = "new_joints"
TEXT_DIR = "texts"
MIRROR_PREFIX = "M"


def mirror_id(clip_id: str) -> str:
    """Id of the mirrored copy of a clip (HumanML3D: ``M`` + id)."""
    return MIRROR_PREFIX + clip_id


def mirror_caption(text: str) -> str:
    """Swap the words "left" and "right" (any case) as HumanML3D's mirrored captions do."""
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}
    return re.sub(r"\b(left|right|Left|Right|LEFT|RIGHT)\b", lambda m: swap[m.group(0)], text)


def tokenize_caption(text: str) -> str:
    """HumanML3D's token field ``word/POS word/POS ...`` for a caption.

    With spaCy's en_core_web_sm installed this follows HumanML3D's text_process.py (hyphens
    removed, alphabetic tokens only, nouns and verbs lemmatised except "left", spaCy's POS tags);
    without it every alphabetic word is tagged OTHER, a tag MDM's text loaders accept (the tokens
    only feed the GloVe-based evaluators, never training).
    """
    sentence = text.replace("-", "")
    nlp = _spacy_nlp()
    if nlp is None:
        return " ".join(f"{w.lower()}/OTHER" for w in re.findall(r"[A-Za-z]+", sentence))
    out = []
    for token in nlp(sentence):
        if not token.text.isalpha():
            continue
        word = token.lemma_ if token.pos_ in ("NOUN", "VERB") and token.text != "left" else token.text
        out.append(f"{word}/{token.pos_}")
    return " ".join(out)


_NLP: list = []


def _spacy_nlp():
    """spaCy's en_core_web_sm pipeline, or None when the model package is not installed."""
    if not _NLP:
        # find_spec first: importing spaCy alone takes seconds, wasted when the model is absent
        if importlib.util.find_spec("en_core_web_sm") is None:
            _NLP.append(None)
        else:
            import spacy

            _NLP.append(spacy.load("en_core_web_sm"))
    return _NLP[0]


def format_text_line(caption: str, start_s: float = 0.0, end_s: float = 0.0, tokens: str | None = None) -> str:
    """One line of a texts/ID.txt file: ``caption#tokens#start#end`` (seconds).

    Raises:
        ValueError: if the caption holds '#' or a newline (it would break the format).
    """
    if "#" in caption or "\n" in caption:
        raise ValueError(f"caption {caption!r} holds '#' or a newline, which the HumanML3D text format cannot carry")
    tokens = tokenize_caption(caption) if tokens is None else tokens
    return f"{caption}#{tokens}#{float(start_s)}#{float(end_s)}"


def parse_text_line(line: str, clip_id: str, source: str = "<texts>") -> Caption:
    """A :class:`Caption` from one texts line; seconds become 20-fps frames as int(sec * 20).

    A NaN start or end (present in some HumanML3D files) counts as 0, as MDM's loader does.

    Raises:
        ValueError: if the line does not have the four '#'-separated fields.
    """
    fields = line.rstrip("\n").split("#")
    if len(fields) != 4:
        raise ValueError(f"{source}: expected 'caption#tokens#start#end', got {line!r}")

    def seconds(value: str) -> float:
        sec = float(value)
        return 0.0 if math.isnan(sec) else sec

    start, end = seconds(fields[2]), seconds(fields[3])
    return Caption(clip_id, fields[0], int(start * HML_FPS), int(end * HML_FPS))


class HumanML3D:
    """A dataset in HumanML3D layout, opened lazily: nothing is read until asked for.

    Args:
        root: the dataset folder (holding new_joint_vecs/).

    Raises:
        FileNotFoundError: if ``root/new_joint_vecs`` does not exist.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / MOTION_DIR).is_dir():
            raise FileNotFoundError(
                f"{self.root} is not a HumanML3D-layout dataset: {self.root / MOTION_DIR} is missing "
                "(convert motions with python -m mdm_kinemic.data.convert)"
            )

    def __repr__(self) -> str:
        return f"HumanML3D({str(self.root)!r})"

    @cached_property
    def ids(self) -> list[str]:
        """Sorted ids of every clip with features (mirrored ``M`` ids included)."""
        with os.scandir(self.root / MOTION_DIR) as entries:
            return sorted(e.name[:-4] for e in entries if e.name.endswith(".npy"))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, clip_id: object) -> bool:
        return isinstance(clip_id, str) and (self.root / MOTION_DIR / f"{clip_id}.npy").is_file()

    def _path(self, folder: str, clip_id: str, suffix: str = ".npy") -> Path:
        path = self.root / folder / f"{clip_id}{suffix}"
        if folder == MOTION_DIR and not path.is_file():
            raise KeyError(f"clip {clip_id!r} not in {self.root} (no {path})")
        return path

    def motion(self, clip_id: str) -> np.ndarray:
        """hml_vec features of a clip, memory-mapped read-only.

        Returns:
            (T, 263) float32, frames at 20 fps.

        Raises:
            KeyError: unknown clip id.
        """
        return np.load(self._path(MOTION_DIR, clip_id), mmap_mode="r")

    def length(self, clip_id: str) -> int:
        """Number of feature frames of a clip (reads only the file header)."""
        return int(self.motion(clip_id).shape[0])

    def joints(self, clip_id: str) -> np.ndarray:
        """Joint positions of a clip: new_joints/ID.npy if present, else recover_from_ric.

        The authors' NTU-VIBE release stores new_joints flattened, (T, 66); those are reshaped.

        Returns:
            (T, 22, 3) metres, Y up.

        Raises:
            KeyError: unknown clip id.
        """
        path = self._path(JOINTS_DIR, clip_id)
        if path.is_file():
            joints = np.load(path, mmap_mode="r")
            return joints.reshape(len(joints), -1, 3) if joints.ndim == 2 else joints
        return recover_from_ric(np.asarray(self.motion(clip_id), dtype=np.float32))

    def captions(self, clip_id: str) -> list[Caption]:
        """Captions of a clip from texts/ID.txt ([] when the clip has no text file).

        Raises:
            ValueError: a malformed line (the message names the file).
        """
        path = self._path(TEXT_DIR, clip_id, ".txt")
        if not path.is_file():
            return []
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return [parse_text_line(ln, clip_id, str(path)) for ln in lines]

    @cached_property
    def mean(self) -> np.ndarray:
        """(263,) feature mean from Mean.npy.

        Raises:
            FileNotFoundError: Mean.npy absent (the message names the fix).
        """
        return self._stat("Mean.npy")

    @cached_property
    def std(self) -> np.ndarray:
        """(263,) feature standard deviation from Std.npy (HumanML3D's grouped std).

        Raises:
            FileNotFoundError: Std.npy absent.
        """
        return self._stat("Std.npy")

    def _stat(self, name: str) -> np.ndarray:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: compute it with mdm_kinemic.data.humanml3d.write_mean_std "
                "or use HumanML3D's own Mean.npy/Std.npy"
            )
        return np.load(path)

    def split_path(self, name: str) -> Path:
        """Path of a split list: ``name`` is a file at the root ("train") or a relative path
        ("splits/fewshot/S0000/xsub/train"), with or without ".txt"."""
        return self.root / (name if name.endswith(".txt") else f"{name}.txt")

    def split(self, name: str) -> list[str]:
        """Clip ids of a split list, in file order.

        Raises:
            FileNotFoundError: no such split file.
        """
        path = self.split_path(name)
        if not path.is_file():
            raise FileNotFoundError(f"split {name!r} of {self.root}: {path} does not exist")
        return read_id_list(path)


def read_id_list(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file."""
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def write_clip(
    root: str | Path,
    clip_id: str,
    hml_vec: np.ndarray,
    joints: np.ndarray | None = None,
    captions: Sequence[str | tuple[str, float, float]] = (),
) -> None:
    """Write one clip in HumanML3D layout (atomically, file by file).

    Args:
        root: dataset folder (created if needed).
        clip_id: file stem; must not contain path separators.
        hml_vec: (T, 263) features, stored as float32.
        joints: (T, 22, 3) joints to store in new_joints/ (default: recover_from_ric(hml_vec),
            which is what HumanML3D stores).
        captions: caption strings (whole clip) or (caption, start seconds, end seconds).

    Raises:
        ValueError: bad id, feature or joint shapes.
    """
    root = Path(root)
    if not clip_id or "/" in clip_id or "\\" in clip_id or clip_id.startswith("."):
        raise ValueError(f"clip id {clip_id!r} must be a plain file stem")
    hml_vec = np.asarray(hml_vec, dtype=np.float32)
    if hml_vec.ndim != 2 or hml_vec.shape[1] != FEATURE_DIM:
        raise ValueError(f"clip {clip_id}: hml_vec must be (T, {FEATURE_DIM}), got {hml_vec.shape}")
    joints = recover_from_ric(hml_vec) if joints is None else np.asarray(joints, dtype=np.float32)
    if joints.shape != (len(hml_vec), 22, 3):
        raise ValueError(f"clip {clip_id}: joints must be ({len(hml_vec)}, 22, 3), got {joints.shape}")
    atomic_save_npy(root / MOTION_DIR / f"{clip_id}.npy", hml_vec)
    atomic_save_npy(root / JOINTS_DIR / f"{clip_id}.npy", joints)
    if captions:
        lines = [format_text_line(c) if isinstance(c, str) else format_text_line(c[0], c[1], c[2]) for c in captions]
        atomic_write_text(root / TEXT_DIR / f"{clip_id}.txt", "\n".join(lines) + "\n")


def write_split(root: str | Path, name: str, ids: Iterable[str]) -> Path:
    """Write a split list (one id per line) at ``root/name.txt`` (name may be a relative path)."""
    path = Path(root) / (name if name.endswith(".txt") else f"{name}.txt")
    atomic_write_text(path, "".join(f"{i}\n" for i in ids))
    return path


def mean_std(motions: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean and HumanML3D's grouped standard deviation over all frames of all clips.

    As HumanML3D's cal_mean_variance: the per-dimension std is replaced by its average within
    each feature group (root rotation velocity, root linear velocity, root height, ric, rot6d,
    local velocity, foot contacts), so that groups are scaled as wholes.

    Args:
        motions: (T_i, 263) arrays.

    Returns:
        (mean (263,), std (263,)) float32.

    Raises:
        ValueError: no frames, or non-finite values.
    """
    total = np.zeros(FEATURE_DIM)
    total_sq = np.zeros(FEATURE_DIM)
    count = 0
    for m in motions:
        m = np.asarray(m, dtype=np.float64)
        if not np.isfinite(m).all():
            raise ValueError("mean_std: a motion holds NaN or inf")
        total += m.sum(0)
        total_sq += (m**2).sum(0)
        count += len(m)
    if count == 0:
        raise ValueError("mean_std: no frames to average")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    bounds = [0, 1, 3, 4, 4 + 21 * 3, 4 + 21 * 9, 4 + 21 * 9 + 22 * 3, FEATURE_DIM]
    for lo, hi in pairwise(bounds):
        std[lo:hi] = std[lo:hi].mean()
    return mean.astype(np.float32), std.astype(np.float32)


def write_mean_std(root: str | Path, mean: np.ndarray, std: np.ndarray) -> None:
    """Write Mean.npy and Std.npy (263,) float32 at the dataset root (atomically)."""
    for name, value in (("Mean.npy", mean), ("Std.npy", std)):
        value = np.asarray(value, dtype=np.float32)
        if value.shape != (FEATURE_DIM,):
            raise ValueError(f"{name} must have shape ({FEATURE_DIM},), got {value.shape}")
        atomic_save_npy(Path(root) / name, value)
