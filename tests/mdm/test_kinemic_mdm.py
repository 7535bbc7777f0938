"""KineMICMDM and its student/teacher streams against the real upstream MDM (tiny, random weights)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mdm_kinemic.core.denoiser import Condition, Denoiser
from mdm_kinemic.mdm.model.kinemic_mdm import (
    ACTION_EMBEDDING_STD,
    DualStreamMDM,
    KineMICModelSettings,
)
from mdm_kinemic.mdm.model.lora import LoraSettings, lora_parameter_names

pytestmark = pytest.mark.upstream

TEXTS = ["a person performs a side kick.", "a person waves with the right hand."]
T = 10


@pytest.fixture(scope="module")
def base_ckpt(tmp_path_factory, tiny_base_checkpoint):
    return tiny_base_checkpoint(tmp_path_factory.mktemp("base"), seed=3)


@pytest.fixture(scope="module")
def plain(base_ckpt):
    """A separately loaded plain upstream MDM (upstream's own class), eval mode, frozen flags like peft's base."""
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import load_upstream_checkpoint

    loaded = load_upstream_checkpoint(base_ckpt)
    loaded.model.requires_grad_(False)
    return loaded.model


@pytest.fixture(scope="module")
def plain_text_embed(plain):
    """Upstream's CLIP features of TEXTS, [1, 2, 512] (encoded once: fp16 CLIP is slow on CPU)."""
    with torch.no_grad():
        return plain.encode_text(TEXTS)


@pytest.fixture(scope="module")
def dual(base_ckpt):
    from mdm_kinemic.mdm.checkpoints.kinemic_checkpoint import start_from_base

    torch.manual_seed(0)
    model = start_from_base(base_ckpt, KineMICModelSettings(num_actions=3), LoraSettings()).model
    # trained-looking adapters, so that student and teacher differ
    with torch.no_grad():
        for name, p in model.network.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
    return model


def _inputs(batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn(batch, 263, 1, T, generator=g)
    timesteps = torch.tensor([5, 700, 300, 42][:batch])
    frame_mask = torch.ones(batch, T, dtype=torch.bool)
    return x_t, timesteps, frame_mask


def _bytes(params) -> int:
    return sum(p.numel() * p.element_size() for p in params)


def test_views_implement_the_denoiser_protocol(dual):
    assert isinstance(dual.student, Denoiser) and isinstance(dual.teacher, Denoiser)
    assert dual.student.latent_dim == dual.teacher.latent_dim == 64


def test_teacher_equals_a_separately_loaded_plain_upstream_mdm(dual, plain, plain_text_embed):
    x_t, t, frame_mask = _inputs()
    with torch.no_grad():
        expected = plain(x_t, t, {"text_embed": plain_text_embed, "mask": frame_mask[:, None, None, :]})
    dual.train()  # the teacher must still run in eval mode (no dropout)
    out = dual.teacher.denoise(x_t, t, Condition(text=TEXTS), frame_mask)
    assert dual.mdm.training, "the teacher must restore the module mode"
    assert out.x0.shape == (2, 263, 1, T) and out.features.shape == (2, T, 64)
    assert not out.x0.requires_grad
    torch.testing.assert_close(out.x0, expected, atol=1e-5, rtol=0)
    student = dual.student.denoise(x_t, t, Condition(text=TEXTS), frame_mask)
    dual.eval()
    assert (student.x0 - expected).abs().max() > 1e-3, "adapters must act on the student"


def test_teacher_masks_padded_frames_as_upstream_does(dual, plain, plain_text_embed):
    """With args.json's mask_frames (upstream's fix, set in the 50-step release) padding is masked."""
    x_t, t, _ = _inputs()
    frame_mask = torch.arange(T)[None, :] < torch.tensor([[T], [6]])
    saved = dual.mdm.mask_frames, plain.mask_frames
    dual.mdm.mask_frames = plain.mask_frames = True
    try:
        with torch.no_grad():
            expected = plain(x_t, t, {"text_embed": plain_text_embed, "mask": frame_mask[:, None, None, :]})
        out = dual.teacher.denoise(x_t, t, Condition(text=TEXTS), frame_mask)
        padded_changed = x_t.clone()
        padded_changed[1, :, :, 6:] += 1.0
        out_changed = dual.teacher.denoise(padded_changed, t, Condition(text=TEXTS), frame_mask)
    finally:
        dual.mdm.mask_frames, plain.mask_frames = saved
    torch.testing.assert_close(out.x0, expected, atol=1e-5, rtol=0)
    # valid frames do not see the padding
    torch.testing.assert_close(out_changed.features[1, :6], out.features[1, :6], atol=1e-5, rtol=0)


def test_adapters_disabled_give_the_base_output(dual, plain):
    x_t, t, frame_mask = _inputs()
    y = {"text_embed": dual.text_features(TEXTS), "mask": frame_mask[:, None, None, :]}
    dual.eval()
    with torch.no_grad():
        with dual.network.disable_adapter():
            disabled = dual.network(x_t, t, dict(y))
        expected = plain(x_t, t, dict(y))
    assert torch.equal(disabled, expected)


def test_parameter_bytes_minus_added_modules_equal_one_plain_mdm(dual, plain):
    from mdm_kinemic.core.mic import MICModule

    mic = MICModule(dual.latent_dim)
    added_names = set(dual.added_parameter_names())
    named = dict(dual.named_parameters())
    assert added_names <= set(named)
    total = _bytes(named.values()) + _bytes(mic.parameters())
    added = _bytes(named[n] for n in added_names) + _bytes(mic.parameters())
    assert total - added == _bytes(plain.parameters())
    # one CLIP: the student's and the teacher's text encoder are the same tensors
    assert sum(1 for n in named if ".clip_model." in n) == sum(1 for n, _ in plain.named_parameters() if n.startswith("clip_model."))


def test_only_adapters_and_action_embedding_require_grad(dual):
    trainable = {n for n, p in dual.named_parameters() if p.requires_grad}
    expected = {f"network.{n}" for n in lora_parameter_names(dual.network)} | {
        "network.base_model.model.action_embedding.weight"
    }
    assert trainable == expected
    assert {id(p) for p in dual.trainable_parameters()} == {id(p) for n, p in dual.named_parameters() if n in expected}


def test_student_gradient_reaches_only_adapters_and_action_embedding(dual):
    x_t, t, frame_mask = _inputs()
    dual.zero_grad(set_to_none=True)
    out = dual.student.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([0, 2])), frame_mask)
    (out.x0.square().mean() + out.features.square().mean()).backward()
    with_grad = {n for n, p in dual.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in dual.named_parameters() if p.requires_grad}
    action_grad = dual.mdm.action_embedding.weight.grad
    assert action_grad[1].abs().sum() == 0 and action_grad[0].abs().sum() > 0  # class 1 not in the batch
    dual.zero_grad(set_to_none=True)


