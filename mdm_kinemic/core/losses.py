"""Eqs. 3-6 of the paper: masked x0 reconstruction, window distillation and the dynamic window weight.

Every loss here is per sample ([B]); the objective weights and averages them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DISTILLATION_NORMALISATIONS = ("frame", "element", "authors_broadcast")


def masked_l2(prediction: Tensor, target: Tensor, frame_mask: Tensor, epsilon: float = 1e-8) -> Tensor:
    """Per-sample mean squared error over valid frames, as upstream MDM's ``masked_l2``.

    Source: third_party/motion-diffusion-model/utils/loss_util.py (masked_l2 with
    entries_norm=True), the rot_mse term of diffusion/gaussian_diffusion.py training_losses:
    sum over valid entries of (prediction - target)^2, divided by (valid frames * entries per
    frame + epsilon).

    Args:
        prediction, target: Tensor [B, F, 1, T] (or [B, F, T]), frames last.
        frame_mask: BoolTensor [B, T], True on valid frames (upstream's mask is [B, 1, 1, T]).
        epsilon: added to the divisor, as upstream, so an all-padding row gives 0.

    Returns:
        Tensor [B].

    Raises:
        ValueError: mismatched shapes.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    batch, total = prediction.shape[0], prediction.shape[-1]
    if frame_mask.shape != (batch, total):
        raise ValueError(f"frame_mask must be [{batch}, {total}], got {tuple(frame_mask.shape)}")
    mask = frame_mask.view(batch, *([1] * (prediction.dim() - 2)), total).to(prediction.dtype)
    squared = ((prediction - target) ** 2 * mask).flatten(1).sum(dim=1)
    entries_per_frame = prediction[0, ..., 0].numel()
    return squared / (frame_mask.sum(dim=1).to(prediction.dtype) * entries_per_frame + epsilon)


def reconstruction_loss(x0_prediction: Tensor, x0: Tensor, frame_mask: Tensor) -> Tensor:
    """Eq. 3 (target, L_rec^T) and Eq. 4 (prior window, L_rec^{P*}): masked MSE of the x0 prediction.

    Args:
        x0_prediction: Tensor [B, F, 1, T], the denoiser's x0 prediction (F = 263 for HumanML3D).
        x0: Tensor [B, F, 1, T], the clean motion (normalised hml_vec).
        frame_mask: BoolTensor [B, T].

    Returns:
        Tensor [B], see :func:`masked_l2`.
    """
    return masked_l2(x0_prediction, x0, frame_mask)


def window_distillation_loss(
    student_features: Tensor, teacher_features: Tensor, frame_mask: Tensor, normalisation: str = "frame"
) -> Tensor:
    """Eq. 5, L_dist: student features on the window vs teacher features at the same prior frames.

    With e_{b,t} = F^T_{b,t} - F^P_{b,t} (d features), n_b the window's frames and M_b its mask:

    * "frame" (the paper): sum_t M_b[t] ||e_{b,t}||^2 / n_b.
    * "element": the same divided by d as well, a per-element masked mean (upstream MDM's
      ``masked_l2`` with a per-sample mask). This is not what the authors' code computes.
    * "authors_broadcast": what the authors' code computes. Their ``masked_lx``
      (external/motion-diffusion-model/utils/loss_util.py, github LuCazzola/KineMIC, called from
      diffusion/gaussian_dual_diffusion.py) multiplies squared differences [B, d, T] by a mask
      [B, 1, 1, T]; the product broadcasts to [B, B, d, T], and sample b's loss becomes
      sum_t M_b[t] sum_j ||e_{j,t}||^2 / (d n_b): the squared differences of every sample j of
      the batch, padding frames of j included, under b's mask. With similar window lengths that
      is about B times "element". Computed here through the per-frame batch sum
      S[t] = sum_j ||e_{j,t}||^2 in O(B T d) memory instead of the [B, B, d, T] product; equal
      to it up to float rounding (tested against the literal broadcast).

    Args:
        student_features: Tensor [B, T, d], the student's final-block features F^T(x_t^{P*}).
        teacher_features: Tensor [B, T, d], the teacher's features F^P(x_t^P) cut to the same
            window (:func:`mdm_kinemic.core.window.gather_window` with time_dim=1). No gradient
            reaches them.
        frame_mask: BoolTensor [B, T], True on the window's frames.
        normalisation: "frame", "element" or "authors_broadcast" (above).

    Returns:
        Tensor [B].

    Raises:
        ValueError: mismatched shapes or an unknown normalisation.
    """
    if normalisation not in DISTILLATION_NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {DISTILLATION_NORMALISATIONS}, got {normalisation!r}")
    if student_features.shape != teacher_features.shape or student_features.dim() != 3:
        raise ValueError(
            "student and teacher features must both be [B, T, d], "
            f"got {tuple(student_features.shape)} and {tuple(teacher_features.shape)}"
        )
    if frame_mask.shape != student_features.shape[:2]:
        raise ValueError(f"frame_mask must be {tuple(student_features.shape[:2])}, got {tuple(frame_mask.shape)}")
    squared = ((student_features - teacher_features.detach()) ** 2).sum(dim=-1)
    weights = frame_mask.to(squared.dtype)
    frames = weights.sum(dim=1)
    if normalisation == "authors_broadcast":
        per_frame_batch_sum = squared.sum(dim=0)
        per_sample = weights @ per_frame_batch_sum
    else:
        per_sample = (squared * weights).sum(dim=1)
    if normalisation != "frame":
        frames = frames * student_features.shape[-1]
    return per_sample / (frames + 1e-8)


@torch.no_grad()
def dynamic_window_weight(z_target: Tensor, z_window: Tensor) -> Tensor:
    """Eq. 6, dww = (cos(z^T, z^{P*}) + 1) / 2, in [0, 1]; computed without gradient.

    Args:
        z_target: Tensor [B, D], MIC context vector of each target.
        z_window: Tensor [B, D], MIC context vector of the student's features on its prior window.

    Returns:
        Tensor [B], detached: it scales Eq. 4 and Eq. 5 per sample but never trains the MIC
        module or the student.
    """
    if z_target.shape != z_window.shape or z_target.dim() != 2:
        raise ValueError(
            f"z_target and z_window must both be [B, D], got {tuple(z_target.shape)} and {tuple(z_window.shape)}"
        )
    return (F.cosine_similarity(z_target, z_window, dim=-1) + 1.0) / 2.0
