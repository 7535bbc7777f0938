"""Eq. 1 (SNN loss): hand-computed and loop references, exclusion, temperature, FIFO bank."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mdm_kinemic.core.contrastive import ContrastiveSettings, SoftNearestNeighbourLoss


def loop_snn(z_a, y_a, z_b, y_b, tau):
    """Eq. 1 written as the paper states it, one anchor at a time with plain exp/log."""
    terms = []
    for i in range(z_a.shape[0]):
        numerator = denominator = 0.0
        for j in range(z_b.shape[0]):
            s = math.exp(F.cosine_similarity(z_a[i], z_b[j], dim=0).item() / tau)
            denominator += s
            if y_a[i] == y_b[j]:
                numerator += s
        if numerator > 0:
            terms.append(-math.log(numerator / denominator))
    return sum(terms) / len(terms), len(z_a) - len(terms)


def test_hand_computed_case():
    # Anchor 0 = e1 with positive e1 (cos 1) and negative e2 (cos 0): -log(e^{1/t} / (e^{1/t} + 1)).
    z_target = torch.tensor([[1.0, 0.0]])
    z_prior = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    out = SoftNearestNeighbourLoss(ContrastiveSettings(temperature=0.5))(
        z_target, torch.tensor([0]), z_prior, torch.tensor([0, 1])
    )
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0))
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.excluded == 0 and out.candidates == 2


@pytest.mark.parametrize("seed", range(3))
def test_matches_loop_implementation(seed):
    g = torch.Generator().manual_seed(seed)
    z_target, z_prior = torch.randn(9, 5, generator=g), torch.randn(12, 5, generator=g)
    y_target, y_prior = torch.randint(0, 4, (9,), generator=g), torch.randint(0, 4, (12,), generator=g)
    out = SoftNearestNeighbourLoss()(z_target, y_target, z_prior, y_prior)
    expected, excluded = loop_snn(z_target, y_target, z_prior, y_prior, 0.07)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    assert out.excluded == excluded


def test_anchor_without_positive_is_excluded_and_counted_not_nan():
    generator = torch.Generator().manual_seed(0)
    z_target = torch.randn(3, 4, generator=generator).requires_grad_()
    z_prior = torch.randn(3, 4, generator=generator)
    out = SoftNearestNeighbourLoss()(z_target, torch.tensor([0, 1, 7]), z_prior, torch.tensor([0, 1, 1]))
    assert out.excluded == 1
    assert out.has_positive.tolist() == [True, True, False]
    assert out.per_anchor[2].item() == 0.0
    expected, _ = loop_snn(z_target.detach(), [0, 1, 7], z_prior, [0, 1, 1], 0.07)
    # float32 logits / tau reach ~1e2, so compare with float32's absolute resolution there too
    assert out.loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    out.loss.backward()
    assert torch.isfinite(z_target.grad).all()
    assert torch.all(z_target.grad[2] == 0)


def test_no_anchor_with_a_positive_gives_zero_loss_that_backpropagates():
    z_target = torch.randn(2, 4, requires_grad=True)
    out = SoftNearestNeighbourLoss()(z_target, torch.tensor([0, 0]), torch.randn(2, 4), torch.tensor([1, 1]))
    assert out.loss.item() == 0.0 and out.excluded == 2
    out.loss.backward()
    assert torch.all(z_target.grad == 0)


def test_learnable_temperature_gets_gradient_and_is_clamped():
    loss_fn = SoftNearestNeighbourLoss(ContrastiveSettings(learnable_temperature=True))
    assert [n for n, _ in loss_fn.named_parameters()] == ["log_logit_scale"]
    assert loss_fn.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    out = loss_fn(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    out.loss.backward()
    assert loss_fn.log_logit_scale.grad is not None and loss_fn.log_logit_scale.grad != 0
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(10.0)
    assert loss_fn.logit_scale.item() == pytest.approx(100.0, rel=1e-6)


def test_fixed_temperature_is_a_buffer():
    loss_fn = SoftNearestNeighbourLoss()
    assert list(loss_fn.parameters()) == []
    assert "log_logit_scale" in loss_fn.state_dict()


def test_bank_is_fifo_detached_and_used_as_candidates():
    loss_fn = SoftNearestNeighbourLoss(ContrastiveSettings(bank_size=3), embedding_dim=2).train()
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    out = loss_fn(torch.randn(2, 2), torch.tensor([0, 1]), first, torch.tensor([0, 1]))
    assert out.candidates == 2  # a step's own priors are not in the bank yet
    bank_z, bank_labels = loss_fn.bank()
    assert bank_z.shape == (2, 2) and not bank_z.requires_grad and bank_labels.tolist() == [0, 1]

    second = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    out = loss_fn(torch.randn(2, 2), torch.tensor([0, 1]), second, torch.tensor([5, 6]))
    assert out.candidates == 4
    bank_z, bank_labels = loss_fn.bank()
    # Capacity 3: the oldest entry (label 0) was dropped.
    assert sorted(bank_labels.tolist()) == [1, 5, 6]

    z_target = torch.tensor([[1.0, 0.5]])
    with_bank = loss_fn(z_target, torch.tensor([6]), torch.tensor([[0.0, 1.0]]), torch.tensor([9]), update_bank=False)
    bank_z, bank_labels = loss_fn.bank()
    expected, _ = loop_snn(
        z_target, [6], torch.cat([torch.tensor([[0.0, 1.0]]), bank_z]), [9] + bank_labels.tolist(), 0.07
    )
    assert with_bank.loss.item() == pytest.approx(expected, rel=1e-5)


def test_bank_not_filled_in_eval_mode_and_saved_in_state_dict():
    loss_fn = SoftNearestNeighbourLoss(ContrastiveSettings(bank_size=4), embedding_dim=2).eval()
    loss_fn(torch.randn(2, 2), torch.tensor([0, 1]), torch.randn(2, 2), torch.tensor([0, 1]))
    assert loss_fn.bank()[0].shape[0] == 0
    loss_fn.train()(torch.randn(2, 2), torch.tensor([0, 1]), torch.randn(2, 2), torch.tensor([0, 1]))
    restored = SoftNearestNeighbourLoss(ContrastiveSettings(bank_size=4), embedding_dim=2)
    restored.load_state_dict(loss_fn.state_dict())
    torch.testing.assert_close(restored.bank()[0], loss_fn.bank()[0])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(temperature=0.0), "temperature"),
        (dict(bank_size=-1), "bank_size"),
        (dict(max_logit_scale=0.5), "max_logit_scale"),
        (dict(learnable_temperature=True, temperature=0.001), "max_logit_scale"),
    ],
)
def test_settings_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ContrastiveSettings(**kwargs)


def test_bank_needs_embedding_dim():
    with pytest.raises(ValueError, match="embedding_dim"):
        SoftNearestNeighbourLoss(ContrastiveSettings(bank_size=2))


def test_bank_keeps_the_newest_when_one_push_exceeds_its_size():
    # Five priors into a bank of three: FIFO keeps the last three pushed, in order.
    loss_fn = SoftNearestNeighbourLoss(ContrastiveSettings(bank_size=3), embedding_dim=2).train()
    z_prior = torch.arange(10.0).view(5, 2)
    loss_fn(torch.randn(5, 2), torch.zeros(5, dtype=torch.long), z_prior, torch.tensor([10, 11, 12, 13, 14]))
    bank_z, bank_labels = loss_fn.bank()
    assert bank_labels.tolist() == [12, 13, 14]
    torch.testing.assert_close(bank_z, z_prior[2:])