def test_features_are_the_last_block_output_without_the_condition_token(dual):
    x_t, t, frame_mask = _inputs()
    captured = {}
    layer = dual.mdm.seqTransEncoder.layers[-1]
    handle = layer.register_forward_hook(lambda m, a, out: captured.setdefault("out", out.detach()))
    try:
        dual.eval()
        with torch.no_grad():
            out = dual.student.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([1, 2])), frame_mask)
    finally:
        handle.remove()
    assert captured["out"].shape == (T + 1, 2, 64)  # condition token first
    assert torch.equal(out.features, captured["out"][1:].permute(1, 0, 2))


def test_text_is_kept_when_an_action_is_given(dual):
    """Upstream's trap: cond_mode 'text' + 'action' ignores the text. KineMIC must not."""
    x_t, t, frame_mask = _inputs()
    action = torch.tensor([1, 1])
    dual.eval()
    with torch.no_grad():
        a = dual.student.denoise(x_t, t, Condition(text=TEXTS, action=action), frame_mask).x0
        b = dual.student.denoise(x_t, t, Condition(text=TEXTS[::-1], action=action), frame_mask).x0
        c = dual.student.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([0, 1])), frame_mask).x0
    assert (a[0] - b[0]).abs().max() > 1e-4  # text matters with the action present
    assert (a[0] - c[0]).abs().max() > 1e-4  # action matters with the text present
    assert torch.equal(a[1], c[1])  # samples are independent


