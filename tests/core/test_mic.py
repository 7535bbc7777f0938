"""The MIC module: attention over valid frames only, padding-invariant outputs, input checks."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.core.denoiser import frame_mask_from_lengths
from mdm_kinemic.core.mic import MICModule, lengths_from_frame_mask


@pytest.fixture
def mic():
    torch.manual_seed(0)
    return MICModule(latent_dim=8, hidden_dim=12, output_dim=6)


def test_shapes_and_attention_is_a_softmax_over_valid_frames(mic):
    lengths = torch.tensor([5, 9, 1])
    mask = frame_mask_from_lengths(lengths, 9)
    out = mic(torch.randn(3, 9, 8), mask)
    assert out.z.shape == (3, 6) and out.attention.shape == (3, 9)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(3))
    assert torch.all(out.attention[~mask] == 0)
    assert torch.all(out.attention[mask] > 0)
    assert out.attention[2, 0].item() == pytest.approx(1.0)


def test_padding_content_does_not_change_the_output(mic):
    """A sequence padded to T gives the same z and attention as the same sequence alone."""
    features = torch.randn(2, 10, 8)
    mask = frame_mask_from_lengths(torch.tensor([6, 10]), 10)
    out = mic(features, mask)
    garbage = features.clone()
    garbage[0, 6:] = 1e3 * torch.randn(4, 8)
    out_garbage = mic(garbage, mask)
    alone = mic(features[:1, :6], torch.ones(1, 6, dtype=torch.bool))
    torch.testing.assert_close(out.z, out_garbage.z)
    torch.testing.assert_close(out.attention, out_garbage.attention)
    torch.testing.assert_close(out.z[:1], alone.z)
    torch.testing.assert_close(out.attention[:1, :6], alone.attention)


def test_context_is_the_attention_weighted_sum(mic):
    """z = output_net(sum_t a_t h_t): recompute the pooling by hand on an unpadded batch."""
    features = torch.randn(2, 7, 8)
    mask = torch.ones(2, 7, dtype=torch.bool)
    out = mic(features, mask)
    hidden, _ = mic.gru(mic.input_embedding(features), mic.initial_hidden.expand(-1, 2, -1).contiguous())
    attention = torch.softmax(mic.attention_net(hidden).squeeze(-1), dim=1)
    context = (attention[..., None] * hidden).sum(dim=1)
    torch.testing.assert_close(out.attention, attention)
    torch.testing.assert_close(out.z, mic.output_net(context))


def test_gradients_reach_every_parameter(mic):
    out = mic(torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool))
    (out.z.sum() + (out.attention * torch.arange(5.0)).sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mic.parameters())


@pytest.mark.parametrize(
    "mask, message",
    [
        (torch.tensor([[True, False, True]]), "prefix"),
        (torch.tensor([[False, False, False]]), "no valid frame"),
        (torch.tensor([[1, 1, 0]]), "bool"),
    ],
)
def test_bad_masks_raise(mask, message):
    with pytest.raises(ValueError, match=message):
        lengths_from_frame_mask(mask)


def test_wrong_feature_width_raises(mic):
    with pytest.raises(ValueError, match="8"):
        mic(torch.randn(1, 4, 5), torch.ones(1, 4, dtype=torch.bool))


def test_invalid_width_raises():
    with pytest.raises(ValueError, match="hidden_dim"):
        MICModule(latent_dim=8, hidden_dim=-1)


def test_bigru_states_equal_a_packed_sequence_run_on_valid_frames():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    mic = MICModule(latent_dim=8, hidden_dim=6)
    embedded = torch.randn(4, 11, 6)
    lengths = torch.tensor([11, 7, 1, 4])
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    initial = mic.initial_hidden.expand(-1, 4, -1).contiguous()
    expected, _ = pad_packed_sequence(mic.gru(packed, initial)[0], batch_first=True, total_length=11)
    got = mic._bidirectional_hidden(embedded, lengths)
    valid = torch.arange(11)[None, :] < lengths[:, None]
    torch.testing.assert_close(got[valid], expected[valid], rtol=1e-5, atol=1e-6)
