"""train/train_mdm.py on your own data: upstream's HumanML3D loader reading ``--data_dir``.

Upstream accepts ``--data_dir`` but ignores it: its HumanML3D dataset always reads
./dataset/HumanML3D (data_loaders/humanml/utils/get_opt.py), caches the parsed split in
./dataset/t2m_<split>.npy (which a later run on other data would silently reuse), and needs
GloVe vectors in ./glove even for training, where MDM never reads them (only the evaluators do).
``data_dir_loader`` builds the same dataset class and the same collate function on a folder in
HumanML3D layout (new_joint_vecs/, texts/, Mean.npy, Std.npy, <split>.txt; e.g. written by
mdm_kinemic.data.convert) by giving upstream a private root whose dataset/HumanML3D links to it,
with the cache in that private root; without ./glove, an upstream WordVectorizer with an empty
vocabulary (every word 'unk', as upstream treats unknown words) stands in.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["REQUIRED", "DataDirError", "data_dir_loader"]

logger = logging.getLogger(__name__)

REQUIRED = ("new_joint_vecs", "texts", "Mean.npy", "Std.npy")


class DataDirError(ValueError):
    """A --data_dir that upstream's HumanML3D loader cannot read; the message names the fix."""


def _empty_vectorizer_class():
    from data_loaders.humanml.utils.word_vectorizer import WordVectorizer

    class EmptyVocabularyVectorizer(WordVectorizer):
        """Upstream's WordVectorizer without GloVe files: every word is 'unk' (zero vector, POS OTHER)."""

        def __init__(self, meta_root: str, prefix: str) -> None:
            import numpy as np

            self.word2vec = {"unk": np.zeros(300, dtype=np.float32)}

    return EmptyVocabularyVectorizer


def data_dir_loader(data_dir: str | os.PathLike, **kwargs: Any):
    """Upstream's training DataLoader for HumanML3D-layout data at ``data_dir``.

    Args:
        data_dir: the folder (absolute or relative to the current directory).
        kwargs: upstream ``get_dataset_loader``'s arguments (name, batch_size, num_frames,
            split, hml_mode, fixed_len, pred_len, device, autoregressive).

    Returns:
        torch DataLoader yielding what upstream's loader yields (motion [B, 263, 1, 196], cond).

    Raises:
        DataDirError: a missing part of the layout, or fewer usable clips (40-199 frames, with
            a caption) than one batch.
    """
    root = Path(os.path.abspath(os.path.expanduser(os.fspath(data_dir))))
    split = kwargs.get("split", "train")
    missing = [p for p in (*REQUIRED, f"{split}.txt") if not (root / p).exists()]
    if missing:
        raise DataDirError(
            f"--data_dir {root} lacks {', '.join(missing)}: upstream's HumanML3D loader needs new_joint_vecs/, "
            f"texts/, Mean.npy, Std.npy and {split}.txt (write them with python -m mdm_kinemic.data.convert)"
        )
    from data_loaders.get_data import get_collate_fn
    from data_loaders.humanml.data import dataset as hml
    from torch.utils.data import DataLoader

    from mdm_kinemic.mdm.upstream.locate import import_upstream

    upstream_root = import_upstream()
    workspace = Path(tempfile.mkdtemp(prefix="mdm_kinemic_data_"))
    atexit.register(shutil.rmtree, workspace, True)
    (workspace / "dataset").mkdir()
    (workspace / "dataset" / "humanml_opt.txt").symlink_to(upstream_root / "dataset" / "humanml_opt.txt")
    (workspace / "dataset" / "HumanML3D").symlink_to(root, target_is_directory=True)
    (workspace / "cache" / "dataset").mkdir(parents=True)
    glove = upstream_root / "glove"
    vectorizer = hml.WordVectorizer
    if glove.is_dir():
        (workspace / "cache" / "glove").symlink_to(glove, target_is_directory=True)
    else:
        logger.info("no GloVe in %s: training reads no word vectors, using an empty vocabulary", glove)
        hml.WordVectorizer = _empty_vectorizer_class()
    try:
        dataset = hml.HumanML3D(
            mode=kwargs.get("hml_mode", "train"), split=split, num_frames=kwargs.get("num_frames"),
            abs_path=str(workspace), cache_path=str(workspace / "cache"), use_cache=False,
            fixed_len=kwargs.get("fixed_len", 0), device=kwargs.get("device"),
            autoregressive=kwargs.get("autoregressive", False),
        )
    except AssertionError as err:  # upstream asserts a non-empty dataset
        raise DataDirError(f"--data_dir {root}: no usable clip in {split}.txt ({err})") from err
    finally:
        hml.WordVectorizer = vectorizer
    batch_size = int(kwargs["batch_size"])
    if len(dataset) < batch_size:
        raise DataDirError(
            f"--data_dir {root}: {len(dataset)} usable clips in {split}.txt (40-199 frames with a caption) for "
            f"--batch_size {batch_size}; lower --batch_size or add clips"
        )
    collate = get_collate_fn(kwargs["name"], kwargs.get("hml_mode", "train"), kwargs.get("pred_len", 0), batch_size)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=min(8, os.cpu_count() or 1),
                      drop_last=True, collate_fn=collate)
