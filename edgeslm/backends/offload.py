"""GPU offload: whether this llama.cpp build can use a GPU, and how a GGUF model splits between VRAM
and RAM for a number of offloaded layers (`n_gpu_layers`), worked out from the file's header as
llama.cpp places things:

- layers are offloaded from the last one down: with N layers offloaded, blocks n_layer-N .. n_layer-1
  live on the GPU, each with its weights and its rows of the KV cache (offload_kqv, llama.cpp's default);
- the output layer (output norm and the output matrix; the token embedding again where the model ties
  them) goes to the GPU only with N = n_layer + 1, llama.cpp's "all layers";
- the token embedding lookup always stays on the CPU;
- the compute buffer moves to the GPU as soon as one layer is there (the RAM keeps a small host copy),
  and so does the driver's own context (DRIVER, a stated estimate);
- weights on the GPU are not repacked for the CPU, and their pages of the mapped file are released.

`auto` offloads as many layers as fit the free VRAM of the first GPU (device.gpus()) less 10% of it.
Owns the split and the choice; no model is loaded here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeslm.errors import InvalidRequest

MIB = 1 << 20
MARGIN_SHARE = 0.10  # of the free VRAM, kept free: fragmentation, other processes' growth
# the GPU context and the BLAS workspace, in no llama.cpp buffer: a common figure for a CUDA context
# with cuBLAS, not measured here (no GPU on this project's machines); NVML's used VRAM includes it
DRIVER = 320 * MIB
_BLOCK = re.compile(r"^blk\.(\d+)\.")


def parse_layers(text: str | int | None) -> str | int:
    """'auto', 'all' or a number of layers (0: CPU only). Raises InvalidRequest naming the valid forms."""
    if text is None or str(text).strip().lower() == "auto":
        return "auto"
    t = str(text).strip().lower()
    if t == "all":
        return 10_000
    if t.isdigit():
        return int(t)
    raise InvalidRequest(f"invalid --gpu-layers '{text}'; use auto, all, 0 (CPU only) or a number of layers",
                         param="gpu_layers")


def gpu_build() -> str | None:
    """The GPU backend this llama.cpp was built with (CUDA, Metal, Vulkan, ...), or None for a CPU build."""
    try:
        import llama_cpp
    except ImportError:
        return None
    if not llama_cpp.llama_supports_gpu_offload():
        return None
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    for name in ("CUDA", "METAL", "VULKAN", "SYCL", "HIP", "MUSA", "OPENCL", "CANN", "KOMPUTE"):
        if re.search(rf"\b{name}\b", info, re.IGNORECASE):
            return name.title() if name not in ("CUDA", "HIP", "SYCL", "MUSA", "CANN") else name
    return "GPU"


@dataclass
class Split:
    """Where the parts of a model go for `layers` offloaded layers: bytes per part on the GPU, and the
    bytes of the RAM plan's terms that leave RAM."""

    layers: int  # offloaded, clamped to 0 .. n_layer + 1
    n_layer: int
    vram: dict[str, int]
    leaves_ram: dict[str, int]

    @property
    def vram_total(self) -> int:
        return sum(self.vram.values())


def split(tensors, meta: dict, arch: str, layers: int, *, kv_per_layer: int, compute: int, output_rows: int,
          repacked: set[int] | frozenset[int] = frozenset(), repacks: bool = False) -> Split:
    """The VRAM and RAM split of a model whose header is (meta, tensors) for `layers` offloaded layers."""
    n_layer = int(meta.get(f"{arch}.block_count", 0) or 0)
    layers = max(0, min(layers, n_layer + 1))
    first = n_layer - min(layers, n_layer)  # the first offloaded block
    weights = repack = 0
    by_name = {t.name: t for t in tensors}
    # a tied output (no output.weight) makes llama.cpp put a copy of the embedding on the GPU; the
    # embedding itself stays in RAM for the lookup
    tied_copy = (by_name["token_embd.weight"].nbytes if layers > n_layer and "output.weight" not in by_name
                 and "token_embd.weight" in by_name else 0)
    for t in tensors:
        m = _BLOCK.match(t.name)
        on_gpu = (int(m.group(1)) >= first and layers > 0) if m else (
            layers > n_layer and t.name.startswith(("output", "output_norm")))
        if on_gpu:
            weights += t.nbytes
            if repacks and t.ggml_type in repacked:
                repack += t.nbytes
    kv = kv_per_layer * min(layers, n_layer)
    vram = {"weights": weights + tied_copy, "kv_cache": kv, "compute": compute if layers else 0,
            "output": output_rows if layers > n_layer else 0, "driver": DRIVER if layers else 0}
    leaves = {"weights": weights,
              "repack": repack, "kv_cache": kv, "compute": compute if layers else 0,
              "output": output_rows if layers > n_layer else 0}
    return Split(layers, n_layer, vram, leaves)


def margin(free: int) -> int:
    return int(free * MARGIN_SHARE)


def choose(make_split, n_layer: int, free: int) -> tuple[int, str]:
    """The most layers whose split fits `free` bytes of VRAM less the margin; `make_split(n)` -> Split."""
    room = free - margin(free)
    best = 0
    for n in range(n_layer + 1, 0, -1):
        if make_split(n).vram_total <= room:
            best = n
            break
    need_all = make_split(n_layer + 1).vram_total
    what = "all layers and the output" if best == n_layer + 1 else f"{best} of {n_layer} layers"
    return best, (f"{what} fit {free / MIB:.0f} MiB free VRAM less a {margin(free) / MIB:.0f} MiB margin "
                  f"(10%); the whole model needs {need_all / MIB:.0f} MiB there")


# onnxruntime's GPU execution providers, best first, and onnxruntime-genai's names for them
_ORT_GPU = (("CUDAExecutionProvider", "cuda"), ("DmlExecutionProvider", "dml"), ("CoreMLExecutionProvider", "coreml"))


def onnx_provider(available: list[str], gpu_layers: str | int) -> tuple[str | None, str]:
    """The onnxruntime-genai provider for an ONNX model, from onnxruntime's available providers: a GPU
    one unless --gpu-layers is 0 (ONNX models are not split: all on the GPU or none), and why."""
    if gpu_layers == 0:
        return None, "CPU (--gpu-layers 0)"
    for ep, name in _ORT_GPU:
        if ep in available:
            return name, f"{ep} (onnxruntime has it)"
    return None, f"CPU: onnxruntime offers no GPU execution provider ({', '.join(available) or 'none'}; see the README)"
