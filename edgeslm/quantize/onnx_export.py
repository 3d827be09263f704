"""ONNX export with onnxruntime-genai's model builder, from a Hugging Face checkpoint.

Owns the builder call and the config fixes it needs under transformers 5, run in a child process
(`python -m edgeslm.quantize.onnx_export HF_DIR OUT PRECISION`) so its memory and its very long log
stay out of the caller. Fixes:
- a checkpoint written from a GGUF keeps transformers' `quantization_config` (gguf), which the builder
  would treat as a quantized checkpoint: it is removed;
- transformers 5 nests Gemma 3's RoPE settings per layer type (`rope_parameters.full_attention`,
  `.sliding_attention`); the builder reads the flat form plus `rope_local_base_freq`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgeslm.errors import BackendError

PRECISIONS = ("int4", "int8")
INT4_ALGO = "k_quant_mixed"  # k-quant, with the last MatMul (lm_head) and sensitive layers kept int8


def export(hf_dir: Path, out: Path, precision: str, log: Path, algo: str | None = None) -> Path:
    """Build the onnxruntime-genai model folder `out` (written beside it, then renamed). `algo` is the
    builder's weight-only quantization method (default: INT4_ALGO for int4, RTN for int8)."""
    tmp = out.with_name(f".{out.name}.partial")
    algo = algo or (INT4_ALGO if precision == "int4" else "default")
    with open(log, "w") as f:
        rc = subprocess.run([sys.executable, "-m", "edgeslm.quantize.onnx_export", str(hf_dir), str(tmp), precision,
                             algo], stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0 or not (tmp / "genai_config.json").is_file():
        tail = log.read_text(errors="replace")[-1500:]
        raise BackendError(f"onnxruntime-genai's model builder failed (exit {rc}); end of its log {log}:\n{tail}")
    os.replace(tmp, out)
    return out


def _fix_checkpoint(hf_dir: Path) -> None:
    cfg_path = hf_dir / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.pop("quantization_config", None) is not None:
        cfg_path.write_text(json.dumps(cfg, indent=2))


def _fix_config(cfg) -> None:
    rp = getattr(cfg, "rope_parameters", None)
    if isinstance(rp, dict) and "full_attention" in rp:
        cfg.rope_local_base_freq = (rp.get("sliding_attention") or rp["full_attention"])["rope_theta"]
        cfg.rope_theta = rp["full_attention"]["rope_theta"]
        cfg.rope_parameters = dict(rp["full_attention"])


def main(hf_dir: str, out: str, precision: str, algo: str = "default") -> None:
    from onnxruntime_genai.models import builder

    _fix_checkpoint(Path(hf_dir))
    cache = str(Path(out).with_name(Path(out).name + ".cache"))
    options = [f"algo_config={algo}"] if algo != "default" else None
    extra = builder.parse_extra_options(None, hf_dir, out, precision, "cpu", cache, options)
    _fix_config(extra["hf_details"]["hf_config"])
    builder.create_model(None, hf_dir, out, precision, "cpu", cache, **extra)


if __name__ == "__main__":
    main(*sys.argv[1:5])
