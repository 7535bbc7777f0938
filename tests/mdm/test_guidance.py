"""Dual-condition classifier-free guidance, driven by upstream's own p_sample_loop."""

from __future__ import annotations

import pytest
import torch

from mdm_kinemic.mdm.model.guidance import DEFAULT_GUIDANCE_SCALE, DualConditionCFG
from mdm_kinemic.mdm.model.kinemic_mdm import KineMICModelSettings
from mdm_kinemic.mdm.model.lora import LoraSettings

pytestmark = pytest.mark.upstream

TEXTS = ["a person performs a side kick.", "a person waves with the right hand."]
T = 8


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, tiny_base_checkpoint):
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import start_from_base

    ckpt = tiny_base_checkpoint(tmp_path_factory.mktemp("base"), seed=5)
    torch.manual_seed(0)
    result = start_from_base(ckpt, KineMICModelSettings(num_actions=2), LoraSettings())
    with torch.no_grad():
        for name, p in result.model.network.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
        result.model.mdm.action_embedding.weight.normal_(0, 0.5)
    return result


@pytest.fixture(scope="module")
def y(loaded):
    """Upstream's y dict as sample/generate.py builds it (text features precomputed, as p_sample_loop does)."""
    return {
        "text_embed": loaded.model.text_features(TEXTS),
        "action": torch.tensor([[1], [0]]),  # upstream's collate gives [B, 1]
        "mask": torch.ones(2, 1, 1, T, dtype=torch.bool),
    }


def _x_t():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 263, 1, T, generator=g), torch.tensor([3, 9])


def test_guided_prediction_is_the_cfg_combination(loaded, y):
    net = loaded.model.network
    x, t = _x_t()
    with torch.no_grad():
        cond = net(x, t, dict(y))
        null = net(x, t, {"mask": y["mask"]})  # no text (null CLIP feature) and no action
        guided = loaded.model.sampler()(x, t, dict(y))
        per_sample = DualConditionCFG(net)(x, t, {**y, "scale": torch.tensor([0.0, 1.0])})
    assert (cond - null).abs().max() > 1e-3
    torch.testing.assert_close(guided, null + DEFAULT_GUIDANCE_SCALE * (cond - null), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_sample[0], null[0], atol=1e-6, rtol=0)  # scale 0: unconditional
    torch.testing.assert_close(per_sample[1], cond[1], atol=1e-5, rtol=0)  # scale 1: conditional


def test_caller_drop_masks_do_not_leak_into_the_conditional_branch(loaded, y):
    net = loaded.model.network
    x, t = _x_t()
    wrapper = DualConditionCFG(net, scale=3.0)
    drops = {"drop_text": torch.tensor([True, True]), "drop_action": torch.tensor([True, True])}
    with torch.no_grad():
        assert torch.equal(wrapper(x, t, {**y, **drops}), wrapper(x, t, dict(y)))


def test_wrapper_exposes_what_upstream_sampling_reads(loaded):
    wrapper = loaded.model.sampler(scale=2.0)
    assert (wrapper.njoints, wrapper.nfeats, wrapper.data_rep) == (263, 1, "hml_vec")
    assert wrapper.scale == 2.0 and wrapper.cond_mode == "text"
    assert next(wrapper.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="finite"):
        DualConditionCFG(loaded.model.network, scale=float("nan"))


def test_upstream_p_sample_loop_drives_the_wrapper(loaded, y):
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream()
    import argparse

    from utils.model_util import create_gaussian_diffusion

    diffusion = create_gaussian_diffusion(argparse.Namespace(**{**vars(loaded.args), "diffusion_steps": 6}))
    net = loaded.model.network
    loaded.model.eval()

    def sample(model, scale):
        kwargs = {"y": {**y, "scale": torch.full((2,), scale)}}
        torch.manual_seed(7)
        return diffusion.p_sample_loop(model, (2, 263, 1, T), clip_denoised=False, model_kwargs=kwargs, progress=False)

    with torch.no_grad():
        unguided = sample(net, 1.0)
        scale_one = sample(DualConditionCFG(net), 1.0)
        guided = sample(DualConditionCFG(net), DEFAULT_GUIDANCE_SCALE)
    assert guided.shape == (2, 263, 1, T) and torch.isfinite(guided).all()
    torch.testing.assert_close(scale_one, unguided, atol=1e-4, rtol=0)
    assert (guided - unguided).abs().max() > 1e-2
