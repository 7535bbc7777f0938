"""What a run must save to continue exactly where it stopped, and how it finds it again.

A checkpoint at step s is three files in save_dir, written in this order, each atomically
(temporary file + rename): ``model%09d.pt`` (adapters, action embedding, MIC), ``opt%09d.pt``
(AdamW state, upstream TrainLoop's name) and ``train_state%09d.pt`` (RNG states, the batcher's
Generator, the objective's state, the EMA, the step). The last file marks the checkpoint
complete: a run killed while saving resumes from the previous complete one.

Random state captured: Python's ``random``, numpy's global state (upstream's timestep sampler
draws from it), torch's CPU generator (noise, condition and LoRA dropout) and, where present,
every CUDA generator. Every file holds only tensors and plain containers, so that it is read with
``torch.load(..., weights_only=True)``: a crafted file in a run folder cannot run code on resume.
A checkpoint whose files do not load (a truncated write, a foreign file) is skipped with a
warning, and the run resumes from the newest one that does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from mdm_kinemic.atomic import atomic_write_text
from mdm_kinemic.core.kinematic_rerank import KinematicRerankSettings
from mdm_kinemic.core.prompts import PromptAugmentationSettings
from mdm_kinemic.training.settings import NetworkSettings

TRAIN_SECTION = "train"
"""The key of args.json's kinemic section that holds a train_fewshot run's settings."""
# Settings a resumed run may change: they alter neither the model nor the random draws.
RESUMABLE_KEYS = frozenset({
    "num_steps", "save_interval", "log_interval", "train_platform_type", "num_mining_pictures",
    "progress", "device", "embedding_cache", "mdm_root",
})
# Settings groups added after runs were first recorded: a saved run that lacks one ran with
# these defaults, so it stays resumable as long as the current run keeps them too.
ADDED_DEFAULTS: dict[str, Any] = {
    "rerank": dataclasses.asdict(KinematicRerankSettings()),
    "prompts": dataclasses.asdict(PromptAugmentationSettings()),
    "network": dataclasses.asdict(NetworkSettings()),
}
MODEL_FILE = "model{step:09d}.pt"

logger = logging.getLogger(__name__)
OPT_FILE = "opt{step:09d}.pt"
STATE_FILE = "train_state{step:09d}.pt"
_STATE_RE = re.compile(r"^train_state(\d{9})\.pt$")


def capture_rng_state() -> dict:
    """Every global random state a training step draws from, as tensors and plain values (what
    ``torch.load(weights_only=True)`` reads back)."""
    version, words, gauss_next = random.getstate()
    algorithm, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {"algorithm": algorithm, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the states captured by :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["state"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["algorithm"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class DamagedCheckpointError(ValueError):
    """A checkpoint file that does not load; the message names the file."""


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load`` of one of our checkpoint files with ``weights_only=True``.

    Raises:
        DamagedCheckpointError: the file is truncated, not a torch file, or holds objects other
            than tensors and plain containers (written by an older mdm-kinemic, or crafted); the
            message names the file.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... by cause
        raise DamagedCheckpointError(
            f"{path} does not load as a checkpoint file with tensors only ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'})"
        ) from err


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (upstream utils/fixseed.py does the same three)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def checkpoint_paths(save_dir: str | os.PathLike, step: int) -> dict[str, Path]:
    """The three files of the checkpoint at ``step``: keys model, opt, state."""
    save_dir = Path(save_dir)
    return {
        "model": save_dir / MODEL_FILE.format(step=step),
        "opt": save_dir / OPT_FILE.format(step=step),
        "state": save_dir / STATE_FILE.format(step=step),
    }


def latest_complete_step(save_dir: str | os.PathLike) -> Optional[int]:
    """The highest step whose three checkpoint files all exist and load in ``save_dir``, or None.

    A newer checkpoint with a file that does not load (see :func:`load_checkpoint_file`) is
    skipped with a warning naming the file; each file is read once per call.
    """
    save_dir = Path(save_dir)
    if not save_dir.is_dir():
        return None
    steps = sorted((int(m.group(1)) for m in map(_STATE_RE.match, os.listdir(save_dir)) if m), reverse=True)
    for step in steps:
        paths = checkpoint_paths(save_dir, step).values()
        if not all(p.is_file() for p in paths):
            continue
        try:
            for path in paths:
                load_checkpoint_file(path)
        except DamagedCheckpointError as err:
            logger.warning("%s; resuming from an earlier checkpoint", err)
            continue
        return step
    return None


def settings_differences(saved: Any, current: Any, ignore: frozenset[str] = frozenset(), path: str = "") -> list[str]:
    """Dotted names of the entries that differ between two JSON-like settings trees.

    Keys in ``ignore`` (leaf names, at any depth) are not compared: they are the settings a
    resumed run may change (num_steps, cadence, device). A top-level group of
    :data:`ADDED_DEFAULTS` missing from ``saved`` compares as its defaults.
    """
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        out = []
        for key in sorted(set(saved) | set(current)):
            if key in ignore:
                continue
            name = f"{path}.{key}" if path else str(key)
            if not path and key not in saved and key in ADDED_DEFAULTS and key in current:
                out.extend(settings_differences(ADDED_DEFAULTS[key], current[key], ignore, name))
            elif key not in saved or key not in current:
                out.append(name)
            else:
                out.extend(settings_differences(saved[key], current[key], ignore, name))
        return out
    return [] if _as_json(saved) == _as_json(current) else [path or "<root>"]


def _as_json(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


class LossLog:
    """One JSON line per optimizer step in save_dir/losses.jsonl: {"step": s, term: value, ...}.

    On resume from step s the lines after s are dropped (they belong to the interrupted run's
    unsaved steps), so the file always describes the steps the current parameters went through.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int = 0) -> None:
        self.path = Path(path)
        kept = [f"{json.dumps(r)}\n" for r in self.read(self.path) if r["step"] <= resume_step] if self.path.is_file() else []
        atomic_write_text(self.path, "".join(kept))

    def append(self, step: int, values: Mapping[str, float]) -> None:
        """Append the values of ``step`` (floats)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict]:
        """All records of a losses.jsonl file, in step order.

        A partial last line (a run killed while appending) is dropped with a warning.

        Raises:
            ValueError: a line other than the last is not a JSON record with a step (names the
                file and the line).
        """
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        records = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                int(record["step"])
            except (ValueError, KeyError, TypeError) as err:
                if number == len(lines):
                    logger.warning("%s: dropping the partial last line %d (%s)", path, number, err)
                    break
                raise ValueError(f"{path}, line {number}: not a loss record ({err}); the file is damaged: "
                                 "delete the line or the file (the curves are lost, the run is not)") from err
            records.append(record)
        return records


class RunDirError(ValueError):
    """A save_dir that belongs to another run; the message names the file and the fix."""


def check_save_dir(save_dir: str | os.PathLike, settings: Mapping[str, Any]) -> Optional[int]:
    """Decide whether ``save_dir`` starts a new run or resumes the run with these settings.

    Args:
        save_dir: the run folder.
        settings: the run's settings as JSON (FewShotRunConfig.to_json()), compared with the
            kinemic.train section of an existing args.json, except :data:`RESUMABLE_KEYS`.

    Returns:
        The step of the latest complete checkpoint to resume from, 0 when the run's args.json
        exists but no checkpoint was completed, or None for a new run.

    Raises:
        RunDirError: save_dir holds another run's args.json (an upstream MDM run, or a KineMIC run
            with other settings: the differing ones are listed), or checkpoints without args.json.
    """
    save_dir = Path(save_dir)
    args_path = save_dir / "args.json"
    step = latest_complete_step(save_dir)
    if not args_path.is_file():
        if step is not None or any(save_dir.glob("model*.pt")):
            raise RunDirError(
                f"{save_dir} holds model checkpoints but no args.json: it is not a train_fewshot run folder. "
                "Fix: choose a new --save_dir")
        return None
    try:
        saved = json.loads(args_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise RunDirError(f"{args_path} is unreadable ({err}): choose a new --save_dir") from err
    section = saved.get("kinemic") if isinstance(saved, dict) else None
    if not isinstance(section, dict) or TRAIN_SECTION not in section:
        raise RunDirError(
            f"{args_path} belongs to another run (no kinemic.{TRAIN_SECTION} section: an upstream MDM run or a "
            "KineMIC checkpoint written by another tool). Fix: choose a new --save_dir")
    differences = settings_differences(section[TRAIN_SECTION], settings, RESUMABLE_KEYS)
    if differences:
        raise RunDirError(
            f"{args_path} belongs to a run with other settings ({', '.join(differences[:8])} differ). Fix: "
            "pass the same flags to resume it (only num_steps, the save/log cadence, the logging platform and "
            "the device may change), or choose a new --save_dir")
    return 0 if step is None else step
