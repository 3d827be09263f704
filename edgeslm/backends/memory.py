"""The memory plan: what loading a GGUF model with llama.cpp will cost in resident memory, worked out
from the file's header before anything is loaded, and the check that refuses a model that cannot fit.

Owns the estimate. Terms, each named in the plan:
- runtime:   this process's resident memory right now (interpreter, libraries, whatever it holds);
- weights:   every tensor in the file (mmap'd, and all of it is read while decoding);
- repack:    llama.cpp's CPU_REPACK copy of the Q4_0/Q4_K/IQ4_NL matrices (AVX2 builds repack them
             into interleaved blocks and keep both);
- kv_cache:  n_ctx cells x every layer's K and V rows in f16 (or q8_0, --kv-type) (llama-cpp-python keeps a full-size
             sliding-window cache, so SWA layers count in full);
- compute:   the pages of the compute buffer a prompt actually touches: one ubatch's activations plus
             its attention scores over the whole context (f32, no flash attention). llama.cpp reserves
             far more (its worst case has one logits row per ubatch token: 514 MiB for Gemma 3's 262k
             vocabulary) but decoding asks for the last row only, so those pages stay untouched;
- output:    the logits rows (one per sequence: a batch of n_seq sequences outputs n_seq rows);
- vocab:     llama.cpp's vocabulary and our grammar tokenizer (llguidance + the token table),
             per vocabulary entry;
- adapters:  LoRA files, loaded in full.
With layers offloaded to a GPU (offload.py) the plan has a second column, `vram`: what moves there
leaves the RAM terms. VOCAB_BYTES and ACTIVATION_FLOATS are measured on this project's machines (Gemma 3 270M, see
tests/test_qualify.py), not derived; the test holds the plan to +-15% of the measured peak RSS.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from edgeslm import device
from edgeslm.backends import offload
from edgeslm.errors import DoesNotFit, InvalidRequest
from edgeslm.store.gguf_io import read_header

VOCAB_BYTES = 680  # per vocabulary entry: ~180 in llama.cpp's vocab, ~500 in the llguidance tokenizer
ACTIVATION_FLOATS = (8, 3)  # per ubatch token: n_embd x 8 + n_ff x 3 f32 activations live at once
_REPACKED = {2, 12, 20}  # ggml types Q4_0, Q4_K, IQ4_NL
MIB = 1 << 20
ORT_COPIES = 2  # onnxruntime's extra copies of an ONNX model's weights (see plan_folder)


@dataclass
class MemoryPlan:
    model: str
    architecture: str
    n_ctx: int
    n_ubatch: int
    terms: dict[str, int] = field(default_factory=dict)  # bytes
    kv_bytes_per_token: int = 0
    reserved_compute: int = 0  # what llama.cpp will reserve (virtual), for reference
    gpu_layers: int = 0  # layers offloaded (n_layer + 1: all of them and the output layer)
    n_layer: int = 0
    gpu_reason: str = "CPU only"
    vram: dict[str, int] = field(default_factory=dict)  # bytes on the GPU, per term
    vram_free: int | None = None  # what the plan was made against (the GPU's free VRAM, or the vram= budget)

    @property
    def total(self) -> int:
        return sum(self.terms.values())

    @property
    def vram_total(self) -> int:
        return sum(self.vram.values())

    @property
    def device(self) -> str:
        if not self.gpu_layers:
            return "cpu"
        return "gpu" if self.gpu_layers > self.n_layer else f"gpu+cpu ({self.gpu_layers}/{self.n_layer + 1} layers)"

    def to_json(self) -> dict:
        return {**asdict(self), "total": self.total, "vram_total": self.vram_total, "device": self.device}

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / MIB:.0f}" for k, v in self.terms.items() if v)
        return f"{self.total / MIB:.0f} MiB ({parts} MiB)"

    def describe_vram(self) -> str:
        parts = ", ".join(f"{k} {v / MIB:.0f}" for k, v in self.vram.items() if v)
        return f"{self.vram_total / MIB:.0f} MiB of VRAM ({parts} MiB) for {self.gpu_layers} offloaded layers"


def _hp(meta: dict, arch: str, key: str, default=None):
    v = meta.get(f"{arch}.{key}", default)
    return max(v) if isinstance(v, list) and v else v


def _repacks() -> bool:
    from edgeslm.backends import build_features

    try:
        info = build_features("gguf")
    except ImportError:  # no llama.cpp: nothing to repack
        return False
    return "REPACK = 1" in info and "AVX2 = 1" in info


def plan(path: Path, *, n_ctx: int, n_batch: int = 512, n_seq: int = 1, adapters: list[Path] | tuple = (),
         model: str = "", runtime: int | None = None, gpu_layers: str | int = 0,
         vram_free: int | None = None, gpu_build: str | None = None, kv_type: str = "f16") -> MemoryPlan:
    """The memory plan of loading `path` with this context (`n_seq` sequences share its KV cache), with
    `gpu_layers` ("auto" or a number) offloaded when `gpu_build` names a GPU backend; "auto" fits
    `vram_free` bytes. Raises InvalidRequest for a bad GGUF."""
    meta, tensors = read_header(path)
    arch = meta.get("general.architecture", "unknown")
    n_layer = int(_hp(meta, arch, "block_count", 0) or 0)
    n_embd = int(_hp(meta, arch, "embedding_length", 0) or 0)
    n_head = int(_hp(meta, arch, "attention.head_count", 1) or 1)
    n_head_kv = int(_hp(meta, arch, "attention.head_count_kv", n_head) or n_head)
    k_len = int(_hp(meta, arch, "attention.key_length", n_embd // n_head) or 0)
    v_len = int(_hp(meta, arch, "attention.value_length", n_embd // n_head) or 0)
    n_ff = int(_hp(meta, arch, "feed_forward_length", 4 * n_embd) or 0)
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = getattr(tokens, "length", None) or len(tokens or [])
    cells = -(-n_ctx // 256) * 256
    n_ubatch = min(n_batch, 512, n_ctx)
    # f16: 2 bytes an element; q8_0: blocks of 32 int8 and one f16 scale (34 bytes per 32)
    kv_per_token = n_layer * n_head_kv * (k_len + v_len) * (34 if kv_type == "q8_0" else 64) // 32
    act = n_ubatch * (n_embd * ACTIVATION_FLOATS[0] + n_ff * ACTIVATION_FLOATS[1]) * 4
    scores = n_ubatch * cells * n_head * 4
    weights = sum(t.nbytes for t in tensors)
    p = MemoryPlan(model or Path(path).name, arch, n_ctx, n_ubatch, kv_bytes_per_token=kv_per_token,
                   reserved_compute=n_ubatch * n_vocab * 4 + act + scores)
    p.terms = {
        "runtime": psutil.Process().memory_info().rss if runtime is None else runtime,
        "weights": weights,
        "repack": sum(t.nbytes for t in tensors if t.ggml_type in _REPACKED and t.name != "token_embd.weight")
        if _repacks() else 0,
        "kv_cache": cells * kv_per_token,
        "compute": act + scores,
        "output": n_vocab * 4 * n_seq,
        "vocab": n_vocab * VOCAB_BYTES,
        "adapters": sum(Path(a).stat().st_size for a in adapters),
    }
    repacks = p.terms["repack"] > 0

    def make_split(n: int) -> offload.Split:
        return offload.split(tensors, meta, arch, n, kv_per_layer=cells * kv_per_token // max(n_layer, 1),
                             compute=act + scores, output_rows=n_vocab * 4 * n_seq, repacked=_REPACKED, repacks=repacks)

    p.n_layer, p.vram_free = n_layer, vram_free
    layers, p.gpu_reason = _layers(offload.parse_layers(gpu_layers), gpu_build, vram_free, make_split, n_layer)
    if layers:
        s = make_split(layers)
        p.gpu_layers, p.vram = s.layers, s.vram
        for k, v in s.leaves_ram.items():
            p.terms[k] = max(0, p.terms[k] - v)
    return p


def _layers(want: str | int, build: str | None, vram_free: int | None, make_split, n_layer: int) -> tuple[int, str]:
    """How many layers to offload, and why."""
    if want == 0:
        return 0, "CPU only (--gpu-layers 0)"
    if build is None:
        return 0, ("CPU only: this llama.cpp build has no GPU offload (install a GPU build: see the README, "
                   "'The laptop's GPU')")
    if want != "auto":
        n = min(int(want), n_layer + 1)
        return n, f"{n} layers as asked (--gpu-layers {want}), on the {build} backend"
    if vram_free is None:
        return 0, f"CPU only: a {build} build, but no GPU's free VRAM could be read (NVML, torch, nvidia-smi)"
    n, why = offload.choose(make_split, n_layer, vram_free)
    return n, f"{why}; {build} backend"


def parse_size(text: str) -> int:
    """'6GB', '512MiB', '0.5G', '2048' (MiB) -> bytes. Raises ValueError naming the accepted forms."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", text or "")
    if not m:
        raise ValueError(f"invalid size '{text}'; use a number with a unit, e.g. 512MiB, 6GB, 0.5G")
    value, unit = float(m.group(1)), m.group(2).upper()
    scale = {"": MIB, "K": 1 << 10, "M": MIB, "G": 1 << 30, "T": 1 << 40}[unit]
    return int(value * scale)


