"""The Denoiser protocol that the KineMIC objective is written against.

KineMICMDM (mdm_kinemic.mdm) implements it on upstream MDM; the tests implement it with a tiny
transformer of ours. Keeping the core on this protocol is what lets every equation be tested
without upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Condition:
    """A batch of conditions for the dual-conditioned student or the text-only teacher.

    Attributes:
        text: B captions or class prompts (e.g. "a person performs a side kick."), or None.
        action: LongTensor [B] of action (class) indices, or None for the text-only teacher.
        drop_text: BoolTensor [B]; True replaces the sample's text embedding by the null
            condition (classifier-free guidance training, Sec. 4 of the paper).
        drop_action: BoolTensor [B]; True replaces the sample's action embedding by zeros.

    Condition dropout is drawn by the caller (the objective), never inside the denoiser, so that
    the same draw can be reused and logged. None for a drop mask means "keep every sample".
    """

    text: Optional[Sequence[str]] = None
    action: Optional[Tensor] = None
    drop_text: Optional[Tensor] = None
    drop_action: Optional[Tensor] = None

    def __len__(self) -> int:
        if self.text is not None:
            return len(self.text)
        if self.action is not None:
            return int(self.action.shape[0])
        raise ValueError("Condition has neither text nor action: its batch size is undefined")

    def select(self, index: Tensor) -> "Condition":
        """The conditions of the samples at ``index`` (LongTensor [B'])."""
        idx = index.tolist()
        return replace(
            self,
            text=None if self.text is None else [self.text[i] for i in idx],
            action=None if self.action is None else self.action[index],
            drop_text=None if self.drop_text is None else self.drop_text[index],
            drop_action=None if self.drop_action is None else self.drop_action[index],
        )


class DenoiserOutput(NamedTuple):
    """What one denoiser pass returns.

    Attributes:
        x0: Tensor [B, F, 1, T], the x0 (clean motion) prediction; F = 263 for HumanML3D.
        features: Tensor [B, T, d], the final transformer block's hidden state per frame F(x_t),
            the condition token excluded; d = the model's latent width (512 for MDM).
    """

    x0: Tensor
    features: Tensor


@runtime_checkable
class Denoiser(Protocol):
    """An x0-predicting motion denoiser that exposes its final-block features.

    Attributes:
        latent_dim: d, the width of ``features``.
    """

    latent_dim: int

    def denoise(self, x_t: Tensor, timesteps: Tensor, cond: Condition, frame_mask: Tensor) -> DenoiserOutput:
        """Predict x0 from x_t.

        Args:
            x_t: Tensor [B, F, 1, T], noisy motion at 20 fps, normalised by Mean/Std.
            timesteps: LongTensor [B], diffusion step of each sample.
            cond: the samples' conditions.
            frame_mask: BoolTensor [B, T], True on valid frames (upstream's mask is [B, 1, 1, T]).

        Returns:
            DenoiserOutput with x0 [B, F, 1, T] and features [B, T, d].
        """
        ...


def frame_mask_from_lengths(lengths: Tensor, max_len: int) -> Tensor:
    """BoolTensor [B, max_len], True on the first ``lengths[b]`` frames of sample b."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
