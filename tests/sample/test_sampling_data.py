"""The light dataset upstream's generate.py gets under --kinemic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdm_kinemic.mdm.sampling.sampling_data import (
    Normaliser,
    SamplingDataset,
    SamplingLoader,
)


def test_inv_transform_is_x_times_std_plus_mean_for_numpy_and_torch():
    norm = Normaliser(np.array([1.0, -2.0]), np.array([2.0, 0.5]))
    np.testing.assert_allclose(norm.inv_transform(np.array([[3.0, 4.0]])), [[7.0, 0.0]])
    out = norm.inv_transform(torch.tensor([[[3.0, 4.0]]], dtype=torch.float64))
    assert out.dtype == torch.float64 and out.tolist() == [[[7.0, 0.0]]]


def test_action_names_map_to_class_indices():
    data = SamplingDataset(np.zeros(263), np.ones(263), ["run on the spot", "side kick"])
    assert data.num_actions == 2 and len(data) == 0
    assert data.action_name_to_action(["side kick", "run on the spot", "side kick"]).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match=r"\['jump'\] are not classes .* valid: \['run on the spot', 'side kick'\]"):
        data.action_name_to_action(["jump"])


def test_the_loader_refuses_to_be_iterated():
    loader = SamplingLoader(SamplingDataset(np.zeros(263), np.ones(263), ["a"]))
    loader.fixed_length = 120
    assert loader.dataset.t2m_dataset.inv_transform(np.zeros(263)).shape == (263,)
    with pytest.raises(RuntimeError, match="--action_name / --action_index"):
        iter(loader)
