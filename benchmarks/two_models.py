"""Decode speed of the default model alone, then with a second model resident (two worker threads in
one engine), in one process.

    python -m benchmarks.two_models [--runs 3] [--threads 2]

The second model is a copy of the base with the `tools` LoRA merged in and quantized to Q4_K_M (built
here, ~8 s), imported into a temporary home. Each side answers the same story prompt with 128 greedy
tokens (`default@none`); the figure is the engine's own tokens/s of the answer, median of the runs.
What it shows: whether a second resident model slows the first (libgomp throttled two OpenMP teams to
~0.6x before every decode ran on one thread, backends/compute.COMPUTE). What it cannot: two models
decoding at the same moment share the cores whatever the threading. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks._chart import bars


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/two_models.json"))
    args = ap.parse_args(argv)

    from edgeslm.config import Settings
    from edgeslm.engine import Engine
    from edgeslm.pipeline import data
    from edgeslm.quantize.gguf_write import quantize, rewrite
    from edgeslm.store.adapters import AdapterStore
    from edgeslm.store.registry import Catalog

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shipped = Settings()
        cat = Catalog(shipped)
        entry = cat.get("default")
        base = cat.ensure_local(entry)
        lora = AdapterStore(shipped.adapters_dir).get(entry.id, "tools", entry.sha256).gguf
        merged = quantize(rewrite(base, work / "m-f16.gguf", "F16", merge=lora), work / "m.gguf", "Q4_K_M", args.threads)
        settings = Settings(home=work / "home", threads=args.threads, parallel=1)
        Catalog(settings).import_gguf(merged, "merged")
        engine = Engine(settings)
        story = {"messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]}

        def rate(name: str) -> float:
            w = engine.worker(name)
            got = [w.run(*data.request(story, settings, max_tokens=128), adapter="none" if name == "default" else None)
                   .timings["tokens_per_s"] for _ in range(args.runs)]
            return statistics.median(got)

        try:
            figs = {"default alone": rate("default")}
            figs["second model, beside it"] = rate("merged")
            figs["default, second model resident"] = rate("default")
        finally:
            engine.close()
    for k, v in figs.items():
        print(f"{k:<34}{v:>8.1f} tok/s")
    ratio = figs["default, second model resident"] / figs["default alone"]
    print(f"default with a second model resident / alone: {ratio:.3f}x")
    result = {"benchmark": "two_models", "threads": args.threads, "runs": args.runs, "tokens_per_s": figs, "ratio": ratio}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    bars(args.out.with_suffix(".png"), "Decode with a second model resident (medians)", ["decode tok/s"],
         {k: [v] for k, v in figs.items()}, "tokens/s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
