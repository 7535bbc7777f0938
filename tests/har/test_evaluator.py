"""The fixed evaluator: trained once, saved as safetensors + JSON, reloaded identically, reused by evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdm_kinemic.har.evaluate import main as evaluate_main
from mdm_kinemic.har.evaluate import run_har_evaluation
from mdm_kinemic.har.evaluator import load_recogniser, main, train_evaluator
from mdm_kinemic.har.protocol import HarProtocol

PROTOCOL = HarProtocol(seeds=1, epochs=2, batch_size=4, clip_len=10, base_channels=8)


def test_saved_evaluator_reloads_to_the_same_predictions(make_clips, tmp_path):
    train, test = make_clips(3, 12, seed=0, source="real"), make_clips(2, 12, seed=1, source="test")
    info = train_evaluator(train, test, PROTOCOL, tmp_path / "ev" / "stgcn", device="cpu")
    assert (tmp_path / "ev" / "stgcn.safetensors").is_file()
    settings = json.loads((tmp_path / "ev" / "stgcn.json").read_text())
    assert settings["class_names"] == list(train.class_names) and settings["num_joints"] == 22
    assert settings["protocol"] == PROTOCOL.to_dict() and settings["iterations"] == 6
    assert 0 <= info["test_balanced_accuracy"] <= 100 and isinstance(info["converged"], bool)
    loaded = load_recogniser(tmp_path / "ev" / "stgcn.safetensors")
    probs, feats = loaded.embed(test)
    # retrain with the same seed: the saved weights are that run's
    from mdm_kinemic.har.train import train_stgcn

    again = train_stgcn(train, PROTOCOL, 0)
    ref_probs, ref_feats = again.embed(test)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-6)
    np.testing.assert_allclose(feats, ref_feats, atol=1e-5)
    labels = test.labels
    predictions = probs.argmax(axis=1)
    recalls = [np.mean(predictions[labels == c] == c) * 100 for c in range(3)]
    assert info["test_balanced_accuracy"] == pytest.approx(np.mean(recalls))


def test_evaluate_reuses_the_fixed_evaluator_for_generative_metrics(make_clips, write_folder, tmp_path):
    real, synth, test = make_clips(2, 12, seed=0, source="real"), make_clips(3, 12, seed=1, source="synth"), make_clips(2, 12, seed=2, source="test")
    train_evaluator(make_clips(3, 12, seed=3, source="ev"), test, PROTOCOL, tmp_path / "ev", device="cpu")
    evaluator = load_recogniser(tmp_path / "ev")
    results = run_har_evaluation(real, test, PROTOCOL, train_synthetic=synth, device="cpu", recogniser=evaluator,
                                 recogniser_source="ev")
    gen = results["generative_metrics"]
    assert gen["recogniser"].startswith("ST-GCN trained on fixed evaluator ev")
    probs = evaluator.embed(synth)[0]
    expected = 100 * np.mean(probs.argmax(axis=1) == synth.labels)
    assert gen["sets"]["train_synthetic"]["action2motion"]["accuracy"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="either a trained recogniser"):
        run_har_evaluation(real, test, PROTOCOL, recogniser=evaluator, recogniser_train=real)


def test_cli_errors_name_the_fix(make_clips, write_folder, tmp_path, capsys):
    real = write_folder(tmp_path / "real", make_clips(1, 12, seed=0, source="real"))
    with pytest.raises(SystemExit) as exit_info:
        evaluate_main(["--train_real", str(real), "--test", str(real), "--recogniser_ckpt", str(tmp_path / "none"), "--quick"])
    assert exit_info.value.code == 2
    assert "python -m mdm_kinemic.har.evaluator" in capsys.readouterr().err
    assert main(["--train", str(tmp_path / "absent"), "--test", str(real), "--out", str(tmp_path / "ev")]) == 2
    assert "error:" in capsys.readouterr().err
