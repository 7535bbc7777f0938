"""LoraSettings validation and LoRA injection into upstream MDM through peft."""

from __future__ import annotations

import argparse
import copy
import warnings

import pytest
import torch

from mdm_kinemic.flags import add_dataclass_options, dataclass_from_args
from mdm_kinemic.mdm.model.lora import (
    LORA_TARGETS,
    LoraSettings,
    inject_lora,
    lora_parameter_names,
    set_network_dropout,
)

# --- settings (no upstream needed) ---------------------------------------------------------------


def test_defaults_are_the_papers():
    s = LoraSettings()
    assert (s.rank, s.alpha, s.dropout) == (16, 32.0, 0.1)
    assert s.targets == ("attention", "feed_forward", "input_process", "output_process", "timestep_embedding")
    assert s.scaling == 2.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rank": 0}, "rank"),
        ({"rank": 2.5}, "rank"),
        ({"rank": True}, "rank"),
        ({"alpha": 0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"targets": ()}, "targets"),
        ({"targets": ("embed_text",)}, "targets"),
        ({"targets": ("attention", "norm1")}, "targets"),
        ({"targets": ("attention", "attention")}, "targets"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"LoraSettings.{field}"):
        LoraSettings(**kwargs)


def test_dropout_on_attention_only_warns_it_is_ignored():
    with pytest.warns(UserWarning, match="dropout is ignored"):
        LoraSettings(targets=("attention",), dropout=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LoraSettings(targets=("attention",), dropout=0.0)


def test_json_round_trip_and_unknown_key():
    s = LoraSettings(rank=4, alpha=8, dropout=0.0, targets=["feed_forward", "attention"])
    assert s.targets == ("feed_forward", "attention")
    assert LoraSettings.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match="unknown keys"):
        LoraSettings.from_json({**s.to_json(), "bias": "all"})


def test_cli_flags_round_trip():
    parser = argparse.ArgumentParser()
    add_dataclass_options(parser, LoraSettings, "lora", prefix="lora_")
    assert "--lora_targets" in parser.format_help()
    assert dataclass_from_args(LoraSettings, parser.parse_args([]), prefix="lora_") == LoraSettings()
    args = parser.parse_args(["--lora_rank", "8", "--lora_alpha", "4", "--lora_targets", "attention", "feed_forward",
                              "--lora_dropout", "0"])
    expected = LoraSettings(rank=8, alpha=4.0, dropout=0.0, targets=("attention", "feed_forward"))
    assert dataclass_from_args(LoraSettings, args, prefix="lora_") == expected
    with pytest.raises(SystemExit):  # the field's metadata choices reach argparse
        parser.parse_args(["--lora_targets", "embed_text"])


def test_target_regex_selects_exactly_the_named_layers():
    import re

    regex = LoraSettings().target_regex()
    adapted = [
        "seqTransEncoder.layers.0.self_attn", "seqTransEncoder.layers.7.self_attn",
        "seqTransEncoder.layers.3.linear1", "seqTransEncoder.layers.3.linear2",
        "input_process.poseEmbedding", "output_process.poseFinal",
        "embed_timestep.time_embed.0", "embed_timestep.time_embed.2",
    ]
    kept = [
        "embed_text", "seqTransEncoder.layers.0.norm1", "seqTransEncoder.layers.0.norm2",
        "seqTransEncoder.layers.0.self_attn.out_proj", "embed_timestep.time_embed.1",
        "clip_model.transformer.resblocks.0.mlp.c_fc", "seqTransEncoder.layers.0",
    ]
    assert all(re.fullmatch(regex, name) for name in adapted)
    assert not any(re.fullmatch(regex, name) for name in kept)


def test_every_target_group_has_a_pattern():
    assert set(LoraSettings().targets) == set(LORA_TARGETS)


def test_network_dropout_leaves_loras_own_alone():
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dropout = torch.nn.Dropout(0.1)
            self.attention = torch.nn.MultiheadAttention(8, 2, dropout=0.1)
            self.lora_dropout = torch.nn.ModuleDict({"default": torch.nn.Dropout(0.1)})

    net = Net()
    assert set_network_dropout(net, 0.0) == 2
    assert (net.dropout.p, net.attention.dropout, net.lora_dropout["default"].p) == (0.0, 0.0, 0.1)


# --- injection into upstream's own MDM (random weights; no CLIP: unconditioned) -------------------


