"""Parity: llama.cpp with a converted LoRA against transformers + peft on the same base.

A LoRA is trained here for a few steps with peft (deterministic seed) on the base that transformers
dequantizes from the embedded GGUF, saved in PEFT form, and converted by edgeslm's writer.

- On the dequantized base itself (edgeslm.quantize.gguf_write.rewrite writes the same numbers as an F32 GGUF),
  llama.cpp base+adapter must pick the same next token as transformers+peft on at least 99% of 20
  fixed prompts; the largest logit difference is printed.
- On the served Q4_K_M base, llama.cpp's quantized arithmetic already moves the base's logits by
  up to ~3 and flips near-ties, so there the adapter's effect is compared instead: the same on both
  sides (correlation > 0.98, scale within 5%), adding no top-1 disagreement beyond the base's own.
- Removing the adapter restores the base logits exactly."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the test extra installs torch, transformers and peft
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from benchmarks._lora import train
from edgeslm.backends import open_backend
from edgeslm.config import Settings
from edgeslm.quantize.gguf_write import rewrite
from edgeslm.store.lora_gguf import convert
from edgeslm.store.registry import Catalog
from tests.cores import THREADS

TRAIN = ["SELECT name FROM users WHERE age > 30;", "SELECT id, total FROM orders WHERE total > 100;",
         "SELECT count(*) FROM events WHERE kind = 'click';", "SELECT email FROM users ORDER BY created DESC;"]
PROMPTS = [f"Write SQL for question {i}: list the {w} of every" for i, w in enumerate(
    ["names", "ids", "emails", "orders", "totals", "cities", "events", "clicks", "users", "items",
     "prices", "dates", "tags", "titles", "owners", "scores", "teams", "files", "pages", "notes"])]


@pytest.fixture(scope="module")
def trained(home, tmp_path_factory):
    cat = Catalog(Settings(home=home))
    gguf_path = Path(cat.ensure_local(cat.get("default")))
    peft_dir = tmp_path_factory.mktemp("peft")
    model = train(gguf_path, TRAIN, peft_dir)
    tok = open_backend(gguf_path, "gguf", n_ctx=256, n_threads=THREADS)
    lora = peft_dir / "adapter.gguf"
    convert(peft_dir, gguf_path, lora)
    prompts = [tok.tokenize(p, add_bos=True) for p in PROMPTS]
    tok.close()
    with torch.no_grad():
        ref = [model(input_ids=torch.tensor([p])).logits[0, -1].numpy() for p in prompts]
        with model.disable_adapter():
            ref_base = [model(input_ids=torch.tensor([p])).logits[0, -1].numpy() for p in prompts]
    f32 = rewrite(gguf_path, peft_dir / "base-f32.gguf", "F32")  # the very weights transformers computed with
    return gguf_path, lora, prompts, ref, ref_base, f32


def _logits(backend, prompts):
    out = []
    for p in prompts:
        backend.reset()
        backend.prefill(p)
        out.append(np.array(backend.logits(), copy=True))
    return out


def _with_and_without(model, lora, prompts, ref):
    """llama.cpp's logits of `model` alone, with the LoRA, and alone again; top-1 agreement and max
    |difference| of the adapted logits against the reference `ref`."""
    b = open_backend(model, "gguf", n_ctx=256, n_threads=THREADS)
    base = _logits(b, prompts)
    b.set_adapters([(lora, 1.0)])
    adapted = _logits(b, prompts)
    b.set_adapters([])
    again = _logits(b, prompts)
    b.close()
    agree = np.mean([a.argmax() == r.argmax() for a, r in zip(adapted, ref)])
    delta = max(float(np.abs(a - r).max()) for a, r in zip(adapted, ref))
    return base, adapted, again, agree, delta


def test_on_the_dequantized_base_llamacpp_with_the_lora_picks_what_peft_picks(trained, capsys):
    _, lora, prompts, ref, ref_base, f32 = trained
    base, _, again, agree, delta = _with_and_without(f32, lora, prompts, ref)
    base_delta = max(float(np.abs(a - r).max()) for a, r in zip(base, ref_base))
    moved = max(float(np.abs(r - x).max()) for r, x in zip(ref, ref_base))
    with capsys.disabled():
        print(f"\nLoRA parity on the dequantized base (F32 GGUF), {len(prompts)} prompts: top-1 {agree:.0%}, "
              f"max |dlogit| {delta:.4f} with the adapter, {base_delta:.4f} without (the adapter moves logits "
              f"by up to {moved:.2f})")
    assert moved > 0.5  # the trained adapter does something
    assert agree >= 0.99
    assert delta < 0.05 * moved  # far closer to peft than the adapter's own effect
    assert all(np.array_equal(x, y) for x, y in zip(again, base))  # removing it restores the base exactly


def test_on_the_served_q4_k_m_base_the_adapter_has_the_same_effect(trained, capsys):
    gguf_path, lora, prompts, ref, ref_base, _ = trained
    base, adapted, again, agree, delta = _with_and_without(gguf_path, lora, prompts, ref)
    base_agree = np.mean([a.argmax() == r.argmax() for a, r in zip(base, ref_base)])
    base_delta = max(float(np.abs(a - r).max()) for a, r in zip(base, ref_base))
    # the adapter's own effect on the logits, on each side: what the conversion must preserve
    ours = np.concatenate([a - x for a, x in zip(adapted, base)])
    theirs = np.concatenate([r - x for r, x in zip(ref, ref_base)])
    corr = float(np.corrcoef(ours, theirs)[0, 1])
    scale = float(np.dot(ours, theirs) / np.dot(theirs, theirs))
    with capsys.disabled():
        print(f"\nLoRA on the Q4_K_M base, {len(prompts)} prompts: base+adapter top-1 {agree:.0%}, max |dlogit| {delta:.3f}; "
              f"base alone top-1 {base_agree:.0%}, max |dlogit| {base_delta:.3f}; adapter effect "
              f"correlation {corr:.4f}, scale {scale:.3f} (peft moves logits by up to "
              f"{float(np.abs(theirs).max()):.2f})")
    assert np.abs(theirs).max() > 0.5  # the trained adapter does something
    assert corr > 0.98 and 0.95 < scale < 1.05  # llama.cpp applies the same update peft trained
    assert agree >= base_agree - 0.05  # the adapter adds no disagreement beyond the base's quantization
    assert all(np.array_equal(x, y) for x, y in zip(again, base))  # removing it restores the base exactly
