"""The KineMIC objective over two tiny Denoisers: wiring of every term, gradients, presets, dropout."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mdm_kinemic.core.contrastive import ContrastiveSettings
from mdm_kinemic.core.denoiser import frame_mask_from_lengths
from mdm_kinemic.core.losses import reconstruction_loss, window_distillation_loss
from mdm_kinemic.core.mic import MICModule
from mdm_kinemic.core.objective import (
    TABLE2_PRESETS,
    KineMICBatch,
    KineMICObjective,
    LossWeights,
    ObjectiveSettings,
)
from mdm_kinemic.core.window import gather_window

N_FEATURES, D, N_CLASSES = 6, 16, 3
CLASS_NAMES = ["run on the spot", "side kick", "stretch oneself"]


def make_batch(batch=6, total=20, prior_total=30, with_prior=True, seed=0, prior_lengths=None):
    g = torch.Generator().manual_seed(seed)
    action = torch.arange(batch) % N_CLASSES
    kwargs = {}
    if with_prior:
        kwargs = dict(
            x0_prior=torch.randn(batch, N_FEATURES, 1, prior_total, generator=g),
            prior_lengths=prior_lengths
            if prior_lengths is not None
            else torch.randint(total, prior_total + 1, (batch,), generator=g),
            prior_text=[f"a person does something {i}" for i in range(batch)],
        )
    return KineMICBatch(
        x0_target=torch.randn(batch, N_FEATURES, 1, total, generator=g),
        target_lengths=torch.randint(5, total + 1, (batch,), generator=g),
        target_action=action,
        target_text=[f"a person performs a {CLASS_NAMES[a]}." for a in action.tolist()],
        **kwargs,
    )


@pytest.fixture
def parts(make_tiny_denoiser, q_sample):
    student = make_tiny_denoiser(seed=1, n_features=N_FEATURES, latent_dim=D, n_actions=N_CLASSES)
    teacher = make_tiny_denoiser(seed=2, n_features=N_FEATURES, latent_dim=D)
    for p in teacher.parameters():
        p.requires_grad_(False)
    torch.manual_seed(3)
    mic = MICModule(latent_dim=D, hidden_dim=8, output_dim=8)
    return student, teacher, mic, q_sample


def build(parts, **settings):
    student, teacher, mic, q_sample = parts
    preset = settings.pop("preset", "full")
    return KineMICObjective(student, teacher, mic, q_sample, ObjectiveSettings.preset(preset, **settings))


def run(objective, batch, seed=0):
    torch.manual_seed(seed)
    timesteps = torch.randint(0, 1000, (batch.x0_target.shape[0],))
    return objective(batch, timesteps)


@pytest.mark.parametrize("preset", list(TABLE2_PRESETS))
def test_presets_compute_their_table2_terms(parts, preset):
    objective = build(parts, preset=preset)
    student, teacher = parts[0], parts[1]
    out = run(objective, make_batch())
    switches = TABLE2_PRESETS[preset]
    assert (out.contrastive is not None) == switches["contrastive"]
    assert (out.rec_window is not None) == switches["window_rec"]
    assert (out.distillation is not None) == switches["distillation"]
    uses_window = switches["window_rec"] or switches["distillation"]
    assert (out.window is not None) == uses_window
    assert len(student.calls) == (2 if uses_window else 1)
    assert len(teacher.calls) == (0 if preset == "mdm_lora" else 1)
    assert objective.settings.preset_name == preset


def test_total_is_the_weighted_sum_of_the_terms(parts):
    weights = LossWeights(lambda_rec=0.5, lambda_window_rec=2.0, lambda_con=3.0, lambda_dist=0.25)
    out = run(build(parts, weights=weights), make_batch())
    expected = (
        0.5 * out.rec_target.mean()
        + 3.0 * out.contrastive.loss
        + 2.0 * (out.dww * out.rec_window).mean()
        + 0.25 * (out.dww * out.distillation).mean()
    )
    torch.testing.assert_close(out.loss, expected)
    assert torch.all((out.dww >= 0) & (out.dww <= 1))


def test_without_dww_the_window_terms_are_unweighted(parts):
    out = run(build(parts, preset="base_dist"), make_batch())
    assert out.dww is not None  # still logged
    expected = out.rec_target.mean() + out.contrastive.loss + out.rec_window.mean() + out.distillation.mean()
    torch.testing.assert_close(out.loss, expected)


def test_only_l_con_trains_the_mic_module_and_dww_sends_it_nothing(parts):
    objective = build(parts)
    out = run(objective, make_batch())
    mic_params = list(objective.mic.parameters())
    from_total = torch.autograd.grad(out.loss, mic_params, retain_graph=True, allow_unused=True)
    from_con = torch.autograd.grad(out.contrastive.loss, mic_params, retain_graph=True, allow_unused=True)
    for total, con in zip(from_total, from_con):
        torch.testing.assert_close(total, con)
    assert any(g is not None and g.abs().sum() > 0 for g in from_con)
    window_terms = (out.dww * (out.rec_window + out.distillation)).mean()
    assert all(g is None for g in torch.autograd.grad(window_terms, mic_params, allow_unused=True))
    assert not out.dww.requires_grad


def test_l_con_reaches_the_student_but_never_the_teacher(parts):
    objective = build(parts)
    student, teacher = parts[0], parts[1]
    out = run(objective, make_batch())
    student_grads = torch.autograd.grad(out.contrastive.loss, list(student.encoder.parameters()), retain_graph=True)
    assert any(g.abs().sum() > 0 for g in student_grads)
    out.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert teacher.calls[0]["grad_enabled"] is False
    assert all(call["grad_enabled"] for call in student.calls)


def test_window_is_cut_from_the_priors_own_x_t_with_the_same_t(parts):
    objective = build(parts)
    student, teacher = parts[0], parts[1]
    batch = make_batch()
    out = run(objective, batch)
    target_call, window_call = student.calls
    teacher_call = teacher.calls[0]
    assert torch.equal(target_call["timesteps"], teacher_call["timesteps"])
    assert torch.equal(window_call["timesteps"], out.timesteps)
    total = batch.x0_target.shape[-1]
    torch.testing.assert_close(window_call["x_t"], gather_window(teacher_call["x_t"], out.window, total))
    assert torch.equal(window_call["frame_mask"], out.window.frame_mask(total))
    assert torch.equal(out.window.length, torch.minimum(batch.target_lengths, batch.prior_lengths))
    prior_mask = frame_mask_from_lengths(batch.prior_lengths, batch.x0_prior.shape[-1])
    torch.testing.assert_close(out.prior_attention.sum(dim=1), torch.ones(len(batch.prior_text)))
    assert torch.all(out.prior_attention[~prior_mask] == 0)


def test_window_is_conditioned_on_the_paired_target(parts):
    objective = build(parts, text_dropout=0.5, action_dropout=0.5)
    student, teacher = parts[0], parts[1]
    batch = make_batch(batch=12)
    out = run(objective, batch)
    target_cond, window_cond = student.calls[0]["cond"], student.calls[1]["cond"]
    assert list(window_cond.text) == list(batch.target_text)
    assert torch.equal(window_cond.action, batch.target_action)
    assert torch.equal(window_cond.drop_text, out.window_drop_text)
    assert torch.equal(target_cond.drop_text, out.drop_text)
    assert list(teacher.calls[0]["cond"].text) == list(batch.prior_text)
    assert teacher.calls[0]["cond"].action is None


def test_window_terms_are_eq4_and_eq5_on_the_window(parts):
    """Recompute Eq. 4 and Eq. 5 from the recorded calls: the window's x0 target is x0^P cut at the
    window, and the teacher features are cut at the same prior frames."""
    objective = build(parts)
    student, teacher = parts[0], parts[1]
    batch = make_batch()
    out = run(objective, batch)
    total = batch.x0_target.shape[-1]
    window_call, teacher_call = student.calls[1], teacher.calls[0]
    with torch.no_grad():
        window_out = student.denoise(
            window_call["x_t"], window_call["timesteps"], window_call["cond"], window_call["frame_mask"]
        )
        teacher_out = teacher.denoise(
            teacher_call["x_t"], teacher_call["timesteps"], teacher_call["cond"], teacher_call["frame_mask"]
        )
    mask = out.window.frame_mask(total)
    expected_rec = reconstruction_loss(window_out.x0, gather_window(batch.x0_prior, out.window, total), mask)
    expected_dist = window_distillation_loss(
        window_out.features, gather_window(teacher_out.features, out.window, total, time_dim=1), mask
    )
    torch.testing.assert_close(out.rec_window.detach(), expected_rec)
    torch.testing.assert_close(out.distillation.detach(), expected_dist)


def test_prior_shorter_than_its_target_is_used_whole(parts):
    batch = make_batch(batch=3, total=20, prior_total=30, prior_lengths=torch.tensor([4, 25, 30]))
    batch.target_lengths = torch.tensor([20, 20, 10])
    out = run(build(parts), batch)
    assert out.window.start[0].item() == 0 and out.window.length.tolist() == [4, 20, 10]
    assert torch.isfinite(out.loss)


def test_condition_dropout_shares(parts):
    objective = build(parts, preset="mdm_lora", text_dropout=0.0, action_dropout=0.0)
    out = run(objective, make_batch(with_prior=False))
    assert not out.drop_text.any() and not out.drop_action.any() and out.unconditional_share == 0.0
    objective = build(parts, text_dropout=0.5, action_dropout=0.5)
    out = run(objective, make_batch(batch=400, total=8, prior_total=8))
    both = torch.cat([out.drop_text & out.drop_action, out.window_drop_text & out.window_drop_action])
    assert out.unconditional_share == pytest.approx(both.float().mean().item())
    assert 0.18 < out.unconditional_share < 0.32  # 0.5 * 0.5 = 0.25 expected
    assert not torch.equal(out.drop_text, out.window_drop_text)  # redrawn for the window pass


def test_no_condition_dropout_in_eval_mode(parts):
    objective = build(parts, text_dropout=0.9, action_dropout=0.9).eval()
    out = run(objective, make_batch(batch=50))
    assert not (out.drop_text.any() or out.drop_action.any() or out.window_drop_text.any())
    assert out.unconditional_share == 0.0


def test_mdm_lora_needs_no_prior_but_the_others_do(parts):
    out = run(build(parts, preset="mdm_lora"), make_batch(with_prior=False))
    torch.testing.assert_close(out.loss, out.rec_target.mean())
    with pytest.raises(ValueError, match="needs priors"):
        run(build(parts, preset="base"), make_batch(with_prior=False))


def test_objective_parameters_are_mic_and_temperature_only(parts):
    objective = build(parts, contrastive_settings=ContrastiveSettings(learnable_temperature=True))
    names = {n for n, _ in objective.named_parameters()}
    assert names == {f"mic.{n}" for n, _ in parts[2].named_parameters()} | {"contrastive.log_logit_scale"}


def test_scalars_are_floats(parts):
    scalars = run(build(parts), make_batch()).scalars()
    assert {
        "loss",
        "rec_target",
        "contrastive",
        "rec_window",
        "distillation",
        "dww_mean",
        "unconditional_share",
    } <= set(scalars)
    assert all(isinstance(v, float) for v in scalars.values())


def test_latent_width_mismatch_raises(parts, make_tiny_denoiser):
    student, teacher, _, q_sample = parts
    with pytest.raises(ValueError, match="latent widths"):
        KineMICObjective(student, teacher, MICModule(latent_dim=D + 1), q_sample)


def test_timesteps_must_be_one_per_pair(parts):
    with pytest.raises(ValueError, match="timesteps"):
        build(parts)(make_batch(), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(text_dropout=1.0), "text_dropout"),
        (dict(action_dropout=-0.1), "action_dropout"),
        (dict(distillation_normalisation="sum"), "distillation_normalisation"),
    ],
)
def test_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ObjectiveSettings(**kwargs)


def test_loss_weights_validation():
    with pytest.raises(ValueError, match="lambda_con"):
        LossWeights(lambda_con=-1.0)
    with pytest.raises(ValueError, match="lambda_dist"):
        LossWeights(lambda_dist=float("nan"))


def test_unknown_preset_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="mdm_lora, base, base_dist, base_dww, full"):
        ObjectiveSettings.preset("table3")


def test_ignored_options_warn():
    with pytest.warns(UserWarning, match="dww is ignored"):
        ObjectiveSettings(window_rec=False, distillation=False, dww=True)
    with pytest.warns(UserWarning, match="lambda_dist is ignored"):
        ObjectiveSettings.preset("base", weights=LossWeights(lambda_dist=0.5))
    with pytest.warns(UserWarning, match="untrained MIC"):
        ObjectiveSettings(contrastive=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in TABLE2_PRESETS:
            ObjectiveSettings.preset(name)


def test_batch_validation():
    batch = make_batch()
    with pytest.raises(ValueError, match="target_text"):
        KineMICBatch(batch.x0_target, batch.target_lengths, batch.target_action, batch.target_text[:-1])
    with pytest.raises(ValueError, match="prior_lengths"):
        KineMICBatch(
            batch.x0_target,
            batch.target_lengths,
            batch.target_action,
            batch.target_text,
            x0_prior=batch.x0_prior,
            prior_lengths=batch.prior_lengths + 100,
            prior_text=batch.prior_text,
        )
    with pytest.raises(ValueError, match="needs prior_lengths and prior_text"):
        KineMICBatch(
            batch.x0_target, batch.target_lengths, batch.target_action, batch.target_text, x0_prior=batch.x0_prior
        )


def test_target_mask_covers_only_valid_frames(parts):
    objective = build(parts, preset="mdm_lora")
    batch = make_batch(with_prior=False)
    run(objective, batch)
    call = parts[0].calls[0]
    assert torch.equal(call["frame_mask"], frame_mask_from_lengths(batch.target_lengths, batch.x0_target.shape[-1]))


def loop_snn(z_anchor, y_anchor, z_candidate, y_candidate, tau=0.07):
    """Eq. 1 one anchor at a time; positives are the candidates carrying the anchor's label."""
    terms = []
    for i in range(len(z_anchor)):
        sims = [torch.cosine_similarity(z_anchor[i], z, dim=0).item() / tau for z in z_candidate]
        positive = [math.exp(s) for s, y in zip(sims, y_candidate.tolist()) if y == y_anchor[i].item()]
        if positive:
            terms.append(-math.log(sum(positive) / sum(math.exp(s) for s in sims)))
    return sum(terms) / len(terms)


