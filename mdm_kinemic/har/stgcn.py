"""ST-GCN skeleton action recogniser (Yan et al., AAAI 2018) as PYSKL configures it for 3D joints.

Why our own module: the paper's numbers come from PYSKL's ST-GCN (github kennymckormick/pyskl,
pyskl/models/gcns/stgcn.py with graph mode 'stgcn_spatial', GCNHead), but PYSKL is not on PyPI,
and mmaction2 1.2.0 from PyPI installs (with mmcv-lite 2.1.0) yet fails to import: its package
lacks ``mmaction.models.localizers.drn``. If a working mmaction2 release appears we would switch
to its STGCN; until then this module keeps PYSKL's architecture and defaults so that accuracies
stay comparable:

- input (N, M, T, V, C): clips, persons, frames, joints, xyz; a BatchNorm1d over (V, C)
  channels per person ("VC" data_bn) first;
- 10 blocks, 64 channels, doubled at blocks 5 and 8 (to 256), temporal stride 2 there;
- each block: spatial graph convolution over the spatial-partition adjacency (3 subsets) with a
  learnable per-edge importance (initialised to 1) then BN + ReLU; a temporal convolution with
  kernel 9, BN; a residual (none on block 1, identity, or a strided 1x1 conv + BN); ReLU;
- head: global average pooling over (T, V), mean over persons, linear classifier initialised
  N(0, 0.01) (GCNHead, dropout 0); every other layer keeps PyTorch's default initialisation, as
  PYSKL's STGCN.init_weights leaves them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mdm_kinemic.har.graph import spatial_partition
from mdm_kinemic.har.skeleton import SkeletonLayout

#: Temporal kernel size of every ST-GCN block (PYSKL unit_tcn default).
TEMPORAL_KERNEL = 9


class SpatialGraphConv(nn.Module):
    """Graph convolution over the K partition subsets of A, with learnable edge importance.

    x [N, C_in, T, V] -> [N, C_out, T, V]: a 1x1 conv to K * C_out channels, aggregation
    sum_k sum_v x_k[..., v] * (A[k] * importance[k])[v, w], then BN and ReLU (PYSKL unit_gcn,
    adaptive='importance', conv_pos='pre').
    """

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor) -> None:
        super().__init__()
        self.num_subsets = adjacency.shape[0]
        self.register_buffer("adjacency", adjacency.clone())
        self.importance = nn.Parameter(torch.ones_like(adjacency))
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_subsets, kernel_size=1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        n, _, t, v = x.shape
        x = self.conv(x).view(n, self.num_subsets, -1, t, v)
        x = torch.einsum("nkctv,kvw->nctw", x, self.adjacency * self.importance)
        return self.relu(self.bn(x))


class TemporalConv(nn.Module):
    """Temporal convolution (kernel x 1, 'same' padding, stride over frames) + BN: [N, C, T, V] -> [N, C', T/stride, V]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = TEMPORAL_KERNEL, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(kernel_size, 1), padding=((kernel_size - 1) // 2, 0), stride=(stride, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class STGCNBlock(nn.Module):
    """One ST-GCN block: ReLU(temporal(spatial(x)) + residual(x)), [N, C_in, T, V] -> [N, C_out, T/stride, V]."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.gcn = SpatialGraphConv(in_channels, out_channels, adjacency)
        self.tcn = TemporalConv(out_channels, out_channels, TEMPORAL_KERNEL, stride)
        self.relu = nn.ReLU()
        if not residual:
            self.residual: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalConv(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.tcn(self.gcn(x))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCN(nn.Module):
    """ST-GCN backbone plus linear head for one skeleton layout.

    Args:
        layout: skeleton (22-joint HumanML3D or 25-joint NTU).
        num_classes: number of action classes K.
        in_channels: C, coordinates per joint (3 for xyz in metres).
        base_channels: width of the first stage (64).
        num_stages: number of blocks (10).
        inflate_stages: 1-based blocks where the width doubles ((5, 8): 64 -> 128 -> 256).
        down_stages: 1-based blocks with temporal stride 2 ((5, 8)).

    Source: Yan et al. 2018; PYSKL STGCN / GCNHead defaults (see the module docstring).
    """

    def __init__(
        self,
        layout: SkeletonLayout,
        num_classes: int,
        in_channels: int = 3,
        base_channels: int = 64,
        num_stages: int = 10,
        inflate_stages: tuple[int, ...] = (5, 8),
        down_stages: tuple[int, ...] = (5, 8),
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {num_stages}")
        self.layout = layout
        self.in_channels = in_channels
        adjacency = torch.from_numpy(spatial_partition(layout))
        self.data_bn = nn.BatchNorm1d(in_channels * layout.num_joints)
        blocks = [STGCNBlock(in_channels, base_channels, adjacency, stride=1, residual=False)]
        channels = base_channels
        for stage in range(2, num_stages + 1):
            out_channels = channels * 2 if stage in inflate_stages else channels
            stride = 2 if stage in down_stages else 1
            blocks.append(STGCNBlock(channels, out_channels, adjacency, stride=stride))
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = channels
        self.fc = nn.Linear(channels, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f"ST-GCN input must be (N, M, T, V, C), got shape {tuple(x.shape)}")
        _, _, t, v, c = x.shape
        if v != self.layout.num_joints:
            raise ValueError(
                f"ST-GCN built for the {self.layout.name} layout ({self.layout.num_joints} joints) got clips "
                f"with {v} joints; build the model for a {v}-joint layout or convert the clips"
            )
        if c != self.in_channels:
            raise ValueError(f"ST-GCN expects {self.in_channels} channels per joint, got {c}")
        if t < TEMPORAL_KERNEL:
            raise ValueError(f"ST-GCN needs at least {TEMPORAL_KERNEL} frames (its temporal kernel), got {t}")

    def features(self, x: Tensor) -> Tensor:
        """Pooled embedding of clips.

        Args:
            x: Tensor [N, M, T, V, C], joint coordinates (metres, pre-normalised).

        Returns:
            Tensor [N, 256]: backbone output averaged over frames, joints and persons.

        Raises:
            ValueError: wrong rank, joint count, channel count, or fewer than 9 frames.
        """
        self._check_input(x)
        n, m, t, v, c = x.shape
        x = x.permute(0, 1, 3, 4, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits [N, K] of clips x [N, M, T, V, C]."""
        return self.fc(self.features(x))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features [N, 256], logits [N, K]) in one pass."""
        feats = self.features(x)
        return feats, self.fc(feats)
