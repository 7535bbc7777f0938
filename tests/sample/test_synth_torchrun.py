"""mdm_kinemic.synth under torchrun: two gloo ranks write the clips of one process, bit for bit on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.upstream, pytest.mark.slow]  # two torchrun runs and one process: ~50 s

FILES = ("labels.txt", "classes.txt", "train.txt", "all.txt", "manifest.json", "Mean.npy", "Std.npy")
FOLDERS = ("new_joint_vecs", "new_joints", "texts")


def _synth_args(student, targets, out: Path) -> list[str]:
    # 9 motions of 5 lengths in batches of 2: 6 batches of different costs for the two ranks
    return ["-m", "mdm_kinemic.synth", "--model_path", str(student["kinemic"]), "--per_class", "3", "--out", str(out),
            "--target_data", str(targets), "--timestep_respacing", "4", "--batch_size", "2", "--seed", "1",
            "--no-progress"]


def _contents(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in FILES}
    for folder in FOLDERS:
        files.update({f"{folder}/{p.name}": p.read_bytes() for p in sorted((out / folder).iterdir())})
    return files


@pytest.fixture(scope="module")
def one_process(run_cli, tiny_student, tiny_targets, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("one") / "out"
    done = run_cli(_synth_args(tiny_student, tiny_targets, out), cwd=out.parent, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return _contents(out)


def test_two_ranks_write_the_clips_and_lists_of_one_process(one_process, torchrun, tiny_student, tiny_targets, tmp_path):
    out = tmp_path / "out"
    done = torchrun(_synth_args(tiny_student, tiny_targets, out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len([k for k in one_process if k.startswith("new_joint_vecs/")]) == 9
    ranks = _contents(out)
    assert sorted(ranks) == sorted(one_process)
    assert [name for name in ranks if ranks[name] != one_process[name]] == []
    # a rank killed mid-run leaves unfinished motions of its batches: a rerun redraws them identically
    vecs = out / "new_joint_vecs"
    kept = out / "new_joints" / "synth_c000_00001.npy"
    kept_mtime = kept.stat().st_mtime_ns
    for motion in ("synth_c001_00002", "synth_c002_00000"):
        (vecs / f"{motion}.npy").unlink()
    (out / "texts" / "synth_c000_00002.txt").unlink()
    (out / "labels.txt").unlink()  # rank 0 writes it after every rank's clips
    done = torchrun(_synth_args(tiny_student, tiny_targets, out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 of 9 motions to draw (6 kept)" in done.stderr
    resumed = _contents(out)
    assert [name for name in resumed if resumed[name] != one_process[name]] == []
    assert kept.stat().st_mtime_ns == kept_mtime
