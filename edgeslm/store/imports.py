"""Model files from outside into the store: a GGUF (linked or copied, checked, summarized from its
header) or an onnxruntime-genai folder, each recorded in the user catalog."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from edgeslm.errors import InvalidRequest
from edgeslm.store import gguf_io
from edgeslm.store.entries import _SAFE_ID, ModelEntry, Progress, Source, sha256_file
from edgeslm.store.fetch import mark_verified


def import_gguf(catalog, src: Path, model_id: str | None = None, progress: Progress | None = None) -> ModelEntry:
    """Copy a GGUF into the store and record it in the user catalog."""
    src = Path(src).expanduser()
    summary = gguf_io.summarize(gguf_io.read_metadata(src))  # rejects non-GGUF files
    if summary["type"] != "model":
        raise InvalidRequest(f"{src}: GGUF type is '{summary['type']}', not a model", param="path")
    model_id = model_id or re.sub(r"[^A-Za-z0-9._-]", "-", src.stem).lower()
    if not _SAFE_ID.match(model_id):
        raise InvalidRequest(
            f"invalid model id '{model_id}': use letters, digits, '.', '_' and '-' (max 128)", param="id"
        )
    # A new id, a re-import of an earlier import, or the file of a hub entry (checked by its sha256
    # when the catalog pins one) are fine; the embedded model's id is not.
    existing = catalog.find(model_id)
    if existing is not None and existing.source.kind == "pypi":
        raise InvalidRequest(f"model id '{model_id}' belongs to the embedded model; choose another --id", param="id")
    entry = existing.model_copy() if existing is not None and existing.source.kind == "hf" else None
    dest = catalog.path_of(entry) if entry else catalog.settings.models_dir / model_id / src.name
    digest = sha256_file(src, progress)
    if entry is not None and entry.sha256 and entry.sha256 != digest:
        raise InvalidRequest(
            f"{src}: sha256 {digest} does not match the catalog's {entry.sha256} for '{model_id}'", param="path"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    if entry is None:
        # the prompt and call formats of the catalog's model of this architecture (the model's own
        # template, when its GGUF has one, still decides at load time)
        like = next((e for e in catalog.entries if e.architecture == summary["architecture"]), None)
        entry = ModelEntry(
            id=model_id,
            name=summary["name"] or model_id,
            architecture=summary["architecture"],
            family=like.family if like else summary["architecture"],
            chat_format=like.chat_format if like else "",
            tool_format=like.tool_format if like else "hermes",
            quantization=gguf_io.FILE_TYPES.get(summary["file_type"], str(summary["file_type"])),
            license=summary["license"],
            size_mb=round(dest.stat().st_size / 1e6),
            context_length=summary["context_length"],
            source=Source(kind="path", path=str(dest)),
        )
    entry.sha256 = digest
    mark_verified(entry, dest)
    catalog.save_user(entry)
    return entry

def import_onnx(catalog, src: Path, model_id: str, like: ModelEntry, quantization: str) -> ModelEntry:
    """Move an onnxruntime-genai model folder into the store as `model_id`, with the chat and
    tool formats of the model it was exported from (`like`)."""
    if not _SAFE_ID.match(model_id):
        raise InvalidRequest(f"invalid model id '{model_id}': use letters, digits, '.', '_' and '-' (max 128)",
                             param="id")
    existing = catalog.find(model_id)
    if existing is not None and existing.source.kind != "path":
        raise InvalidRequest(f"model id '{model_id}' is a catalog model; choose another --id", param="id")
    dest = catalog.settings.models_dir / model_id / "onnx"
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    entry = ModelEntry(id=model_id, name=f"{like.name or like.id} ({quantization}, ONNX)", architecture=like.architecture,
                       family=like.family, format="onnx", quantization=quantization, license=like.license,
                       size_mb=round(size / 1e6), context_length=like.context_length, chat_format=like.chat_format,
                       tool_format=like.tool_format, source=Source(kind="path", path=str(dest)))
    catalog.save_user(entry)
    return entry
