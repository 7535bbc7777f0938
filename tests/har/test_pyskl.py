"""PYSKL annotations: export of HumanML3D-layout sets read back with plain pickle, reading PYSKL files."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mdm_kinemic.data.hml_vec import joints_to_hml_vec, recover_from_ric
from mdm_kinemic.data.labels import write_labels
from mdm_kinemic.har.export_pyskl import main as export_main
from mdm_kinemic.har.pyskl import read_pyskl, write_pyskl
from mdm_kinemic.har.skeleton import SMPL22_PARENTS
from mdm_kinemic.har.sources import load_set, parse_set_spec
from mdm_kinemic.safe_pickle import UnsafePickleError


def _synth_folder(root: Path, clips) -> Path:
    """A set as synth writes it: new_joint_vecs, new_joints = recover_from_ric of them, labels."""
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "new_joints").mkdir()
    for clip_id, joints in zip(clips.ids, clips.joints):
        features = joints_to_hml_vec(joints)
        np.save(root / "new_joint_vecs" / f"{clip_id}.npy", features)
        np.save(root / "new_joints" / f"{clip_id}.npy", np.asarray(recover_from_ric(features), np.float32))
    write_labels(root, clips.ids, clips.labels.tolist(), clips.class_names)
    return root


def test_export_writes_pyskl_annotations_readable_with_plain_pickle(make_clips, write_folder, tmp_path):
    real_clips = make_clips(1, 12, seed=0, source="real")
    real = write_folder(tmp_path / "real", real_clips)
    # the real folder numbers its classes differently: names, not numbers, must decide the labels
    write_labels(real, real_clips.ids, [2, 0, 1], ["bounce", "sway", "stand"])
    synth = _synth_folder(tmp_path / "synth", make_clips(1, 14, seed=1, source="synth"))
    test = write_folder(tmp_path / "test", make_clips(1, 11, seed=2, source="test"))
    out = tmp_path / "pyskl" / "set.pkl"
    assert export_main(["--train", str(real), str(synth), "--test", str(test), "--out", str(out)]) == 0

    with open(out, "rb") as handle:
        data = pickle.load(handle)
    assert set(data) == {"split", "annotations"}
    assert data["split"] == {
        "xsub_train": ["real_stand_000", "real_bounce_000", "real_sway_000", "synth_stand_000", "synth_bounce_000", "synth_sway_000"],
        "xsub_val": ["test_stand_000", "test_bounce_000", "test_sway_000"],
    }
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["layout"] == "humanml3d22" and sidecar["num_joints"] == 22
    assert sidecar["parents"] == list(SMPL22_PARENTS) and [3, 0] in sidecar["edges"] and len(sidecar["edges"]) == 21
    # the classes present, the first-listed set's first, in its classes.txt order
    assert sidecar["class_names"] == ["bounce", "sway", "stand"]
    assert sidecar["splits"]["xsub_train"] == {"sources": [str(real), str(synth)], "clips": 6}
    by_dir = {a["frame_dir"]: a for a in data["annotations"]}
    assert len(by_dir) == len(data["annotations"]) == 9
    for clip_id, annotation in by_dir.items():
        assert set(annotation) == {"frame_dir", "label", "keypoint", "total_frames"}
        assert sidecar["class_names"][annotation["label"]] == clip_id.split("_")[1]
        keypoint = annotation["keypoint"]
        assert keypoint.dtype == np.float32 and keypoint.shape == (1, annotation["total_frames"], 22, 3)
    # a synthetic set round-trips its joints: new_joints as written, bit for bit
    for clip_id in ("synth_stand_000", "synth_sway_000"):
        np.testing.assert_array_equal(by_dir[clip_id]["keypoint"][0], np.load(synth / "new_joints" / f"{clip_id}.npy"))
    back = read_pyskl(out, "xsub_train")
    assert back.class_names == ("bounce", "sway", "stand") and back.ids == tuple(data["split"]["xsub_train"])
    np.testing.assert_array_equal(back.labels, [2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(back.joints[3][0], np.load(synth / "new_joints" / "synth_stand_000.npy"))


def test_export_names_the_splits_fixes_the_label_space_and_refuses_duplicate_ids(make_clips, write_folder, tmp_path, capsys):
    a = write_folder(tmp_path / "a", make_clips(1, 12, seed=0, source="x"))
    b = write_folder(tmp_path / "b", make_clips(1, 12, seed=1, source="x"))  # the same ids as a
    names = tmp_path / "classes.txt"
    names.write_text("wave\nsway\nbounce\nstand\n")
    out = tmp_path / "out.pkl"
    with pytest.raises(SystemExit) as exit_:
        export_main(["--train", str(a), str(b), "--out", str(out)])
    assert exit_.value.code == 2 and "clip id 'x_stand_000' occurs in" in capsys.readouterr().err
    assert not out.exists()
    export_main(["--train", str(a), str(b), "--prefix_ids", "--class_names", str(names), "--train_split_name", "train", "--out", str(out)])
    data = pickle.loads(out.read_bytes())
    assert list(data["split"]) == ["train"] and data["split"]["train"][:2] == ["a/x_stand_000", "a/x_bounce_000"]
    assert [x["label"] for x in data["annotations"]] == [3, 2, 1, 3, 2, 1]
    with pytest.raises(SystemExit):
        export_main(["--train", str(a), "--out", str(tmp_path / "out.pickle")])
    assert "must end in .pkl" in capsys.readouterr().err


def _ntu_pickle(path: Path) -> Path:
    """A small file in PYSKL's NTU 3D layout: two bodies in one clip, lengths varying."""
    rng = np.random.default_rng(0)
    annotations = [
        {"frame_dir": "S001C001P001R001A001", "label": 0, "keypoint": rng.normal(size=(1, 20, 25, 3)).astype(np.float32), "total_frames": 20},
        {"frame_dir": "S001C001P001R001A050", "label": 49, "keypoint": rng.normal(size=(2, 31, 25, 3)).astype(np.float32), "total_frames": 31},
        {"frame_dir": "S002C001P003R001A001", "label": 0, "keypoint": rng.normal(size=(1, 12, 25, 3)).astype(np.float32), "total_frames": 12},
    ]
    split = {"xsub_train": ["S001C001P001R001A001", "S001C001P001R001A050"], "xsub_val": ["S002C001P003R001A001"]}
    path.write_bytes(pickle.dumps({"split": split, "annotations": annotations}))
    return path