def _plain_mdm(arch: str = "trans_enc", dropout: float = 0.1):
    """Upstream's MDM, tiny, without text condition (so no CLIP is loaded)."""
    from mdm_kinemic.mdm.upstream.locate import import_upstream

    import_upstream()
    from model.mdm import MDM

    from mdm_kinemic.mdm.model.build import _quiet_upstream

    return _quiet_upstream(
        MDM, modeltype="", njoints=263, nfeats=1, num_actions=1, translation=True, pose_rep="rot6d", glob=True,
        glob_rot=True, latent_dim=32, ff_size=64, num_layers=2, num_heads=4, dropout=dropout, data_rep="hml_vec",
        cond_mode="no_cond", arch=arch, dataset="humanml",
    )


def _frozen_copy(model):
    """A copy with requires_grad off, as peft leaves the base: CPU kernels can round differently
    for weights that require grad, even under no_grad, so bitwise comparisons need the same flags."""
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    return reference


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 263, 1, 9, generator=g)
    t = torch.tensor([4, 600])
    y = {"mask": torch.ones(2, 1, 1, 9, dtype=torch.bool)}
    return x, t, y


@pytest.mark.upstream
def test_injection_places_adapters_on_the_named_layers_only():
    torch.manual_seed(0)
    model = _plain_mdm()
    network = inject_lora(model, LoraSettings())
    from peft.tuners.lora import LoraLayer

    adapted = sorted(name for name, m in model.named_modules() if isinstance(m, LoraLayer))
    # peft wraps MultiheadAttention.out_proj itself inside the attention adapter
    expected = sorted(
        [f"seqTransEncoder.layers.{i}.{n}" for i in range(2) for n in ("self_attn", "linear1", "linear2")]
        + [f"seqTransEncoder.layers.{i}.self_attn.base_layer.out_proj" for i in range(2)]
        + ["input_process.poseEmbedding", "output_process.poseFinal", "embed_timestep.time_embed.0",
           "embed_timestep.time_embed.2"]
    )
    assert adapted == expected
    trainable = {n for n, p in network.named_parameters() if p.requires_grad}
    assert trainable == set(lora_parameter_names(network))
    # rank 16, scaling alpha / rank = 2 on every adapted layer
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            assert module.r["default"] == 16, name
            assert module.scaling["default"] == 2.0, name


@pytest.mark.upstream
def test_fresh_adapters_leave_the_output_unchanged():
    torch.manual_seed(0)
    model = _plain_mdm()
    model.eval()  # upstream's MDM.train returns None: no chaining
    reference = _frozen_copy(model)
    network = inject_lora(model, LoraSettings())
    x, t, y = _inputs()
    with torch.no_grad():
        assert torch.equal(network(x, t, y), reference(x, t, y))  # B = 0 at init


@pytest.mark.upstream
def test_trained_adapters_change_output_and_disabled_ones_do_not():
    torch.manual_seed(0)
    model = _plain_mdm()
    model.eval()  # upstream's MDM.train returns None: no chaining
    reference = _frozen_copy(model)
    network = inject_lora(model, LoraSettings())
    for name, p in network.named_parameters():
        if ".lora_B." in name:
            torch.nn.init.normal_(p, std=0.05)
    x, t, y = _inputs()
    with torch.no_grad():
        adapted = network(x, t, y)
        with network.disable_adapter():
            disabled = network(x, t, y)
        expected = reference(x, t, y)
    assert (adapted - expected).abs().max() > 1e-3
    assert torch.equal(disabled, expected)


@pytest.mark.upstream
def test_attention_base_weights_stay_bit_exact_through_training_steps():
    torch.manual_seed(0)
    model = _plain_mdm(dropout=0.0)
    network = inject_lora(model, LoraSettings(dropout=0.0))
    base = {n: p.detach().clone() for n, p in network.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-2)
    x, t, y = _inputs()
    for _ in range(5):
        optimizer.zero_grad()
        network(x, t, y).square().mean().backward()
        optimizer.step()
    after = dict(network.named_parameters())
    assert set(after) - set(lora_parameter_names(network)) == set(base)
    changed = [n for n, v in base.items() if not torch.equal(v, after[n].detach())]
    assert changed == []
    assert all(after[n].grad is None for n in base)
    # the attention adapters did learn (their gradient reaches them through peft's merged weights)
    attn_b = [n for n in lora_parameter_names(network) if "self_attn.lora_B" in n]
    assert attn_b and all(after[n].detach().abs().sum() > 0 for n in attn_b)


@pytest.mark.upstream
def test_target_group_without_a_match_is_refused():
    model = _plain_mdm(arch="gru")
    with pytest.raises(ValueError, match="'attention' matches no module"):
        inject_lora(model, LoraSettings())
