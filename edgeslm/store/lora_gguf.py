"""PEFT LoRA -> GGUF LoRA, our own small writer on the `gguf` package.

Reads a PEFT adapter directory (adapter_config.json + adapter_model.safetensors), maps every
`lora_A`/`lora_B` pair to the base model's GGUF tensor (`blk.N.attn_q.weight.lora_a|lora_b`, names
from gguf's tensor-name map for the base architecture), checks each shape against the base's tensor
table, and writes general.type=adapter, adapter.type=lora, adapter.lora.alpha. Owns the conversion and
its refusals; knows nothing about the store layout or about loading.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeslm.errors import InvalidRequest
from edgeslm.store.gguf_io import read_header, tensor_array

_PAIR = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")


@dataclass(frozen=True)
class LoraInfo:
    architecture: str
    rank: int
    alpha: float
    target_modules: list[str]
    tensors: int  # lora_a/lora_b pairs written
    base_model: str  # what PEFT recorded as its base


def read_peft(peft_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The adapter config and tensors of a PEFT directory; refuses what is not a plain LoRA."""
    from safetensors.numpy import load_file

    cfg_path = peft_dir / "adapter_config.json"
    weights = peft_dir / "adapter_model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise InvalidRequest(f"{peft_dir}: not a PEFT adapter directory (needs adapter_config.json and "
                             "adapter_model.safetensors)", param="path")
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError as e:
        raise InvalidRequest(f"{cfg_path}: not JSON ({e})", param="path") from None
    kind = str(cfg.get("peft_type", "")).upper()
    if kind != "LORA":
        raise InvalidRequest(f"{peft_dir}: PEFT type '{cfg.get('peft_type')}' is not supported; only LORA is",
                             param="path")
    for flag in ("use_dora", "use_rslora"):
        if cfg.get(flag):
            raise InvalidRequest(f"{peft_dir}: {flag}=true is not supported (llama.cpp applies plain LoRA)",
                                 param="path")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise InvalidRequest(f"{peft_dir}: per-module rank_pattern/alpha_pattern is not supported", param="path")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise InvalidRequest(f"{weights}: unreadable safetensors ({e})", param="path") from None
    return cfg, tensors


def convert(peft_dir: Path, base_gguf: Path, out: Path, dtype: str = "f32") -> LoraInfo:
    """Write the GGUF LoRA of `peft_dir` for `base_gguf` to `out` (atomically), as float32 or float16
    (half the file; llama.cpp converts on load). Refuses an adapter whose modules or shapes do not
    match the base, naming the first mismatch."""
    import gguf

    cfg, tensors = read_peft(peft_dir)
    meta, base_tensors = read_header(base_gguf)
    arch = meta.get("general.architecture", "")
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in by_name:
        raise InvalidRequest(f"base architecture '{arch}' is not known to the gguf package", param="base")
    n_blocks = int(meta.get(f"{arch}.block_count", 0) or 0)
    names = gguf.get_tensor_name_map(by_name[arch], n_blocks)
    shapes = {t.name: t.shape for t in base_tensors}
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        m = _PAIR.match(key)
        if not m:
            raise InvalidRequest(f"{peft_dir}: tensor '{key}' is not a LoRA A/B weight (modules_to_save and "
                                 "bias training are not supported)", param="path")
        target = names.get_name(m["module"] + ".weight", try_suffixes=(".weight",))
        if target is None or target not in shapes:
            raise InvalidRequest(f"{peft_dir}: module '{m['module']}' has no tensor in the {arch} base "
                                 f"'{base_gguf.name}' (an adapter for another architecture?)", param="base")
        pairs.setdefault(target, {})[m["ab"]] = value
    if not pairs:
        raise InvalidRequest(f"{peft_dir}: the adapter holds no LoRA tensors", param="path")
    rank = int(cfg.get("r", 0) or 0)
    for target, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise InvalidRequest(f"{peft_dir}: {target} has lora_{next(iter(ab))} without its pair", param="path")
        n_in, n_out = shapes[target][0], shapes[target][1]
        a, b = ab["A"], ab["B"]
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
            raise InvalidRequest(
                f"{peft_dir}: shapes of {target} do not fit the base: lora_A {tuple(a.shape)}, lora_B "
                f"{tuple(b.shape)}, base weight {n_out}x{n_in} (out x in)", param="base")
        rank = rank or a.shape[0]
    alpha = float(cfg.get("lora_alpha", rank) or rank)
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    np_dtype = {"f32": np.float32, "f16": np.float16}[dtype]
    for target in sorted(pairs):
        w.add_tensor(target + ".lora_a", np.ascontiguousarray(pairs[target]["A"], dtype=np_dtype))
        w.add_tensor(target + ".lora_b", np.ascontiguousarray(pairs[target]["B"], dtype=np_dtype))
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()
    os.replace(tmp, out)
    targets = cfg.get("target_modules") or sorted({t.split(".")[2] for t in pairs})
    return LoraInfo(arch, rank, alpha, list(targets) if not isinstance(targets, str) else [targets], len(pairs),
                    str(cfg.get("base_model_name_or_path", "")))


