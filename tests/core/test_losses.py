"""Eqs. 3-6: masked reconstruction (as upstream's masked_l2), window distillation, dww."""

from __future__ import annotations

import math

import pytest
import torch

from mdm_kinemic.core.losses import dynamic_window_weight, masked_l2, reconstruction_loss, window_distillation_loss


def test_masked_l2_hand_computed():
    # B=2, F=2, 1, T=3. Sample 0 has 2 valid frames, sample 1 has 3.
    prediction = torch.zeros(2, 2, 1, 3)
    target = torch.tensor([[[[1.0, 2.0, 100.0]], [[3.0, 0.0, 100.0]]], [[[1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0]]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    # upstream: sum of squares over valid entries / (valid frames * F * 1 + 1e-8)
    expected = torch.tensor([(1 + 4 + 9 + 0) / (2 * 2 + 1e-8), 6 / (3 * 2 + 1e-8)])
    torch.testing.assert_close(masked_l2(prediction, target, mask), expected)
    torch.testing.assert_close(reconstruction_loss(prediction, target, mask), expected)


def test_masked_l2_matches_upstream_formula_on_random_tensors():
    """The formula of upstream utils/loss_util.masked_l2, written out with its [B, 1, 1, T] mask."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 7, 1, 9, generator=g), torch.randn(4, 7, 1, 9, generator=g)
    lengths = torch.tensor([9, 1, 5, 3])
    mask = torch.arange(9)[None, :] < lengths[:, None]
    upstream_mask = mask[:, None, None, :]
    loss = ((a - b) ** 2 * upstream_mask.float()).sum(dim=(1, 2, 3))
    expected = loss / (upstream_mask.sum(dim=(1, 2, 3)) * 7 * 1 + 1e-8)
    torch.testing.assert_close(masked_l2(a, b, mask), expected)


def test_masked_l2_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        masked_l2(torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 4), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="frame_mask"):
        masked_l2(torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 3), torch.ones(1, 4, dtype=torch.bool))


def test_window_distillation_matches_loop():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 4, generator=g)
    lengths = [6, 2, 4]
    mask = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]
    frame = window_distillation_loss(student, teacher, mask)
    element = window_distillation_loss(student, teacher, mask, normalisation="element")
    for b, n in enumerate(lengths):
        per_frame = [sum((student[b, t, k] - teacher[b, t, k]).item() ** 2 for k in range(4)) for t in range(n)]
        assert frame[b].item() == pytest.approx(sum(per_frame) / n, rel=1e-5)
        assert element[b].item() == pytest.approx(sum(per_frame) / (n * 4), rel=1e-5)


def _authors_masked_lx(a, b, mask):
    """The authors' masked_lx on Eq. 5's tensors, written out literally: features [B, d, T], mask
    [B, 1, 1, T], loss_fn (a - b)^2, sum_flat over every dim but the first, entries_norm=True
    with n_entries = a.shape[1] (a is 3-dimensional)."""
    loss = (a - b) ** 2 * mask.float()
    assert loss.shape == (a.shape[0], *a.shape)  # the broadcast: [B, B, d, T]
    loss = loss.flatten(1).sum(dim=1)
    non_zero_elements = mask.flatten(1).sum(dim=1) * a.shape[1]
    return loss / (non_zero_elements + 1e-8)


def test_window_distillation_authors_broadcast_equals_the_literal_broadcast():
    g = torch.Generator().manual_seed(3)
    student = torch.randn(4, 7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(4, 7, 5, generator=g, dtype=torch.float64)
    lengths = torch.tensor([7, 2, 5, 1])
    mask = torch.arange(7)[None, :] < lengths[:, None]
    ours = window_distillation_loss(student, teacher, mask, normalisation="authors_broadcast")
    # their call: masked_lx(teacher [B, d, T], student [B, d, T], mask['target'] [B, 1, 1, T])
    student_ref = student.detach().clone().requires_grad_(True)
    theirs = _authors_masked_lx(teacher.permute(0, 2, 1), student_ref.permute(0, 2, 1), mask[:, None, None, :])
    torch.testing.assert_close(ours, theirs)
    weights = torch.arange(1.0, 5.0, dtype=torch.float64)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    torch.testing.assert_close(student.grad, student_ref.grad)
    # the padding frames of sample 1 (frames 2..6) carry gradient: other samples' masks cover them
    assert student.grad[1, 6].abs().sum() > 0


def test_window_distillation_authors_broadcast_is_the_batch_sum_of_element_with_full_windows():
    g = torch.Generator().manual_seed(4)
    student, teacher = torch.randn(3, 6, 8, generator=g), torch.randn(3, 6, 8, generator=g)
    mask = torch.ones(3, 6, dtype=torch.bool)
    element = window_distillation_loss(student, teacher, mask, normalisation="element")
    broadcast = window_distillation_loss(student, teacher, mask, normalisation="authors_broadcast")
    # every sample's loss is the sum over the batch of the per-element means: B times their mean
    torch.testing.assert_close(broadcast, element.sum().expand(3))


def test_window_distillation_sends_no_gradient_to_the_teacher():
    student = torch.randn(2, 3, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, requires_grad=True)
    window_distillation_loss(student, teacher, torch.ones(2, 3, dtype=torch.bool)).sum().backward()
    assert student.grad is not None and teacher.grad is None


def test_window_distillation_rejects_unknown_normalisation():
    with pytest.raises(ValueError, match="normalisation"):
        window_distillation_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool), "sum")


def test_dww_hand_computed_values():
    z_target = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    z_window = torch.tensor([[3.0, 0.0], [0.0, 2.0], [-1.0, 0.0], [1.0, 0.0]])
    expected = torch.tensor([1.0, 0.5, 0.0, (math.sqrt(0.5) + 1) / 2])
    torch.testing.assert_close(dynamic_window_weight(z_target, z_window), expected)


def test_dww_carries_no_gradient():
    z_target = torch.randn(3, 4, requires_grad=True)
    z_window = torch.randn(3, 4, requires_grad=True)
    weight = dynamic_window_weight(z_target, z_window)
    assert not weight.requires_grad and weight.grad_fn is None