def recompute(model, call):
    """The recorded denoiser call run again, without gradient: (x0, features)."""
    with torch.no_grad():
        return model.denoise(call["x_t"], call["timesteps"], call["cond"], call["frame_mask"])


def test_l_con_positives_follow_the_prior_pseudo_classes(parts):
    # Every prior carries a class other than its paired target's: Eq. 1 must use the priors' own labels.
    objective = build(parts, preset="base")
    student, teacher = parts[0], parts[1]
    batch = make_batch()
    batch.prior_action = (batch.target_action + 1) % N_CLASSES
    out = run(objective, batch)
    target_call, teacher_call = student.calls[0], teacher.calls[0]
    with torch.no_grad():
        z_target = objective.mic(recompute(student, target_call).features, target_call["frame_mask"]).z
        z_prior = objective.mic(recompute(teacher, teacher_call).features, teacher_call["frame_mask"]).z
    expected = loop_snn(z_target, batch.target_action, z_prior, batch.prior_action)
    assert out.contrastive.loss.item() == pytest.approx(expected, rel=1e-4)
    assert expected != pytest.approx(loop_snn(z_target, batch.target_action, z_prior, batch.target_action), rel=1e-3)


@pytest.mark.parametrize("text_dropout, action_dropout", [(0.0, 0.5), (0.5, 0.0)])
def test_text_and_action_dropout_use_their_own_probabilities(parts, text_dropout, action_dropout):
    objective = build(parts, preset="mdm_lora", text_dropout=text_dropout, action_dropout=action_dropout)
    out = run(objective, make_batch(batch=1000, total=6, with_prior=False))
    # 1000 draws: the share's standard deviation is 0.016 at p = 0.5, so +-0.1 is over 6 sigma.
    assert out.drop_text.float().mean().item() == pytest.approx(text_dropout, abs=0.1)
    assert out.drop_action.float().mean().item() == pytest.approx(action_dropout, abs=0.1)
    assert not (out.drop_text if text_dropout == 0 else out.drop_action).any()


def test_dww_compares_the_target_with_its_window_not_the_whole_prior(parts):
    # Priors of 60 frames for targets of at most 8: z^P (whole prior, teacher) and z^{P*} (window,
    # student) differ, and Eq. 6 is defined on z^{P*}.
    objective = build(parts)
    student = parts[0]
    batch = make_batch(batch=4, total=8, prior_total=60, prior_lengths=torch.full((4,), 60))
    out = run(objective, batch)
    target_call, window_call = student.calls[0], student.calls[1]
    with torch.no_grad():
        z_target = objective.mic(recompute(student, target_call).features, target_call["frame_mask"]).z
        z_window = objective.mic(recompute(student, window_call).features, window_call["frame_mask"]).z
    expected = (torch.cosine_similarity(z_target, z_window, dim=-1) + 1) / 2
    torch.testing.assert_close(out.dww, expected)
