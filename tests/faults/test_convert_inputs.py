"""convert: --overwrite leaves no earlier clip behind, unreadable BVH files say what is wrong, and
skipped files make the command fail unless --allow_partial; user errors exit 2 without a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.convert import main
from mdm_kinemic.data.humanml3d import HumanML3D
from mdm_kinemic.data.skeleton import rest_pose

BVH_ZERO_FRAMES = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  End Site
  {
    OFFSET 0 10 0
  }
}
MOTION
Frames: 0
Frame Time: 0.0333333
"""


def _clips(folder: Path, names: list[str]) -> Path:
    clip = np.repeat(rest_pose()[None], 45, axis=0) + np.linspace(0, 1, 45)[:, None, None] * [1.0, 0, 0]
    (folder / "walk").mkdir(parents=True, exist_ok=True)
    for name in names:
        np.save(folder / "walk" / f"{name}.npy", clip)
    return folder


def _convert(inputs: Path, out: Path, *flags: str, fmt: str = "joints") -> dict:
    return main(["--format", fmt, str(inputs), "--out", str(out), "--no-progress", *flags])


def _exit_status(capsys, *args, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        _convert(*args, **kwargs)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def test_overwrite_removes_the_earlier_clips(tmp_path):
    out = tmp_path / "out"
    _convert(_clips(tmp_path / "first", ["a", "b"]), out)
    _convert(_clips(tmp_path / "second", ["c"]), out, "--overwrite")
    data = HumanML3D(out)
    assert data.ids == ["c"] and data.split("all") == ["c"]
    for folder in ("new_joint_vecs", "new_joints", "texts"):
        assert sorted(p.stem for p in (out / folder).iterdir()) == ["c"]
    np.testing.assert_allclose(data.mean, np.asarray(data.motion("c")).mean(0), atol=1e-5)


def test_overwrite_refuses_a_folder_with_entries_convert_did_not_write(tmp_path, capsys):
    out = tmp_path / "out"
    _convert(_clips(tmp_path / "first", ["a", "b"]), out)
    (out / "splits" / "fewshot").mkdir(parents=True)
    status, _, err = _exit_status(capsys, _clips(tmp_path / "second", ["c"]), out, "--overwrite")
    assert status == 2 and "Traceback" not in err
    assert "holds entries convert did not write (splits/)" in err and "Move them away" in err
    assert HumanML3D(out).ids == ["a", "b"]  # nothing removed


def test_overwrite_with_a_missing_input_keeps_the_earlier_dataset(tmp_path, capsys):
    out = tmp_path / "out"
    _convert(_clips(tmp_path / "first", ["a"]), out)
    status, _, err = _exit_status(capsys, tmp_path / "typo", out, "--overwrite")
    assert status == 2 and "does not exist" in err and "Traceback" not in err
    assert HumanML3D(out).ids == ["a"]


def test_existing_dataset_without_overwrite_is_one_message(tmp_path, capsys):
    out = tmp_path / "out"
    _convert(_clips(tmp_path / "first", ["a"]), out)
    status, _, err = _exit_status(capsys, tmp_path / "first", out)
    assert status == 2 and err.strip().endswith("pass --overwrite to replace it, or choose another --out")


def test_bvh_with_zero_frames_says_so(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty_take.bvh").write_text(BVH_ZERO_FRAMES)
    status, out, _ = _exit_status(capsys, tmp_path / "in", tmp_path / "out", "--allow_partial", fmt="bvh")
    assert status == 2  # nothing converted: a failure even with --allow_partial
    assert "empty_take.bvh: BvhError: " in out and "'Frames: 0': the file holds a skeleton but no motion" in out


def test_non_bvh_file_named_bvh_is_not_called_truncated(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "clip.bvh").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (tmp_path / "in" / "blank.bvh").write_text("\n")
    status, out, _ = _exit_status(capsys, tmp_path / "in", tmp_path / "out", fmt="bvh")
    assert status == 2
    assert "clip.bvh: BvhError: " in out and "not a BVH file: it does not start with HIERARCHY" in out
    assert "blank.bvh: BvhError: " in out and "not a BVH file: it is empty" in out
    assert "truncated" not in out


def test_skipped_file_fails_the_command_unless_allow_partial(tmp_path, capsys):
    inputs = _clips(tmp_path / "in", ["a"])
    np.save(inputs / "walk" / "flat.npy", np.zeros((45, 5, 3)))  # not (T, 22, 3): skipped
    status, out, err = _exit_status(capsys, inputs, tmp_path / "out")
    assert status == 2 and "flat.npy: MotionError" in out
    assert "1 of 2 files were skipped" in err and "holds the other 1" in err and "--allow_partial" in err
    assert HumanML3D(tmp_path / "out").ids == ["a"]  # the good clip is written either way
    report = _convert(inputs, tmp_path / "out2", "--allow_partial")
    assert report["converted"] == 1 and len(report["skipped"]) == 1