def default_budget() -> int:
    """Memory a model may use when no budget is given: what the machine has available now."""
    return psutil.virtual_memory().available + psutil.Process().memory_info().rss


@dataclass(frozen=True)
class Budget:
    ram: int
    vram: int | None = None  # None: the free VRAM of the GPU when a plan offloads, else unchecked

    def to_json(self) -> dict:
        return {"ram": self.ram, "vram": self.vram}


def parse_budget(text: str) -> Budget:
    """'6GB' (RAM) or 'ram=6GB,vram=4GB' (either part may be left out). Raises ValueError naming the forms."""
    if "=" not in text:
        return Budget(parse_size(text))
    parts: dict[str, int] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = key.strip().lower()
        if key not in ("ram", "vram") or key in parts:
            raise ValueError(f"invalid memory budget part '{item.strip()}'; use ram=SIZE and/or vram=SIZE, e.g. ram=6GB,vram=4GB")
        parts[key] = parse_size(value)
    return Budget(parts.get("ram", default_budget()), parts.get("vram"))


def budget_of(text: str | None) -> Budget:
    """The budget a setting names, or the default; a bad size is an InvalidRequest naming the forms."""
    if text is None:
        return Budget(default_budget())
    try:
        return parse_budget(text)
    except ValueError as e:
        raise InvalidRequest(str(e), param="memory_budget") from None


