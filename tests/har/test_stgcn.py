"""ST-GCN architecture as PYSKL configures it, and its input checks."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.har.graph import spatial_partition
from mdm_kinemic.har.skeleton import HUMANML3D_22, NTU_25
from mdm_kinemic.har.stgcn import STGCN, TEMPORAL_KERNEL


def test_ten_blocks_from_64_to_256_channels_with_kernel_9():
    model = STGCN(HUMANML3D_22, num_classes=3)
    assert len(model.blocks) == 10
    widths = [(b.gcn.conv.in_channels, b.tcn.conv.out_channels) for b in model.blocks]
    assert widths == [(3, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 256), (256, 256)]
    assert [b.tcn.conv.stride[0] for b in model.blocks] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert all(b.tcn.conv.kernel_size == (TEMPORAL_KERNEL, 1) for b in model.blocks)
    assert TEMPORAL_KERNEL == 9
    assert model.blocks[0].residual is None
    assert isinstance(model.blocks[1].residual, torch.nn.Identity)
    assert model.blocks[4].residual.conv.kernel_size == (1, 1)
    assert model.feature_dim == 256


def test_graph_convolution_uses_the_spatial_partition_with_unit_importance():
    model = STGCN(NTU_25, num_classes=120)
    gcn = model.blocks[3].gcn
    torch.testing.assert_close(gcn.adjacency, torch.from_numpy(spatial_partition(NTU_25)))
    assert torch.all(gcn.importance == 1)
    assert gcn.conv.out_channels == 3 * 64
    # PYSKL's ST-GCN for NTU-120 has about 3.1 M parameters
    assert 3.0e6 < sum(p.numel() for p in model.parameters()) < 3.2e6


def test_forward_shapes_and_person_mean():
    torch.manual_seed(0)
    model = STGCN(HUMANML3D_22, num_classes=4, base_channels=8).eval()
    x = torch.randn(3, 1, 12, 22, 3)
    feats, logits = model.features_and_logits(x)
    assert feats.shape == (3, 32) and logits.shape == (3, 4)
    torch.testing.assert_close(model(x), logits)
    # two identical persons give the same embedding as one
    torch.testing.assert_close(model.features(x.repeat(1, 2, 1, 1, 1)), feats)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 1, 12, 25, 3), "25 joints"),
        ((2, 1, 8, 22, 3), "at least 9 frames"),
        ((2, 12, 22, 3), r"\(N, M, T, V, C\)"),
        ((2, 1, 12, 22, 2), "3 channels"),
    ],
)
def test_bad_input_is_rejected(shape, message):
    model = STGCN(HUMANML3D_22, num_classes=3, base_channels=8)
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))
