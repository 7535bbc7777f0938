"""Unpickling limited to numpy arrays and builtin containers, for pickles made elsewhere.

``pickle.load`` calls whatever callable a file names, so a crafted ``.pkl`` runs code on load.
Every callable a pickle reaches goes through ``find_class`` (Python's pickle docs, "Restricting
Globals"); here it admits only what rebuilds numpy arrays, dtypes and scalars, and the builtin
containers and scalars that need a global (set, frozenset, complex, bytes, bytearray,
OrderedDict). Anything else raises :class:`UnsafePickleError` before it is called.

Formats read:

- plain pickles, protocols 0 to 5 (``pickle.dump`` of a dict of arrays);
- ``joblib.dump`` files, which VIBE's demo.py writes: joblib pickles a placeholder
  (``joblib.numpy_pickle.NumpyArrayWrapper``: dtype, shape, order, alignment) per array and
  writes the array's raw bytes right after it in the stream. The placeholder is read here
  without joblib (which the package does not require): its state is checked and the bytes that
  follow become the array; an object array's nested pickle goes through this same restricted
  unpickler. Compressed joblib files (zlib, gzip, bz2, xz, lzma) are decompressed in memory by
  the standard library first; lz4 is refused.

This stops code from running, not resource use: a crafted file can still ask for a large array.
It imports nothing from mdm_kinemic, so every layer may use it.
"""

from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import math
import os
import pickle
import zlib
from typing import Any, BinaryIO

import numpy as np

__all__ = ["UnsafePickleError", "safe_load_pickle"]

_DECOMPRESSORS = (  # joblib's file prefixes (joblib/compressor.py) -> standard-library decoders
    (b"\x1f\x8b", gzip.decompress),
    (b"BZh", bz2.decompress),
    (b"\xfd7zXZ", lzma.decompress),
    (b"\x5d\x00", lzma.decompress),
    (b"\x78", zlib.decompress),
)
_LZ4_PREFIX = b"\x04\x22\x4d\x18"


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allowlist; nothing it names was called."""


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # protocols 0-2 store bytes as _codecs.encode(text, "latin1"); admit that use and no other codec
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode is admitted only as (str, 'latin1'), got encoding {encoding!r}")
    return text.encode("latin-1")


class _JoblibArray:
    """Stands for joblib's NumpyArrayWrapper: the checked metadata of one array that follows."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("joblib array placeholder without a state dict")
        shape, order, dtype = state.get("shape"), state.get("order"), state.get("dtype")
        align = state.get("numpy_array_alignment_bytes")
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise pickle.UnpicklingError(f"joblib array placeholder with a bad shape {shape!r}")
        if order not in ("C", "F") or not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"joblib array placeholder with order {order!r}, dtype {dtype!r}")
        if align is not None and not (isinstance(align, int) and 0 <= align <= 255):
            raise pickle.UnpicklingError(f"joblib array placeholder with alignment {align!r}")
        self.shape, self.order, self.dtype, self.align = shape, order, dtype, align


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # take numpy's rebuild functions from its own reductions, so both numpy 1 (numpy.core) and
    # numpy 2 (numpy._core) names resolve to this numpy's functions without importing shims
    reconstruct = np.zeros(1).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    scalar = np.float64(0).__reduce__()[0]
    names: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        names[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        names[(f"{core}.multiarray", "scalar")] = scalar
        names[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return names


def _allowed_globals() -> dict[tuple[str, str], Any]:
    names = _numpy_globals()
    for module in ("builtins", "__builtin__"):  # protocols 0-2 write Python 2's module name
        for kind in (set, frozenset, complex, bytes, bytearray):
            names[(module, kind.__name__)] = kind
    names[("collections", "OrderedDict")] = collections.OrderedDict
    names[("_codecs", "encode")] = _latin1_encode
    names[("joblib.numpy_pickle", "NumpyArrayWrapper")] = _JoblibArray
    return names


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle._Unpickler):  # the Python unpickler: its BUILD can be overridden
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, stream: io.BytesIO, source: str) -> None:
        super().__init__(stream)
        self._stream = stream
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load the global {module}.{name}: this loader admits only "
                "numpy arrays and builtin containers, and unpickling it could run code. If you trust "
                "the file's author, re-save its arrays as .npz (numpy.savez) and read that instead"
            ) from None

    def load_build(self) -> None:
        super().load_build()
        if isinstance(self.stack[-1], _JoblibArray):
            self.stack[-1] = self._read_joblib_array(self.stack[-1])

    dispatch[pickle.BUILD[0]] = load_build

    def _read(self, size: int) -> bytes:
        data = self._stream.read(size)  # an in-memory stream: a crafted size allocates only what is there
        if len(data) < size:
            raise pickle.UnpicklingError(f"{self._source}: truncated: array data ends early")
        return data

    def _read_joblib_array(self, meta: _JoblibArray) -> np.ndarray:
        # joblib writes each array's bytes right after its placeholder (joblib/numpy_pickle.py)
        if meta.dtype.hasobject:
            array = _RestrictedUnpickler(self._stream, self._source).load()
            if not isinstance(array, np.ndarray):
                raise pickle.UnpicklingError(f"{self._source}: a joblib object array holds a {type(array).__name__}")
        else:
            if meta.align is not None:
                self._read(self._read(1)[0])
            count = math.prod(meta.shape)
            array = np.frombuffer(self._read(count * meta.dtype.itemsize), dtype=meta.dtype, count=count)
            array = array.reshape(meta.shape[::-1]).T if meta.order == "F" else array.reshape(meta.shape)
            array = array.copy()  # writable and owning its memory, as joblib returns it
        if not array.dtype.isnative:  # joblib's default: arrays come back in the machine's byte order
            array = array.astype(array.dtype.newbyteorder("="))
        return array


def _decompressed(data: bytes, source: str) -> bytes:
    if data.startswith(_LZ4_PREFIX):
        raise pickle.UnpicklingError(f"{source}: lz4-compressed joblib files are not read; re-save without compression")
    for prefix, decompress in _DECOMPRESSORS:
        if data.startswith(prefix):
            return decompress(data)
    return data


def safe_load_pickle(source: str | os.PathLike[str] | BinaryIO) -> Any:
    """Load a pickle or joblib file that may hold only numpy arrays and builtin containers/scalars.

    Args:
        source: a path, or a binary file object (read to its end).

    Returns:
        The unpickled object: dicts, lists, tuples, strings, numbers, numpy arrays, dtypes and
        scalars. joblib arrays come back in native byte order (joblib's default).

    Raises:
        UnsafePickleError: the file names any other global (a class, ``os.system``, ...); its
            message names the file and the global. Nothing the file names is called.
        pickle.UnpicklingError: the file is not a readable pickle (truncated, corrupt, lz4), the
            message names the file.
    """
    if hasattr(source, "read"):
        name, data = str(getattr(source, "name", "<stream>")), source.read()
    else:
        name = os.fspath(source)
        with open(name, "rb") as handle:
            data = handle.read()
    try:
        return _RestrictedUnpickler(io.BytesIO(_decompressed(data, name)), name).load()
    except pickle.UnpicklingError:
        raise
    except Exception as err:  # a corrupt stream fails in many ways (EOF, struct, memo, zlib); one message
        raise pickle.UnpicklingError(f"{name}: not a readable pickle ({type(err).__name__}: {err})") from err
