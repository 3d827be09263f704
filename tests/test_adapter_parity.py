"""Parity: llama.cpp with a converted LoRA against transformers + peft on the same base.

A LoRA is trained here for a few steps with peft (deterministic seed) on the base that transformers
dequantizes from the embedded GGUF, saved in PEFT form, imported through edgeslm's converter, and
applied by llama.cpp to the Q4_K_M base. The adapter's effect on the logits must be the same on both
sides (correlation > 0.98, scale within 5%), and base+adapter must agree with peft at top-1 as well as
the bases agree with each other (the issue's 99% is not reachable here: llama.cpp's Q4_K_M arithmetic
and transformers' dequantized fp32 base already disagree on some of these prompts; the test prints
both). Removing the adapter restores the base logits exactly."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the test extra installs torch, transformers and peft
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from edgeslm.backends import open_backend  # noqa: E402
from edgeslm.config import Settings  # noqa: E402
from edgeslm.store.lora_gguf import convert  # noqa: E402
from edgeslm.store.registry import Catalog  # noqa: E402

TRAIN = ["SELECT name FROM users WHERE age > 30;", "SELECT id, total FROM orders WHERE total > 100;",
         "SELECT count(*) FROM events WHERE kind = 'click';", "SELECT email FROM users ORDER BY created DESC;"]
PROMPTS = [f"Write SQL for question {i}: list the {w} of every" for i, w in enumerate(
    ["names", "ids", "emails", "orders", "totals", "cities", "events", "clicks", "users", "items",
     "prices", "dates", "tags", "titles", "owners", "scores", "teams", "files", "pages", "notes"])]


@pytest.fixture(scope="module")
def trained(home, tmp_path_factory):
    cat = Catalog(Settings(home=home))
    gguf_path = Path(cat.ensure_local(cat.get("default")))
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                              torch_dtype=torch.float32)
    cfg = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    model = peft.get_peft_model(model, cfg)
    tok = open_backend(gguf_path, "gguf", n_ctx=256, n_threads=2)
    batch = [tok.tokenize(t, add_bos=True) for t in TRAIN]
    width = max(map(len, batch))
    ids = torch.tensor([b + [0] * (width - len(b)) for b in batch])
    mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in batch])
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    for _ in range(4):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    peft_dir = tmp_path_factory.mktemp("peft")
    model.save_pretrained(str(peft_dir))
    lora = peft_dir / "adapter.gguf"
    convert(peft_dir, gguf_path, lora)
    prompts = [tok.tokenize(p, add_bos=True) for p in PROMPTS]
    tok.close()
    with torch.no_grad():
        ref = [model(input_ids=torch.tensor([p])).logits[0, -1].numpy() for p in prompts]
        with model.disable_adapter():
            ref_base = [model(input_ids=torch.tensor([p])).logits[0, -1].numpy() for p in prompts]
    return gguf_path, lora, prompts, ref, ref_base


def _logits(backend, prompts):
    out = []
    for p in prompts:
        backend.reset()
        backend.prefill(p)
        out.append(np.array(backend.logits(), copy=True))
    return out


def test_llamacpp_with_the_converted_lora_matches_peft(trained, capsys):
    gguf_path, lora, prompts, ref, ref_base = trained
    b = open_backend(gguf_path, "gguf", n_ctx=256, n_threads=2)
    base = _logits(b, prompts)
    b.set_adapters([(lora, 1.0)])
    adapted = _logits(b, prompts)
    b.set_adapters([])
    again = _logits(b, prompts)
    b.close()
    agree = np.mean([a.argmax() == r.argmax() for a, r in zip(adapted, ref)])
    delta = max(float(np.abs(a - r).max()) for a, r in zip(adapted, ref))
    base_agree = np.mean([a.argmax() == r.argmax() for a, r in zip(base, ref_base)])
    base_delta = max(float(np.abs(a - r).max()) for a, r in zip(base, ref_base))
    # the adapter's own effect on the logits, on each side: what the conversion must preserve
    ours = np.concatenate([a - x for a, x in zip(adapted, base)])
    theirs = np.concatenate([r - x for r, x in zip(ref, ref_base)])
    corr = float(np.corrcoef(ours, theirs)[0, 1])
    scale = float(np.dot(ours, theirs) / np.dot(theirs, theirs))
    with capsys.disabled():
        print(f"\nLoRA parity over {len(prompts)} prompts: base+adapter top-1 {agree:.0%}, max |dlogit| {delta:.3f}; "
              f"base alone top-1 {base_agree:.0%}, max |dlogit| {base_delta:.3f}; adapter effect "
              f"correlation {corr:.4f}, scale {scale:.3f} (peft moves logits by up to "
              f"{float(np.abs(theirs).max()):.2f})")
    assert np.abs(theirs).max() > 0.5  # the trained adapter does something
    assert corr > 0.98 and 0.95 < scale < 1.05  # llama.cpp applies the same update peft trained
    assert agree >= base_agree - 0.05  # the adapter adds no disagreement beyond the base's quantization
    assert all(np.array_equal(x, y) for x, y in zip(again, base))  # removing it restores the base exactly
