"""Does the `edgeslm export` folder give edgeslm's answers? transformers + peft load the export (base
checkpoint, PEFT adapter, the tokenizer's chat template) and decode greedily under edgeslm's own
llguidance grammar; their answers are compared with `edgeslm serve` on the held-out calls of the
synthetic workload's convert split, against two references:

- the same weights in llama.cpp in F32 (the Q4_K_M GGUF dequantized, the export's PEFT adapter imported
  back into edgeslm): isolates the export from arithmetic (tests/test_export.py asserts >= 95%);
- the Q4_K_M model edgeslm serves by default, whose kernels quantize activations to 8 bits.

    python -m benchmarks.export_parity [--per-task 25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.synthetic import workload
from edgeslm.config import Settings
from edgeslm.decoding import constraints
from edgeslm.decoding.schemas import Bounds, digit_limits
from edgeslm.decoding.tools import envelope_for
from edgeslm.output import Output
from edgeslm.pipeline.data import split
from edgeslm.types import OutputSpec, ToolSpec

F32 = "gemma-f32@tools"


def held_out(per_task: int = 25) -> list[dict]:
    """The held-out split of each task of the synthetic workload, as `convert` splits it for the gate."""
    calls = workload(per_task, seed=5)
    out = []
    for task in sorted({c["task"] for c in calls}):
        idx = [i for i, c in enumerate(calls) if c["task"] == task]
        out += [calls[i] for i in split(idx, calls)[1]]
    return out


class HFSide:
    """What constraints.build_tokenizer reads from a backend, for a Hugging Face tokenizer."""

    class capabilities:  # noqa: N801 - mirrors Backend.capabilities
        native_vocab = False

    def __init__(self, tok, n_vocab: int):
        self.tok, self.n_vocab = tok, n_vocab
        self.eog_tokens = frozenset({tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")})

    def hf_tokenizer(self):
        return self.tok

    def piece(self, t: int) -> bytes:
        from edgeslm.backends.onnx import hf_token_bytes

        return hf_token_bytes(self.tok, t)


def spec_of(tools: list[dict]) -> OutputSpec:
    return OutputSpec("tools", [ToolSpec(t["function"]["name"], t["function"]["description"], t["function"]["parameters"])
                                for t in tools], "auto")


def hf_answer(model, side, vocab, tok, messages, tools, max_tokens=96) -> tuple[str | None, list]:
    """Greedy decoding through transformers + peft under edgeslm's grammar: forced tokens as forced, the
    mask on the logits, the same digit limits."""
    import torch

    st, env, spec = Settings(), envelope_for("hermes"), spec_of(tools)
    bounds = Bounds(st.max_string_chars, st.max_int_digits, st.max_fraction_digits, numbers_in_schema=False)
    grammar = constraints.grammar_for(spec, env, bounds, st.max_parallel_calls, vocab.markers(env))
    c = constraints.Constraint(vocab, grammar, digit_limits([t.parameters for t in spec.tools], bounds))
    prompt = tok.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
    pending, out, past = tok.encode(prompt, add_special_tokens=False), [], None
    with torch.no_grad():
        while len(out) < max_tokens and not c.finished:
            forced = c.forced(max_tokens - len(out))
            if forced:
                out += forced
                pending += forced
                continue
            r = model(input_ids=torch.tensor([pending]), past_key_values=past, use_cache=True)
            past, logits = r.past_key_values, r.logits[0, -1].float().numpy()
            mask = c.mask()
            if mask is not None:
                allowed = np.unpackbits(mask.view(np.uint8), bitorder="little")[: len(logits)].astype(bool)
                logits = np.where(allowed, logits, -np.inf)
            t = int(np.argmax(logits))
            if t in side.eog_tokens:
                break
            c.consume(t)
            out.append(t)
            pending = [t]
    o = Output(spec, env, [], lambda e: None)
    o.feed(b"".join(side.piece(t) for t in out))
    return o.finish()


def dequantized(src, dst):
    """The GGUF at `src` with every tensor dequantized to F32 (llama.cpp's own quantize, requantizing to
    F32): the weights the export holds, in llama.cpp."""
    import ctypes

    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.allow_requantize, p.nthread = llama_cpp.LLAMA_FTYPE_ALL_F32, True, 2
    with suppress_stdout_stderr(disable=False):
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    if rc:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) on {src}")


def load(out: Path):
    """The export as transformers + peft load it: (model, side, vocab, tokenizer)."""
    import peft
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(out / "base"))
    base = transformers.AutoModelForCausalLM.from_pretrained(str(out / "base"), dtype=torch.float32)
    model = peft.PeftModel.from_pretrained(base, str(out / "adapters" / "tools")).eval()
    side = HFSide(tok, base.config.vocab_size)
    return model, side, constraints.build_tokenizer(side), tok


def add_f32_reference(home: Path, env: dict, out: Path, work: Path) -> None:
    """`gemma-f32` in the store of `home`: the default GGUF dequantized, with the export's adapter as `tools`."""
    from edgeslm.store.registry import Catalog

    cat = Catalog(Settings(home=home))
    dequantized(cat.ensure_local(cat.get("default")), work / "gemma-f32.gguf")
    for cmd in (["models", "import", str(work / "gemma-f32.gguf"), "--id", "gemma-f32"],
                ["adapters", "import", str(out / "adapters" / "tools"), "--base", "gemma-f32", "--task", "tools"]):
        r = subprocess.run([sys.executable, "-m", "edgeslm", *cmd], env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr)


def served(client, model: str, ex: dict):
    r = client.chat.completions.create(model=model, messages=ex["messages"], tools=ex["tools"], temperature=0,
                                       max_tokens=96)
    m = r.choices[0].message
    return m.content, [(c.function.name, json.loads(c.function.arguments)) for c in m.tool_calls or []]


def compare(exported: tuple, client, calls: list[dict], refs: list[str]) -> tuple[dict, list]:
    """Agreements per reference model, and the F32 disagreements (request, served, export)."""
    model, side, vocab, tok = exported
    agree, differ = dict.fromkeys(refs, 0), []
    for ex in calls:
        text, got = hf_answer(model, side, vocab, tok, ex["messages"], ex["tools"])
        mine = (text, [(c.name, json.loads(c.arguments)) for c in got])
        for ref in refs:
            theirs = served(client, ref, ex)
            if mine == theirs:
                agree[ref] += 1
            elif ref == F32:
                differ.append((ex["messages"][-1]["content"], theirs, mine))
    return agree, differ


def main() -> None:
    from openai import OpenAI

    from benchmarks._server import running_server

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-task", type=int, default=25)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="export-parity-"))
    home, out = work / "home", work / "export"
    env = {**os.environ, "EDGESLM_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "edgeslm", "export", str(out), "--to", "vllm"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    add_f32_reference(home, env, out, work)
    calls = held_out(a.per_task)
    with running_server(threads=2, env=env) as base_url:
        client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
        agree, differ = compare(load(out), client, calls, [F32, "default"])
    for ref, n in agree.items():
        print(f"{ref:18s} {n}/{len(calls)} held-out calls answered the same by transformers+peft on the export")
    for d in differ:
        print("  differs from F32:", d)


if __name__ == "__main__":
    main()
