"""The sampling core: one-batch guidance, per-motion seeds, one length per batch, respacing."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.mdm.sampling.sampler import (
    SamplerSettings,
    auto_batch_size,
    plan_batches,
)


def test_plan_batches_groups_equal_lengths_in_order():
    assert plan_batches([5, 3, 5, 3, 5], 2) == [[1, 3], [0, 2], [4]]
    assert plan_batches([7], 4) == [[0]]
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        plan_batches([7], 0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"guidance_param": -1.0}, "guidance_param"),
        ({"guidance_param": float("nan")}, "guidance_param"),
        ({"timestep_respacing": "ddim"}, "timestep_respacing"),
        ({"timestep_respacing": "fifty"}, "timestep_respacing"),
        ({"sampler": "euler"}, "sampler"),
        ({"batch_size": -2}, "batch_size"),
    ],
)
def test_sampler_settings_reject_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SamplerSettings(**kwargs)


def test_auto_batch_size_on_cpu_is_capped_by_the_motions_left():
    assert auto_batch_size(lambda n: None, 1000, torch.device("cpu")) == 256
    assert auto_batch_size(lambda n: None, 12, torch.device("cpu")) == 12


@pytest.mark.upstream
@pytest.mark.parametrize("respacing, steps", [("", 10), ("5", 5), ("ddim5", 5), ("2,3", 5)])
def test_respaced_diffusion_keeps_the_asked_steps(loaded_student, respacing, steps):
    from mdm_kinemic.mdm.sampling.sampler import respaced_diffusion

    assert respaced_diffusion(loaded_student.args, respacing).num_timesteps == steps


@pytest.mark.upstream
def test_respacing_that_cannot_divide_the_steps_is_upstreams_error(loaded_student):
    from mdm_kinemic.mdm.sampling.sampler import respaced_diffusion

    with pytest.raises(ValueError, match="cannot create exactly 10 steps with an integer stride"):
        respaced_diffusion(loaded_student.args, "ddim7")


def _inputs(model, batch=3, length=12):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 263, 1, length, generator=g)
    t = torch.tensor([9, 4, 0][:batch])
    text_embed = model.prompt_features()[torch.tensor([2, 0, 1][:batch])][None]
    return x, t, {"text_embed": text_embed, "action": torch.tensor([[2], [0], [1]][:batch])}


@pytest.mark.upstream
@pytest.mark.parametrize("scale", [2.5, 1.0, 0.0])
def test_one_batch_guidance_equals_the_two_pass_guidance(loaded_student, scale):
    from mdm_kinemic.mdm.model.guidance import DualConditionCFG
    from mdm_kinemic.mdm.sampling.sampler import BatchedGuidance

    model = loaded_student.model
    x, t, y = _inputs(model)
    with torch.no_grad():
        ours = BatchedGuidance(model, scale)(x, t, dict(y))
        two_pass = DualConditionCFG(model, scale=scale)(x, t, dict(y))
        per_sample = BatchedGuidance(model)(x, t, dict(y, scale=torch.full((3,), scale)))
    torch.testing.assert_close(ours, two_pass, atol=1e-4, rtol=1e-4)  # batched GEMMs round differently
    torch.testing.assert_close(per_sample, two_pass, atol=1e-4, rtol=1e-4)


@pytest.mark.upstream
def test_a_sample_without_text_is_conditioned_on_its_class_prompt(loaded_student):
    model = loaded_student.model
    x, t, y = _inputs(model)
    with torch.no_grad():
        explicit = model(x, t, y)
        from_action = model(x, t, {"action": y["action"]})
        other_text = model(x, t, dict(y, text_embed=y["text_embed"].roll(1, dims=1)))
    torch.testing.assert_close(from_action, explicit)
    assert not torch.allclose(other_text, explicit, atol=1e-4)


@pytest.fixture(scope="module")
def sampler(loaded_student):
    from mdm_kinemic.mdm.sampling.sampler import (
        BatchedGuidance,
        GuidedSampler,
        respaced_diffusion,
    )

    def make(kind="ddpm", respacing="5"):
        return GuidedSampler(BatchedGuidance(loaded_student.model), respaced_diffusion(loaded_student.args, respacing),
                             kind, torch.device("cpu"))

    return make


@pytest.mark.upstream
@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_a_motion_depends_on_its_seed_not_on_its_batch(loaded_student, sampler, kind):
    features = loaded_student.model.prompt_features()
    draw = sampler(kind)
    pair = draw.sample(features[[1, 2]], torch.tensor([1, 2]), 8, [7, 8])
    alone = draw.sample(features[[2]], torch.tensor([2]), 8, [8])
    again = draw.sample(features[[1, 2]], torch.tensor([1, 2]), 8, [7, 8])
    assert pair.shape == (2, 263, 1, 8)
    # equal up to rounding: GEMMs of other batch sizes may round differently
    torch.testing.assert_close(alone[0], pair[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(again, pair)
    other_seed = draw.sample(features[[2]], torch.tensor([2]), 8, [9])
    assert not torch.allclose(other_seed[0], pair[1], atol=1e-3)


@pytest.mark.upstream
def test_the_action_changes_the_motion_at_equal_noise(loaded_student, sampler):
    features = loaded_student.model.prompt_features()
    draw = sampler()
    same_text = features[[1, 1]]
    out = draw.sample(same_text, torch.tensor([1, 2]), 8, [5, 5])
    assert not torch.allclose(out[0], out[1], atol=1e-3)
