"""mdm_kinemic.safe_pickle: plain and joblib pickles of arrays round-trip; anything else is refused."""

from __future__ import annotations

import collections
import io
import pickle

import numpy as np
import pytest

from mdm_kinemic.safe_pickle import UnsafePickleError, safe_load_pickle

VIBE_LIKE = {
    1: {
        "pose": np.arange(2 * 72, dtype=np.float32).reshape(2, 72),
        "betas": np.ones((2, 10)),
        "frame_ids": np.array([4, 5]),
        "joints2d": None,
    },
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "big_endian": np.arange(3, dtype=">f8"),
    "record": np.array([(1.5, 2)], dtype=[("x", "f4"), ("y", "i2")]),
    "empty": np.zeros((0, 3)),
    "scalar": np.float64(2.5),
    "zero_dim": np.array(7),
    "objects": np.array([{"k": 1}, None], dtype=object),
    "containers": (collections.OrderedDict(a=1), {1, 2}, frozenset({3}), 1 + 2j, b"raw", bytearray(b"ba"), [1.0, "s"]),
}


def _assert_same(loaded, expected) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray) and loaded.shape == expected.shape
        if expected.dtype.hasobject:
            assert list(loaded) == list(expected)
        else:
            assert loaded.dtype == expected.dtype or loaded.dtype == expected.dtype.newbyteorder("=")
            np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert type(loaded) is type(expected) and loaded.keys() == expected.keys()
        for key in expected:
            _assert_same(loaded[key], expected[key])
    else:
        assert type(loaded) is type(expected) and loaded == expected


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_pickle_of_arrays_round_trips(tmp_path, protocol):
    path = tmp_path / "vibe_output.pkl"
    path.write_bytes(pickle.dumps(VIBE_LIKE, protocol=protocol))
    _assert_same(safe_load_pickle(path), VIBE_LIKE)
    _assert_same(safe_load_pickle(io.BytesIO(path.read_bytes())), VIBE_LIKE)


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "xz", "lzma"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_joblib_file_round_trips(tmp_path, compress, protocol):
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "vibe_output.pkl"
    joblib.dump(VIBE_LIKE, path, compress=compress, protocol=protocol)
    loaded = safe_load_pickle(path)
    _assert_same(loaded, VIBE_LIKE)
    assert loaded["big_endian"].dtype.isnative  # joblib's own default
    assert loaded[1]["pose"].flags.writeable


class _Payload:
    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize(
    ("module", "name"),
    [("builtins", "eval"), ("numpy", "load"), ("copyreg", "_reconstructor"), ("collections", "Counter")],
)
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name):
    path = tmp_path / "bad.pkl"
    path.write_bytes(b"c" + f"{module}\n{name}\n".encode() + b")R.")  # GLOBAL, EMPTY_TUPLE, REDUCE
    with pytest.raises(UnsafePickleError, match=rf"bad\.pkl: refused to load the global {module}\.{name}"):
        safe_load_pickle(path)


def test_codecs_encode_only_as_latin1(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(pickle.dumps(_Payload(__import__("_codecs").encode, "abc", "rot13"), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        safe_load_pickle(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "not a readable pickle"), (b"\x80\x04\x95", "not a readable pickle"), (b"HIERARCHY\n", "not a readable pickle"),
     (b"\x04\x22\x4d\x18rest", "lz4")],
)
def test_unreadable_files_name_the_file(tmp_path, data, message):
    path = tmp_path / "broken.pkl"
    path.write_bytes(data)
    with pytest.raises(pickle.UnpicklingError, match=rf"broken\.pkl: .*{message}"):
        safe_load_pickle(path)


def test_truncated_joblib_array_data(tmp_path):
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "cut.pkl"
    joblib.dump({"pose": np.zeros((50, 72))}, path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(pickle.UnpicklingError, match=r"cut\.pkl: truncated"):
        safe_load_pickle(path)