def to_peft(adapter_gguf: Path, base_gguf: Path, out: Path, base_ref: str, target_modules: list[str]) -> int:
    """The PEFT form of a GGUF LoRA (the reverse of `convert`), for engines that load PEFT adapters
    (vLLM, SGLang, transformers). Names come from gguf's map for the base architecture, reversed;
    Llama's q/k rows are un-permuted as llama.cpp's converter permuted them. Returns the pairs written."""
    import gguf
    from safetensors.numpy import save_file

    meta, _ = read_header(base_gguf)
    arch = meta.get("general.architecture", "")
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    n_blocks = int(meta.get(f"{arch}.block_count", 0) or 0)
    names = gguf.get_tensor_name_map(by_name[arch], n_blocks)
    where = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
             "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
    hf_of = {}
    for i in range(n_blocks):
        for module, parent in where.items():
            hf = f"model.layers.{i}.{parent}.{module}"
            g = names.get_name(hf + ".weight", try_suffixes=(".weight",))
            if g:
                hf_of[g.removesuffix(".weight")] = hf
    reader = gguf.GGUFReader(adapter_gguf)
    alpha = float(reader.fields["adapter.lora.alpha"].contents())
    heads = {"attn_q": int(meta.get(f"{arch}.attention.head_count", 1)),
             "attn_k": int(meta.get(f"{arch}.attention.head_count_kv", 1))}
    tensors, rank = {}, 0
    for t in reader.tensors:
        target, ab = t.name.rsplit(".weight.lora_", 1)
        if target not in hf_of:
            raise InvalidRequest(f"{adapter_gguf}: tensor {t.name} has no Hugging Face module in the {arch} base",
                                 param="adapter")
        x = np.array(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        kind = target.rsplit(".", 1)[-1]
        if arch == "llama" and ab == "b" and kind in heads:  # undo convert_hf_to_gguf's q/k permutation
            n = heads[kind]
            x = x.reshape(n, x.shape[0] // n // 2, 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)
        rank = x.shape[0] if ab == "a" else rank
        tensors[f"base_model.model.{hf_of[target]}.lora_{ab.upper()}.weight"] = np.ascontiguousarray(x)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_ref, "r": rank,
        "lora_alpha": alpha, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
        "target_modules": sorted(target_modules or {k.split(".")[-3] for k in tensors}),
    }, indent=2))
    return len(tensors) // 2


def lora_deltas(lora: Path, scale: float = 1.0) -> dict[str, np.ndarray]:
    """W += scale * alpha / r * B @ A for every weight a GGUF LoRA (as edgeslm writes it) adapts."""
    meta, tensors = read_header(lora)
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise InvalidRequest(f"{lora} is not a GGUF LoRA adapter", param="adapter")
    alpha = float(meta.get("adapter.lora.alpha", 0) or 0)
    with open(lora, "rb") as f:
        mm = np.memmap(f, np.uint8, mode="r")
        pairs: dict[str, dict[str, np.ndarray]] = {}
        for t in tensors:
            base, _, part = t.name.rpartition(".")
            pairs.setdefault(base, {})[part] = tensor_array(mm, t)
    out = {}
    for name, ab in pairs.items():
        a, b = ab["lora_a"], ab["lora_b"]  # (r, in), (out, r)
        rank = a.shape[0]
        out[name] = (b @ a) * (scale * (alpha / rank if alpha else 1.0))
    return out


def mean(loras: list[Path], out: Path) -> int:
    """One GGUF LoRA at `out` whose ΔW is the mean of `loras`' (a model soup of fine-tunes of one base): their ranks
    side by side, A = [A1; ...; Ak], B = [s1·B1 | ... | sk·Bk] / k with alpha = rank, so llama.cpp's alpha / rank is 1.
    Each must adapt the same tensors of one architecture. Returns the rank written."""
    import gguf

    if not loras:
        raise InvalidRequest("a mean of no adapters", param="adapter")
    read = [(meta, tensors, p) for p in loras for meta, tensors in [read_header(p)]]
    names = sorted(t.name for t in read[0][1])
    for meta, tensors, p in read:
        if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
            raise InvalidRequest(f"{p} is not a GGUF LoRA adapter", param="adapter")
        if sorted(t.name for t in tensors) != names or meta.get("general.architecture") != read[0][0].get("general.architecture"):
            raise InvalidRequest(f"{p} adapts other tensors than {loras[0]}: no mean of the two", param="adapter")
    parts: dict[str, list[np.ndarray]] = {}
    for meta, tensors, p in read:
        with open(p, "rb") as f:
            mm = np.memmap(f, np.uint8, mode="r")
            arrays = {t.name: np.array(tensor_array(mm, t), dtype=np.float32) for t in tensors}
        for name, x in arrays.items():
            if name.endswith(".lora_b"):
                a = arrays[name.removesuffix("_b") + "_a"]
                x = x * (float(meta.get("adapter.lora.alpha", 0) or a.shape[0]) / a.shape[0] / len(loras))
            parts.setdefault(name, []).append(x)
    rank = sum(x.shape[0] for x in parts[next(n for n in names if n.endswith(".lora_a"))])
    tmp = out.with_name(out.name + ".part")
    w = gguf.GGUFWriter(str(tmp), read[0][0]["general.architecture"])
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    for name in names:
        w.add_tensor(name, np.ascontiguousarray(np.concatenate(parts[name], axis=0 if name.endswith(".lora_a") else 1),
                                                dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return rank
