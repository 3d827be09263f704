"""Fast GGUF header reading: the metadata key/values, without loading tensors.

gguf.GGUFReader materialises every array (9 s on a 262k-token vocab); here arrays of strings are
skipped over and only their length is kept, so reading a header takes well under a second.
"""

from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeslm.errors import InvalidRequest

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_SMALL_ARRAY = 64  # arrays up to this length are kept; longer ones keep only their length


@dataclass
class ArrayInfo:
    """A long metadata array that was skipped: its element type and length."""

    type: int
    length: int


class _Cursor:
    def __init__(self, buf, path: Path, full: bool = False):
        self.buf, self.pos, self.path, self.full = buf, 0, path, full
        self.types: dict[str, tuple[int, int | None]] = {}  # key -> (value type, array element type)

    def take(self, fmt: str):
        try:
            (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise InvalidRequest(f"{self.path}: truncated GGUF header", param="path") from None
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise InvalidRequest(f"{self.path}: truncated GGUF header", param="path")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype, count = self.take("<I"), self.take("<Q")
            if self.full and etype in _SCALARS and etype != 7:  # numbers: one numpy read, not a loop
                arr = np.frombuffer(self.buf, _SCALARS[etype], count, self.pos)
                self.pos += arr.nbytes
                return arr.tolist()
            if count <= _SMALL_ARRAY or self.full:
                return [self.value(etype) for _ in range(count)]
            if etype in _SCALARS:
                self.pos += struct.calcsize(_SCALARS[etype]) * count
            elif etype == _STRING:
                buf, pos = self.buf, self.pos
                for _ in range(count):
                    pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
                self.pos = pos
            else:
                raise InvalidRequest(f"{self.path}: unsupported nested GGUF array", param="path")
            return ArrayInfo(etype, count)
        raise InvalidRequest(f"{self.path}: unknown GGUF value type {vtype}", param="path")


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    nbytes: int  # bytes in the file, padding to the next tensor included
    offset: int = 0  # where its data starts in the file


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Metadata of a GGUF file. Raises InvalidRequest for anything that is not a valid GGUF."""
    return read_header(path)[0]


def read_header(path: str | Path, full: bool = False) -> tuple[dict[str, Any], list[TensorInfo]]:
    """Metadata and tensor table of a GGUF file (no tensor data is read). `full` keeps long arrays
    too (the vocabulary), and the value types under meta["gguf.types"], for rewriting the file.
    Raises InvalidRequest for anything that is not a valid GGUF."""
    path = Path(path)
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file", param="path")
    with path.open("rb") as f:
        if path.stat().st_size < 24:
            raise InvalidRequest(f"{path}: not a GGUF file (too short)", param="path")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[:4] != b"GGUF":
                raise InvalidRequest(
                    f"{path}: not a GGUF file (magic {bytes(buf[:4])!r}, expected b'GGUF')", param="path"
                )
            cur = _Cursor(buf, path, full)
            cur.pos = 4
            version = cur.take("<I")
            if version not in (2, 3):
                raise InvalidRequest(f"{path}: unsupported GGUF version {version} (supported: 2, 3)", param="path")
            n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
            if n_kv > 100_000 or n_tensors > 1_000_000:
                raise InvalidRequest(f"{path}: corrupt GGUF header (kv={n_kv}, tensors={n_tensors})", param="path")
            meta: dict[str, Any] = {"gguf.version": version, "gguf.tensor_count": n_tensors}
            try:
                for _ in range(n_kv):
                    key, vtype = cur.string(), cur.take("<I")
                    etype = struct.unpack_from("<I", buf, cur.pos)[0] if vtype == _ARRAY else None
                    cur.types[key] = (vtype, etype)
                    meta[key] = cur.value(vtype)
                infos = []
                for _ in range(n_tensors):
                    name, n_dims = cur.string(), cur.take("<I")
                    if n_dims > 8:
                        raise InvalidRequest(f"{path}: corrupt GGUF tensor table ({name}: {n_dims} dims)", param="path")
                    shape = tuple(cur.take("<Q") for _ in range(n_dims))
                    gtype = cur.take("<I")
                    infos.append((cur.take("<Q"), name, shape, gtype))
            except struct.error:
                raise InvalidRequest(f"{path}: truncated GGUF header", param="path") from None
            align = int(meta.get("general.alignment", 32) or 32)
            data_start = -(-cur.pos // align) * align
            size = len(buf)
            infos.sort()
            ends = [o for o, *_ in infos[1:]] + [size - data_start]
            tensors = []
            for (offset, name, shape, gtype), end in zip(infos, ends, strict=False):
                if end < offset or data_start + end > size:
                    raise InvalidRequest(f"{path}: truncated GGUF (tensor {name} lies past the end of the file)",
                                         param="path")
                tensors.append(TensorInfo(name, shape, gtype, end - offset, data_start + offset))
            if full:
                meta["gguf.types"] = cur.types
            return meta, tensors


def summarize(meta: dict[str, Any]) -> dict[str, Any]:
    """The facts the catalog needs from GGUF metadata."""
    arch = meta.get("general.architecture", "unknown")
    tokens = meta.get("tokenizer.ggml.tokens")
    vocab = tokens.length if isinstance(tokens, ArrayInfo) else len(tokens or [])
    return {
        "architecture": arch,
        "name": meta.get("general.name", ""),
        "context_length": int(meta.get(f"{arch}.context_length", 0) or 0),
        "vocab_size": vocab,
        "chat_template": meta.get("tokenizer.chat_template"),
        "file_type": meta.get("general.file_type"),
        "size_label": meta.get("general.size_label", ""),
        "license": meta.get("general.license", ""),
        "type": meta.get("general.type", "model"),
    }


# llama_ftype values, as written in general.file_type
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}


def tensor_array(mm, t) -> np.ndarray:
    """One tensor of a mapped GGUF as float32, in numpy order (GGUF dims reversed)."""
    import gguf

    qtype = gguf.GGMLQuantizationType(t.ggml_type)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = math.prod(t.shape)
    raw = np.frombuffer(mm, np.uint8, n // block * size, t.offset)
    rows = raw.reshape(-1, t.shape[0] // block * size)
    return gguf.quants.dequantize(rows, qtype).reshape(tuple(reversed(t.shape)))


def open_writer(meta: dict, path: Path, file_type: int):
    """A gguf.GGUFWriter at `path` holding the metadata of `meta` (read_header(..., full=True) of a
    model) as it was typed there, with general.file_type set to `file_type` (a llama_ftype)."""
    import gguf

    meta = dict(meta)
    types = meta.pop("gguf.types")
    w = gguf.GGUFWriter(str(path), meta["general.architecture"])
    for key, value in meta.items():
        if key.startswith("gguf.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            value = file_type
        vtype, etype = types[key]
        w.add_key_value(key, value, gguf.GGUFValueType(vtype),
                        sub_type=gguf.GGUFValueType(etype) if etype is not None else None)
    return w