def check_fits(p: MemoryPlan, budget: Budget, vram_free: int | None = None) -> None:
    """Refuse, before loading, a plan over its RAM or VRAM budget; the message has the numbers."""
    if p.total > budget.ram:
        raise DoesNotFit(
            f"'{p.model}' needs about {p.describe()} of RAM at n_ctx {p.n_ctx}, but the memory budget is "
            f"{budget.ram / MIB:.0f} MiB; lower --n-ctx (KV cache {p.kv_bytes_per_token * 1024 / MIB:.1f} MiB per 1k "
            f"tokens), pick a smaller quantization, offload layers to a GPU, or raise --memory-budget",
            param="memory_budget", code="does_not_fit",
        )
    vram = budget.vram if budget.vram is not None else (vram_free if vram_free is not None else p.vram_free)
    if p.vram_total and vram is not None and p.vram_total > vram:
        raise DoesNotFit(
            f"'{p.model}' needs {p.describe_vram()}, but the VRAM budget is {vram / MIB:.0f} MiB; lower "
            "--gpu-layers (or use auto), lower --n-ctx, or raise the vram= part of --memory-budget",
            param="memory_budget", code="does_not_fit",
        )


def plan_folder(path: Path, *, n_ctx: int, model: str = "", runtime: int | None = None) -> MemoryPlan:
    """The memory plan of an onnxruntime-genai model folder: its files (loaded in full) plus an f32
    KV cache of n_ctx tokens (sizes from genai_config.json)."""
    import json

    path = Path(path)
    try:
        dec = json.loads((path / "genai_config.json").read_text())["model"]["decoder"]
    except (OSError, ValueError, KeyError) as e:
        raise InvalidRequest(f"{path}: not an onnxruntime-genai model folder ({e})", param="model") from None
    kv_per_token = dec["num_hidden_layers"] * dec["num_key_value_heads"] * dec["head_size"] * 2 * 4
    p = MemoryPlan(model or path.name, "onnx", n_ctx, 1, kv_bytes_per_token=kv_per_token)
    weights = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    p.terms = {
        "runtime": psutil.Process().memory_info().rss if runtime is None else runtime,
        "weights": weights,
        # onnxruntime keeps converted/prepacked copies of the initializers beside the file data:
        # measured on Gemma 3 270M int8 (1024 MiB of files), peak RSS 3695 MiB with a 281 MiB runtime
        "onnxruntime_copies": ORT_COPIES * weights,
        "kv_cache": n_ctx * kv_per_token,
    }
    return p


def sequences(settings) -> int:
    """Backend sequences a server keeps: four per slot, so a preempted request keeps its cache while
    another decodes, and an agent's warm prefix outlives the requests beside it (scheduling.py). A
    sequence costs one row of logits (n_vocab floats) and no KV cells: the cells are shared. Measured
    with `benchmarks.load`: at twice the slots, a quarter of the short calls under load found their
    prefix taken and evaluated it again."""
    return min(4 * settings.parallel, 64)


def plan_for(fmt: str, path: Path, settings, *, model: str = "", adapters: list[Path] | tuple = ()) -> MemoryPlan:
    """The memory plan of loading `path` as the server would, with these settings: the one place both
    `serve` (before it loads) and `qualify --plan` take it from. The GPU is probed here: the build,
    and the first GPU's free VRAM (or the vram= budget, when smaller)."""
    if fmt == "gguf":
        want = offload.parse_layers(settings.gpu_layers)
        build = offload.gpu_build() if want != 0 else None
        free = None
        if build:
            devices = device.gpus()
            free = devices[0]["free"] if devices else None
            vram_budget = budget_of(settings.memory_budget).vram
            if vram_budget is not None:
                free = vram_budget if free is None else min(free, vram_budget)
        return plan(path, n_ctx=settings.n_ctx, n_batch=settings.n_batch, n_seq=sequences(settings), model=model,
                    adapters=list(adapters), gpu_layers=want, vram_free=free, gpu_build=build, kv_type=settings.kv_type)
    return plan_folder(path, n_ctx=settings.n_ctx, model=model)
