"""Eq. 2 window mining and the window gather, against direct loops and hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.core.contrastive import SoftNearestNeighbourLoss
from mdm_kinemic.core.denoiser import frame_mask_from_lengths
from mdm_kinemic.core.mic import MICModule
from mdm_kinemic.core.window import PriorWindow, gather_window, mine_prior_windows


def loop_best_start(scores: list[float], prior_length: int, m: int) -> tuple[int, int]:
    """Eq. 2 by brute force: every feasible start, strict > so the earliest maximum wins."""
    m = min(m, prior_length)
    best, best_start = None, 0
    for s in range(prior_length - m + 1):
        total = sum(scores[s : s + m])
        if best is None or total > best + 1e-12:
            best, best_start = total, s
    return best_start, m


def test_hand_computed_case():
    attention = torch.tensor([[0.1, 0.1, 0.5, 0.2, 0.1, 0.0], [0.4, 0.0, 0.0, 0.3, 0.3, 0.9]])
    # Row 1: the 0.9 at frame 5 is padding (prior length 5), so the window is frames 3-4.
    window = mine_prior_windows(attention, torch.tensor([6, 5]), torch.tensor([2, 2]))
    assert window.start.tolist() == [2, 3]
    assert window.length.tolist() == [2, 2]


@pytest.mark.parametrize("seed", range(5))
def test_matches_loop_implementation(seed):
    g = torch.Generator().manual_seed(seed)
    batch, total = 16, 40
    attention = torch.rand(batch, total, generator=g)
    prior_lengths = torch.randint(1, total + 1, (batch,), generator=g)
    window_lengths = torch.randint(1, total + 1, (batch,), generator=g)
    window = mine_prior_windows(attention, prior_lengths, window_lengths)
    for b in range(batch):
        expected = loop_best_start(attention[b].tolist(), int(prior_lengths[b]), int(window_lengths[b]))
        assert (int(window.start[b]), int(window.length[b])) == expected


def test_ties_take_the_earliest_start():
    uniform = torch.full((1, 50), 1.0 / 50)
    window = mine_prior_windows(uniform, torch.tensor([50]), torch.tensor([7]))
    assert window.start.item() == 0
    two_peaks = torch.tensor([[0.0, 0.3, 0.0, 0.0, 0.3, 0.0]])
    assert mine_prior_windows(two_peaks, torch.tensor([6]), torch.tensor([1])).start.item() == 1


def test_prior_shorter_than_target_yields_whole_prior():
    attention = torch.rand(2, 30)
    window = mine_prior_windows(attention, torch.tensor([12, 30]), torch.tensor([20, 20]))
    assert window.start[0].item() == 0 and window.length[0].item() == 12
    assert window.length[1].item() == 20
    assert window.frame_mask(25)[0].tolist() == [True] * 12 + [False] * 13


def test_invalid_lengths_raise():
    with pytest.raises(ValueError, match="prior_lengths"):
        mine_prior_windows(torch.rand(2, 10), torch.tensor([0, 5]), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="window_lengths"):
        mine_prior_windows(torch.rand(2, 10), torch.tensor([4, 5]), torch.tensor([0, 3]))


def test_gather_window_matches_loop_on_motion_and_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 1, 20, generator=g)
    features = torch.randn(3, 20, 4, generator=g)
    window = PriorWindow(start=torch.tensor([0, 7, 15]), length=torch.tensor([6, 4, 5]))
    cut = gather_window(x, window, max_len=8)
    cut_features = gather_window(features, window, max_len=8, time_dim=1)
    assert cut.shape == (3, 5, 1, 8) and cut_features.shape == (3, 8, 4)
    for b in range(3):
        s, n = int(window.start[b]), int(window.length[b])
        torch.testing.assert_close(cut[b, ..., :n], x[b, ..., s : s + n])
        torch.testing.assert_close(cut_features[b, :n], features[b, s : s + n])
        assert torch.count_nonzero(cut[b, ..., n:]) == 0
        assert torch.count_nonzero(cut_features[b, n:]) == 0


def test_gather_window_rejects_out_of_range():
    window = PriorWindow(start=torch.tensor([8]), length=torch.tensor([4]))
    with pytest.raises(ValueError, match="beyond"):
        gather_window(torch.zeros(1, 2, 1, 10), window, max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        gather_window(torch.zeros(1, 2, 1, 20), window, max_len=3)


def iou(start_a, len_a, start_b, len_b):
    overlap = (torch.minimum(start_a + len_a, start_b + len_b) - torch.maximum(start_a, start_b)).clamp(min=0)
    return overlap.float() / (len_a + len_b - overlap).float()


def test_planted_segment_is_mined_after_contrastive_training():
    """Sources hide their class's pattern at a random offset among random frames; after a short
    MIC training on Eq. 1, the Eq. 2 window of each fresh source overlaps the planted pattern
    (IoU >= 0.5) in >= 80 % of cases, while a random window does so in about 9/49 (18 %).

    Frame noise (1.5) is larger than the pattern (1.0), so one frame says little about the class:
    the MIC module has to gather evidence over the planted frames, which is what Eq. 2 exploits.
    """
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    n_classes, d, m, prior_len, per_class, noise = 10, 16, 12, 60, 3, 1.5
    patterns = torch.randn(n_classes, m, d, generator=g)

    def make_batch():
        labels = torch.arange(n_classes).repeat_interleave(per_class)
        batch = labels.numel()
        targets = patterns[labels] + noise * torch.randn(batch, m, d, generator=g)
        priors = torch.randn(batch, prior_len, d, generator=g)
        offsets = torch.randint(0, prior_len - m + 1, (batch,), generator=g)
        frames = offsets[:, None] + torch.arange(m)
        priors[torch.arange(batch)[:, None], frames] = patterns[labels] + noise * torch.randn(batch, m, d, generator=g)
        return labels, targets, priors, offsets

    mic = MICModule(latent_dim=d, hidden_dim=32, output_dim=32)
    loss_fn = SoftNearestNeighbourLoss()
    optimiser = torch.optim.Adam(mic.parameters(), lr=3e-3)
    target_mask = torch.ones(n_classes * per_class, m, dtype=torch.bool)
    prior_mask = torch.ones(n_classes * per_class, prior_len, dtype=torch.bool)
    for _ in range(40):
        labels, targets, priors, _ = make_batch()
        z_target = mic(targets, target_mask).z
        z_prior = mic(priors, prior_mask).z
        loss = loss_fn(z_target, labels, z_prior, labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    with torch.no_grad():
        hits, random_hits, cases = 0, 0, 0
        for _ in range(4):
            labels, _, priors, offsets = make_batch()
            attention = mic(priors, prior_mask).attention
            lengths = torch.full_like(labels, m)
            window = mine_prior_windows(attention, torch.full_like(labels, prior_len), lengths)
            hits += int((iou(window.start, window.length, offsets, lengths) >= 0.5).sum())
            random_starts = torch.randint(0, prior_len - m + 1, labels.shape, generator=g)
            random_hits += int((iou(random_starts, lengths, offsets, lengths) >= 0.5).sum())
            cases += labels.numel()
    assert hits / cases >= 0.8, f"planted segment found in {hits}/{cases}"
    assert random_hits / cases < 0.3, f"random windows hit {random_hits}/{cases}: the test is too easy"


def test_frame_mask_round_trip():
    window = PriorWindow(start=torch.tensor([3, 0]), length=torch.tensor([2, 4]))
    assert torch.equal(window.frame_mask(5), frame_mask_from_lengths(torch.tensor([2, 4]), 5))