def test_drop_masks_equal_absent_conditions_per_sample(dual):
    x_t, t, frame_mask = _inputs()
    action = torch.tensor([2, 0])
    keep = torch.tensor([False, False])
    dual.eval()
    with torch.no_grad():
        run = lambda cond: dual.student.denoise(x_t, t, cond, frame_mask).x0
        text_dropped = run(Condition(text=TEXTS, action=action, drop_text=torch.tensor([True, False]), drop_action=keep))
        no_text = run(Condition(text=None, action=action))
        full = run(Condition(text=TEXTS, action=action))
        action_dropped = run(Condition(text=TEXTS, action=action, drop_text=keep, drop_action=torch.tensor([False, True])))
        no_action = run(Condition(text=TEXTS, action=None))
        both = run(Condition(text=TEXTS, action=action, drop_text=~keep, drop_action=~keep))
        uncond = dual.mdm(x_t, t, {"text_embed": dual.text_features(TEXTS), "action": action, "uncond": True})
    torch.testing.assert_close(text_dropped[0], no_text[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(text_dropped[1], full[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(action_dropped[1], no_action[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(action_dropped[0], full[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(both, uncond, atol=1e-6, rtol=0)
    assert (text_dropped[0] - full[0]).abs().max() > 1e-4


def test_denoise_never_draws_condition_dropout_but_forward_keeps_upstreams_rule(dual):
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS, action=torch.tensor([0, 1]))
    mdm = dual.mdm
    dual.eval()
    with torch.no_grad():
        reference = dual.student.denoise(x_t, t, cond, frame_mask).x0
        uncond = mdm(x_t, t, {"text_embed": dual.text_features(TEXTS), "action": cond.action, "uncond": True})
    # switch every dropout off (attention's is a float attribute, the others are modules)
    dropouts = [(m, "p") for m in dual.modules() if isinstance(m, torch.nn.Dropout)]
    dropouts += [(m, "dropout") for m in dual.modules() if type(m) is torch.nn.MultiheadAttention]
    saved_p, saved_prob = [getattr(m, a) for m, a in dropouts], mdm.cond_mask_prob
    try:
        dual.train()
        for m, a in dropouts:
            setattr(m, a, 0.0)
        mdm.cond_mask_prob = 1.0  # upstream's rule would now drop every condition in train mode
        with torch.no_grad():
            drawn_by_caller = dual.student.denoise(x_t, t, cond, frame_mask).x0
            upstream_rule = mdm(x_t, t, {"text_embed": dual.text_features(TEXTS), "action": cond.action})
    finally:
        for (m, a), p in zip(dropouts, saved_p):
            setattr(m, a, p)
        mdm.cond_mask_prob = saved_prob
        dual.eval()
    torch.testing.assert_close(drawn_by_caller, reference, atol=1e-6, rtol=0)
    torch.testing.assert_close(upstream_rule, uncond, atol=1e-6, rtol=0)


def test_teacher_mode_train_is_stochastic_and_eval_is_not(dual):
    x_t, t, frame_mask = _inputs()
    cond = Condition(text=TEXTS)
    a = dual.teacher.denoise(x_t, t, cond, frame_mask).x0
    b = dual.teacher.denoise(x_t, t, cond, frame_mask).x0
    assert torch.equal(a, b)
    authors = DualStreamMDM(dual.network, dataclasses.replace(dual.settings, teacher_mode="train"), dual.lora)
    authors.text_cache = dual.text_cache
    c = authors.teacher.denoise(x_t, t, cond, frame_mask).x0
    d = authors.teacher.denoise(x_t, t, cond, frame_mask).x0
    assert not torch.equal(c, d)  # dropout active, as in the authors' code
    assert not dual.mdm.training


def test_bad_conditions_are_refused(dual):
    x_t, t, frame_mask = _inputs()
    with pytest.raises(ValueError, match="text-only"):
        dual.teacher.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([0, 1])), frame_mask)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        dual.student.denoise(x_t, t, Condition(text=TEXTS, action=torch.tensor([0, 3])), frame_mask)
    with pytest.raises(ValueError, match="2 texts for a batch of 3"):
        dual.student.denoise(*_inputs(3)[:2], Condition(text=TEXTS), torch.ones(3, T, dtype=torch.bool))


def test_text_features_are_cached_and_equal_upstreams(dual, plain_text_embed, monkeypatch):
    torch.testing.assert_close(dual.text_features(TEXTS), plain_text_embed, atol=1e-6, rtol=0)
    calls = []
    original = dual.mdm.encode_text

    def spy(texts):
        calls.append(list(texts))
        return original(texts)

    monkeypatch.setattr(dual.mdm, "encode_text", spy)
    new = "a person jumps."
    first = dual.text_features([new, TEXTS[0], new])
    second = dual.text_features([TEXTS[1], new])
    assert calls == [[new]]  # TEXTS were encoded before; each new text once
    assert first.shape == (1, 3, 512)
    assert torch.equal(first[0, 0], first[0, 2]) and torch.equal(second[0, 1], first[0, 0])
    assert torch.equal(first[0, 1], dual.text_features(TEXTS)[0, 0])


def test_text_cache_keeps_the_most_recent_texts():
    from mdm_kinemic.mdm.model.kinemic_mdm import TextEmbeddingCache

    class Encoder:  # CLIP's role only: text -> [1, N, 1] of its length
        def encode_text(self, texts):
            return torch.tensor([[float(len(t))] for t in texts])[None]

    cache = TextEmbeddingCache(capacity=2)
    cache.encode(Encoder(), ["a", "bb"])
    cache.encode(Encoder(), ["a", "ccc"])  # "bb" is the least recently used
    assert len(cache) == 2 and set(cache._store) == {"a", "ccc"}
    assert cache.encode(Encoder(), ["ccc", "a"]).flatten().tolist() == [3.0, 1.0]


def test_train_and_to_return_the_model(dual):
    mdm = dual.mdm
    assert mdm.train() is mdm and mdm.eval() is mdm and mdm.to("cpu") is mdm
    assert dual.eval() is dual


@pytest.mark.parametrize(("init", "std"), [("normal", ACTION_EMBEDDING_STD), ("randn", 1.0)])
def test_action_embedding_init(base_ckpt, init, std):
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import read_checkpoint_args
    from mdm_kinemic.mdm.model.kinemic_mdm import build_kinemic_mdm

    args = read_checkpoint_args(base_ckpt)
    torch.manual_seed(0)
    model = build_kinemic_mdm(args, KineMICModelSettings(num_actions=100, action_init=init))
    weight = model.action_embedding.weight
    assert weight.shape == (100, 64)
    assert abs(weight.std().item() / std - 1) < 0.05 and abs(weight.mean().item()) < 0.05 * std


def test_unsupported_upstream_configurations_are_refused(base_ckpt):
    from mdm_kinemic.mdm.checkpoints.upstream_checkpoint import read_checkpoint_args
    from mdm_kinemic.mdm.model.kinemic_mdm import build_kinemic_mdm

    args = read_checkpoint_args(base_ckpt)
    args.arch = "gru"
    with pytest.raises(ValueError, match="arch='gru'"):
        build_kinemic_mdm(args, KineMICModelSettings(num_actions=2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_actions": 0}, "num_actions"),
        ({"num_actions": 2, "class_names": ("a",)}, "class_names"),
        ({"num_actions": 2, "action_init": "zeros"}, "action_init"),
        ({"num_actions": 2, "teacher_mode": "frozen"}, "teacher_mode"),
    ],
)
def test_model_settings_validation(kwargs, field):
    with pytest.raises(ValueError, match=f"KineMICModelSettings.{field}"):
        KineMICModelSettings(**kwargs)


def test_model_settings_json_round_trip():
    s = KineMICModelSettings(num_actions=2, class_names=["kick", "wave"], action_init="randn", teacher_mode="train")
    assert KineMICModelSettings.from_json({**s.to_json(), "lora": {}}) == s
