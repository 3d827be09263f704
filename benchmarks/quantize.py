"""What each quantization keeps of a fine-tuned model, in one run on the embedded model.

    python -m benchmarks.quantize [--threads N] [--steps 6]

A task adapter is trained here for a few steps with peft (tool-call JSON in one fixed format), then
every target is built from the default model plus that adapter and measured against the reference,
the F16 base with the adapter merged (the exact fine-tuned model):
- merged: the adapter folded into the weights, then quantized (F16, Q8_0, Q5_K_M, Q4_K_M);
- unmerged: the base quantized, the adapter applied at run time (Q8_0, Q4_K_M, and the shipped
  Q4_K_M file itself, which is how `edgeslm serve` runs it);
- ONNX (onnxruntime-genai's model builder, the adapter merged by peft): int8, int4 with plain RTN,
  and int4 with k-quant (the lm_head and sensitive layers kept int8), decoded by the ONNX backend.
Figures: file size (adapter included when unmerged), KL and top-1 on neutral text and on held-out
task texts, and greedy decode tok/s. The only weights on this machine are the shipped Q4_K_M, so
the F16 reference is their dequantization plus the adapter. Prints a table, writes
benchmarks/results/quantize.{json,png}, and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from benchmarks._chart import bars
from benchmarks._lora import train
from edgeslm import device
from edgeslm.config import Settings
from edgeslm.quantize import gate
from edgeslm.quantize.gguf_write import quantize, rewrite
from edgeslm.quantize.hf import checkpoint_from_gguf
from edgeslm.quantize.onnx_export import INT4_ALGO, export
from edgeslm.store.lora_gguf import convert
from edgeslm.store.registry import Catalog

CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Perth", "Dakar", "Hanoi", "Bern", "Riga", "Accra",
          "Doha", "Suva", "Baku", "Lome"]


def task_text(i: int) -> str:
    city, unit = CITIES[i % len(CITIES)], ("celsius", "fahrenheit")[i % 2]
    return (f"User: what's the weather in {city} in {unit}?\nCall: "
            f'{{"name": "get_weather", "arguments": {{"city": "{city}", "unit": "{unit}", "days": {i % 5 + 1}}}}}')


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", type=int, default=6, help="peft training steps for the task adapter")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quantize.json"))
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX targets")
    args = ap.parse_args(argv)
    threads = args.threads or device.default_threads()
    cat = Catalog(Settings())
    shipped = cat.ensure_local(cat.get("default"))
    train_texts, held_out = [task_text(i) for i in range(8)], [task_text(i) for i in range(8, 16)]
    rows, timings = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        train(shipped, train_texts, tmp / "peft", steps=args.steps, rank=16,
              modules=("q_proj", "k_proj", "v_proj", "o_proj"))
        lora = tmp / "adapter.gguf"
        convert(tmp / "peft", shipped, lora)
        timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        plain = rewrite(shipped, tmp / "base-f16.gguf", "F16")
        merged = rewrite(plain, tmp / "merged-f16.gguf", "F16", merge=lora)
        builds = [("F16, merged", merged, False)]
        for target in ("Q8_0", "Q5_K_M", "Q4_K_M"):
            builds.append((f"{target}, merged", quantize(merged, tmp / f"merged-{target}.gguf", target, threads), False))
        for target in ("Q8_0", "Q4_K_M"):
            builds.append((f"{target}, unmerged", quantize(plain, tmp / f"base-{target}.gguf", target, threads), True))
        builds.append(("shipped Q4_K_M, unmerged", shipped, True))
        if not args.no_onnx:
            hf_dir = checkpoint_from_gguf(shipped, tmp / "hf", tmp / "peft")
            for name, prec, algo in (("ONNX int8, merged", "int8", "default"), ("ONNX int4 RTN, merged", "int4", "rtn"),
                                     (f"ONNX int4 {INT4_ALGO}, merged", "int4", INT4_ALGO)):
                out = export(hf_dir, tmp / f"onnx-{prec}-{algo}", prec, tmp / f"builder-{prec}-{algo}.log", algo)
                builds.append((name, out, None))
        timings["build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = gate.Scorer(merged, [], threads)
        base_ref = gate.Scorer(plain, [], threads)
        no_adapter = gate.measure(ref, base_ref, held_out)  # how far the adapter moved the model on its task
        base_ref.close()
        for name, path, unmerged in builds:
            adapters = [(lora, 1.0)] if unmerged else []
            s = gate.Scorer(path, adapters, threads, "gguf" if unmerged is not None else "onnx")
            neutral, task = gate.measure(ref, s, gate.NEUTRAL), gate.measure(ref, s, held_out)
            tps = s.decode_tps()
            s.close()
            files = list(path.iterdir()) if path.is_dir() else [path]
            size = sum(f.stat().st_size for f in files if f.is_file()) + (lora.stat().st_size if unmerged else 0)
            rows.append({"target": name, "size_mib": size / 2**20, "neutral": neutral.to_json(), "task": task.to_json(),
                         "tokens_per_s": tps, "passes": neutral.passes and task.passes})
            print(f"{name:36s} {size / 2**20:6.0f} MiB  neutral KL {neutral.kl:.4f} top-1 {neutral.top1:6.1%}  "
                  f"task KL {task.kl:.4f} top-1 {task.top1:6.1%}  {tps:5.1f} tok/s  "
                  f"{'pass' if neutral.passes and task.passes else 'FAIL'}", flush=True)
        ref.close()
        timings["measure_s"] = time.perf_counter() - t0
    print(f"{'(base without the adapter)':36s} {'':10s} task KL {no_adapter.kl:.4f} top-1 {no_adapter.top1:6.1%}")
    result = {"benchmark": "quantize", "machine": {"platform": platform.platform(), **device.describe()},
              "model": "gemma-3-270m-q4_k_m", "threads": threads, "steps": args.steps,
              "thresholds": {"max_kl": gate.MAX_KL, "min_top1": gate.MIN_TOP1}, "rows": rows,
              "base_without_adapter_on_task": no_adapter.to_json(), "timings": timings}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    bars(args.out.with_suffix(".png"), "What each target keeps of a fine-tuned Gemma 3 270M (vs F16 merged)",
         [r["target"].replace(", ", "\n") for r in rows],
         {"top-1 on task texts": [r["task"]["top1"] for r in rows],
          "top-1 on neutral text": [r["neutral"]["top1"] for r in rows]}, "top-1 agreement with the reference")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
