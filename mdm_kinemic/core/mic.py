"""The MIC (Mining In Context) module, Sec. 4.2: an attention-pooled bidirectional GRU.

It reads the final transformer block's hidden states of a denoiser, one vector per frame, and
returns a per-frame attention a (which frames matter for the action) and a context vector z
(what the motion is). z feeds the contrastive loss (Eq. 1) and the window weighting (Eq. 6);
the attention of the prior stream chooses the prior window (Eq. 2).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call

_GRU_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class MICOutput(NamedTuple):
    """What the MIC module returns.

    Attributes:
        z: Tensor [B, output_dim], the context vector of each sequence.
        attention: Tensor [B, T], softmax over each sequence's valid frames; exactly 0 on padding.
    """

    z: Tensor
    attention: Tensor


def lengths_from_frame_mask(frame_mask: Tensor) -> Tensor:
    """LongTensor [B] of valid frames per row of a prefix mask [B, T].

    Raises:
        ValueError: the mask is not boolean [B, T], a row has no valid frame, or a row's valid
            frames are not a prefix (padding must come last, as in upstream MDM's collate).
    """
    if frame_mask.dtype != torch.bool or frame_mask.dim() != 2:
        raise ValueError(f"frame_mask must be a bool tensor [B, T], got {frame_mask.dtype} {tuple(frame_mask.shape)}")
    lengths = frame_mask.sum(dim=1)
    if bool((lengths == 0).any()):
        raise ValueError("frame_mask has a row with no valid frame; every sequence needs at least one frame")
    prefix = torch.arange(frame_mask.shape[1], device=frame_mask.device)[None, :] < lengths[:, None]
    if not torch.equal(prefix, frame_mask):
        raise ValueError("frame_mask must mark a prefix of each row (valid frames first, padding last)")
    return lengths


def _gather_frames(x: Tensor, index: Tensor) -> Tensor:
    """x[b, index[b, t]] for x [B, T, C] and LongTensor index [B, T]."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[-1]))


class MICModule(nn.Module):
    """Attention BiGRU over frame features (the MIC module of Sec. 4.2).

    Frames -> linear embedding -> BiGRU from a learned initial state (padding never enters the recurrence) ->
    per-frame score by a small MLP -> softmax over valid frames (a) -> context sum_t a_t h_t ->
    output MLP (z). The layer layout follows the authors' attention BiGRU.

    Args:
        latent_dim: d, the width of the input features (512 for MDM).
        hidden_dim: GRU width per direction; defaults to ``latent_dim``.
        output_dim: width of z; defaults to ``latent_dim``.

    Raises:
        ValueError: a width below 1.
    """

    def __init__(
        self, latent_dim: int = 512, hidden_dim: Optional[int] = None, output_dim: Optional[int] = None
    ) -> None:
        super().__init__()
        hidden_dim = latent_dim if hidden_dim is None else hidden_dim
        output_dim = latent_dim if output_dim is None else output_dim
        for name, value in (("latent_dim", latent_dim), ("hidden_dim", hidden_dim), ("output_dim", output_dim)):
            if value < 1:
                raise ValueError(f"MICModule.{name} must be >= 1, got {value}")
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.input_embedding = nn.Linear(latent_dim, hidden_dim)
        self.gru = nn.GRU(hidden_dim, hidden_dim, batch_first=True, bidirectional=True)
        # the authors' module learns the GRU's initial state, one per direction
        self.initial_hidden = nn.Parameter(torch.randn(2, 1, hidden_dim))
        # a weightless one-direction GRU that runs either direction of self.gru with its weights;
        # kept out of the module tree so that it never enters the state dict or the optimizer
        object.__setattr__(self, "_direction_gru", nn.GRU(hidden_dim, hidden_dim, batch_first=True, device="meta"))
        self.attention_net = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 1),
        )
        self.output_net = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, output_dim),
        )

    def forward(self, features: Tensor, frame_mask: Tensor) -> MICOutput:
        """Attention and context vector of each sequence.

        Args:
            features: Tensor [B, T, latent_dim], final-block hidden states F(x_t) per frame.
            frame_mask: BoolTensor [B, T], True on valid frames (a prefix of each row).

        Returns:
            :class:`MICOutput` with z [B, output_dim] and attention [B, T].

        Raises:
            ValueError: wrong feature width, mismatched shapes, or a mask that is not a non-empty prefix.
        """
        if features.dim() != 3 or features.shape[-1] != self.latent_dim:
            raise ValueError(f"features must be [B, T, {self.latent_dim}], got {tuple(features.shape)}")
        if frame_mask.shape != features.shape[:2]:
            raise ValueError(
                f"frame_mask {tuple(frame_mask.shape)} does not match features {tuple(features.shape[:2])}"
            )
        lengths = lengths_from_frame_mask(frame_mask)
        hidden = self._bidirectional_hidden(self.input_embedding(features), lengths)
        scores = self.attention_net(hidden).squeeze(-1).masked_fill(~frame_mask, float("-inf"))
        attention = torch.softmax(scores, dim=1)
        context = torch.einsum("bt,btc->bc", attention, hidden)
        return MICOutput(z=self.output_net(context), attention=attention)

    def _bidirectional_hidden(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        """BiGRU states [B, T, 2 * hidden_dim] in which padding never enters the recurrence.

        Equal on valid frames to running ``self.gru`` on a PackedSequence, but each direction
        runs once, on padded tensors, with that direction's weights of ``self.gru``: the forward
        one on the left-aligned sequences (padding after the last valid frame cannot reach it),
        the backward one on each sequence reversed within its length, its states reversed back.
        Packed sequences take a slow per-step path on CPU (5x at [30, 196, 512]); a
        bidirectional call on padded tensors would read the padding first in its backward pass.
        """
        total = embedded.shape[1]
        frames = torch.arange(total, device=embedded.device)[None, :]
        # an involution: frame t <-> length - 1 - t on valid frames, padding left in place
        reversed_index = torch.where(frames < lengths[:, None], lengths[:, None] - 1 - frames, frames)
        forward_states = self._one_direction(embedded, 0)
        backward_states = _gather_frames(self._one_direction(_gather_frames(embedded, reversed_index), 1),
                                         reversed_index)
        return torch.cat([forward_states, backward_states], dim=-1)

    def _one_direction(self, embedded: Tensor, direction: int) -> Tensor:
        """States [B, T, hidden_dim] of direction 0 (forward) or 1 (backward) of ``self.gru``,
        run forward over ``embedded`` from that direction's learned initial state."""
        suffix = "_reverse" if direction else ""
        weights = {name: getattr(self.gru, name + suffix) for name in _GRU_WEIGHTS}
        initial = self.initial_hidden[direction : direction + 1].expand(-1, embedded.shape[0], -1).contiguous()
        return functional_call(self._direction_gru, weights, (embedded, initial))[0]
