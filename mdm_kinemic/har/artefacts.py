"""What a HAR run leaves per seed: the recogniser, its test scores, its per-epoch log.

Layout under a run folder (``OUT/real_only``, ``OUT/real_plus_synthetic`` of har.evaluate):

    RUN/test_clips.json               the rows and columns of every scores file: clip ids, labels,
                                      class names
    RUN/seedS/recogniser.safetensors  ST-GCN state dict; recogniser.json: protocol, class names,
                                      joint count, seed, test accuracy (har/evaluator.py format,
                                      so ``--recogniser_ckpt`` and har.score read it)
    RUN/seedS/test_scores.npy         float32 [N_test, K]: class probabilities per test clip
                                      (softmax averaged over protocol.test_clips, PYSKL's 'prob')
    RUN/seedS/train_log.jsonl         one line per epoch: epoch, loss, lr, iterations, test_top1
    RUN/seedS/events.out.tfevents.*   the same as TensorBoard scalars (``tensorboard --logdir OUT``)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mdm_kinemic.har.clips import SkeletonClips
from mdm_kinemic.har.report import write_json

TEST_CLIPS_FILE = "test_clips.json"
SCORES_FILE = "test_scores.npy"
RECOGNISER_STEM = "recogniser"
LOG_FILE = "train_log.jsonl"
EVENTS_GLOB = "events.out.tfevents.*"


def seed_folder(run_folder: str | Path, seed: int) -> Path:
    """RUN/seedS."""
    return Path(run_folder) / f"seed{seed}"


class EpochLog:
    """Writes one seed's per-epoch records as JSON lines and TensorBoard scalars while it trains.

    Call it with each record of ``TrainedSTGCN.epoch_log`` (``train_stgcn``'s ``on_epoch``); it
    starts the log afresh (a rerun into the same folder replaces the JSON lines and the event
    files, which TensorBoard would otherwise show as a second curve) and flushes every epoch, so
    that a long run can be watched. TensorBoard tags: ``train/loss``, ``train/lr``, and
    ``test/top1`` when tracked, with the epoch as step.
    """

    def __init__(self, folder: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(EVENTS_GLOB):
            stale.unlink()
        self._lines = open(self.folder / LOG_FILE, "w", encoding="utf-8")
        self._writer = SummaryWriter(log_dir=str(self.folder))

    def __call__(self, record: dict) -> None:
        self._lines.write(json.dumps(record) + "\n")
        self._lines.flush()
        step = int(record["epoch"])
        self._writer.add_scalar("train/loss", record["loss"], step)
        self._writer.add_scalar("train/lr", record["lr"], step)
        if "test_top1" in record:
            self._writer.add_scalar("test/top1", record["test_top1"], step)
        self._writer.flush()

    def close(self) -> None:
        self._lines.close()
        self._writer.close()

    def __enter__(self) -> EpochLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_test_clips(run_folder: str | Path, test: SkeletonClips) -> Path:
    """RUN/test_clips.json: ids and labels (the rows of the scores), class names (their columns)."""
    return write_json(
        Path(run_folder) / TEST_CLIPS_FILE,
        {
            "source": test.source,
            "ids": list(test.ids),
            "labels": test.labels,
            "class_names": list(test.class_names),
            "scores": f"{SCORES_FILE}: float32 [clips, classes], row i = clip ids[i], column k = class_names[k]; "
            "class probabilities averaged over the protocol's test clips",
        },
    )


def write_scores(folder: str | Path, scores: np.ndarray) -> Path:
    """FOLDER/test_scores.npy, float32 [N, K], written atomically."""
    from mdm_kinemic.atomic import atomic_save_npy

    path = Path(folder) / SCORES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(path, np.asarray(scores, dtype=np.float32))
    return path


def read_scores(run_folder: str | Path, seed: int) -> tuple[np.ndarray, list[str], list[str]]:
    """(scores [N, K], clip ids [N], class names [K]) of one seed of a run folder."""
    clips = json.loads((Path(run_folder) / TEST_CLIPS_FILE).read_text())
    return np.load(seed_folder(run_folder, seed) / SCORES_FILE), clips["ids"], clips["class_names"]