def test_read_pyskl_takes_a_split_keeps_bodies_and_names_classes_from_ntu(shared_data, tmp_path, monkeypatch):
    pkl = _ntu_pickle(tmp_path / "ntu120_3danno.pkl")
    with pytest.raises(ValueError, match=r"no class names were found.*ntu_classes.txt"):
        read_pyskl(pkl, "xsub_train")
    ntu_names = next(shared_data.rglob("ntu_classes.txt"))
    monkeypatch.setenv("MDM_KINEMIC_NTU_CLASSES", str(ntu_names))
    train = read_pyskl(pkl, "xsub_train")
    assert train.ids == ("S001C001P001R001A001", "S001C001P001R001A050") and train.num_joints == 25
    assert [j.shape for j in train.joints] == [(1, 20, 25, 3), (2, 31, 25, 3)]
    names = [ln.strip() for ln in ntu_names.read_text().splitlines() if ln.strip()]
    assert len(train.class_names) == 120 and train.present_classes == [names[0], names[49]]
    assert train.source == f"{pkl}:xsub_train"
    via_spec = load_set(f"{pkl}:xsub_val")
    assert via_spec.ids == ("S002C001P003R001A001",)
    with pytest.raises(ValueError, match=r"no split 'xsub_test'; its splits are \['xsub_train', 'xsub_val'\]"):
        read_pyskl(pkl, "xsub_test")
    with pytest.raises(ValueError, match=r"name a split as .*:SPLIT, one of \['xsub_train', 'xsub_val'\]"):
        load_set(str(pkl))
    with pytest.raises(ValueError, match="names split 'xsub_val' but the split flag says 'xsub_train'"):
        load_set(f"{pkl}:xsub_val", "xsub_train")


def test_read_pyskl_refuses_2d_keypoints_and_code_in_the_pickle(tmp_path):
    flat = {"split": {"train": ["a"]}, "annotations": [{"frame_dir": "a", "label": 0, "keypoint": np.zeros((1, 10, 17, 2), np.float32), "total_frames": 10}]}
    path = tmp_path / "coco.pkl"
    path.write_bytes(pickle.dumps(flat))
    with pytest.raises(ValueError, match=r"keypoint shape \(1, 10, 17, 2\).*3D joints"):
        read_pyskl(path, "train", class_names=["a"])

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"split": {"train": []}, "annotations": [Payload()]}))
    with pytest.raises(UnsafePickleError, match="refused to load the global"):
        read_pyskl(evil, "train")


def test_write_pyskl_keeps_bodies_of_read_sets(tmp_path):
    from mdm_kinemic.har.clips import SkeletonClips

    clips = SkeletonClips([np.ones((2, 10, 25, 3), np.float32)], np.array([0]), ("hug",), ["p"], "pairs")
    pkl, _ = write_pyskl(tmp_path / "p.pkl", {"train": [clips]}, ("hug",))
    annotation = pickle.loads(pkl.read_bytes())["annotations"][0]
    assert annotation["keypoint"].shape == (2, 10, 25, 3) and annotation["total_frames"] == 10
    assert json.loads((tmp_path / "p.json").read_text())["layout"] == "ntu25"


@pytest.mark.parametrize(
    "spec, expected",
    [("data/set", ("data/set", None)), ("data/a.pkl:xsub_val", ("data/a.pkl", "xsub_val")),
     ("data/ntu:fewshot/S0000/xsub/train", ("data/ntu", "fewshot/S0000/xsub/train"))],
)
def test_parse_set_spec(spec, expected):
    path, split = parse_set_spec(spec)
    assert (str(path), split) == expected


def test_parse_set_spec_takes_an_existing_path_with_a_colon_whole(tmp_path):
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_set_spec(str(odd)) == (odd, None)
    with pytest.raises(ValueError, match="both parts non-empty"):
        parse_set_spec("data/set:")
