"""S5, finetune: one LoRA per task, trained with peft on the teacher's answers (distillation by
supervised fine-tuning), landed in the adapter store in PEFT and GGUF form.

Owns the training run. The prompt of each example is the exact token sequence `serve` would evaluate
(the served model's chat template and tokenizer); the target is the teacher's tool calls in the
model's tool-call envelope, closed by the end-of-turn token. transformers loads the base straight
from its GGUF (dequantized to float32). Loss is taken on the answer only, and only the answer's
positions go through the 262k-wide output layer, which is most of the model's arithmetic otherwise.

Deterministic: the seed fixes the LoRA init and the batch order. Resumable: every `save_every` steps
the adapter, the optimizer and the step go to a checkpoint; a run with the same data and settings
continues from it. Reads only curated examples, never the raw capture.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeslm.decoding.tools import as_grammar_writes
from edgeslm.errors import InvalidRequest
from edgeslm.pipeline import checkpoint, data, extract
from edgeslm.pipeline.loss import batch_loss, collate, dev_loss, each_loss

CHECKPOINT = checkpoint.NAME


@dataclass
class TrainConfig:
    rank: int = 16
    alpha: int = 32
    modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    # on top of the default adapter (`on_default`, the pipeline's way): pipeline 4's weather student at 2e-3
    # spiked (loss 4.9 at step 13) and its dev loss rose from step 8 on, so it stopped with 8 steps and 0.48
    # held-out; from the bare base, BASE_LR (measured on e-mail triage, below)
    lr: float = 1e-3
    epochs: float = 3.0
    batch: int = 8
    # caps epochs × batches; the dev loss (eval_every) may stop training before. Measured on the
    # e-mail triage task: 16 steps at 1e-3 gave 27% held-out exact match, 32 steps at 2e-3 gave 100%.
    # At 64 (pipeline 8, seed 0) the transfer, cart and e-mail students' dev loss still fell at the last
    # step; 96 steps without the prefix's gradient take about the time 64 took with it
    max_steps: int | None = 96
    seed: int = 0
    save_every: int = 10
    # False: each example's prompt is evaluated under the LoRA without gradients and only the answer
    # backpropagates (~3x cheaper per token on long tool prompts; the prompt's keys and values are
    # exactly what serving computes, only their gradient is dropped). True: the shared-prefix batches,
    # their prefix with gradients or (`prefix_grad` False) without: measured on the transfer task's
    # 8 tools (a ~900-token shared prefix, ~125 tokens a row), 17-24 s a step with, 12-14 s without
    prompt_grad: bool = True
    prefix_grad: bool = False
    # with dev examples: their loss every `eval_every` steps; training stops after `patience` evaluations
    # without improvement and the best state is kept
    eval_every: int = 8
    patience: int = 2
    # a dev loss within this share above the best is no worse: the later, more trained state is kept and
    # training goes on. A task's dev loss is about 0.01 by step 8 and wanders by half of it: at 0 (session
    # 31, seed 0) schedule_delivery stopped at step 24 keeping step 8's state, 0.78 held-out where 64 steps
    # had given 0.97
    tolerance: float = 0.5
    # the conversion pipeline adds this many copies of each captured training call with its stated values
    # swapped for other captured calls' (widen.swap_values); 0: none
    swaps: int = 1
    # and for these shares of them, a copy with an optional value left out (widen.drop_optional) and one
    # that lacks a required value and asks for it (widen.ask_missing)
    drop: float = 0.2
    ask: float = 0.1
    # and one with an enum value stated in the request and taken by the call (widen.state_enum)
    enums: float = 0.3
    # and one with its request worded otherwise (pipeline/rephrase.py: by the teacher where an upstream is
    # configured, else by rule); 0 until a 3-seed convert run measures it on the hand-written calls
    reword: float = 0.0
    # and for this share of the copies above, one that ends on its last value with no full stop
    # (widen.bare_end); 0 until a convert run measures it (the order student wrote "1290387entire")
    bare: float = 0.0
    # the weight in the loss of the tokens that decide a call's shape (`decisions`: the token that closes
    # a value and goes on to another argument or closes the call, the one after a call that ends the turn
    # or begins another), against 1 for every other token the model chooses. A transfer answer has ~40
    # chosen tokens, 22 of them an IBAN's digits, and one that decides whether the stated reference
    # comes. At 1 (pipeline 8, seed 0), 15 of the transfer student's 16 held-out misses left the reference
    # out (0.73 exact); at 4, with 96 steps, none of its 4 did (0.93; same data and seed)
    decisions: int = 4
    # the pipeline trains the student on top of the model's default adapter (pipeline/stack.py); False:
    # on the bare base
    on_default: bool = True
    # full fine-tuning (FunctionGemma's cookbook's other arm, at a low `lr`): every weight of `modules` in
    # every layer trains, and the adapter written is their change cut to `rank` by SVD (pipeline/extract.py,
    # `alpha` unused), so what serves it is unchanged; False: a LoRA of `rank` and `alpha`
    full: bool = False


_DATA_FIELDS = ("on_default", "drop", "ask", "enums", "reword", "decisions", "bare")
BASE_LR = 2e-3  # a LoRA on the bare base (on_default False): the format is still to learn
# full fine-tuning's learning rate where none is given: FunctionGemma's cookbook trains every weight at
# about this, 40x below a LoRA's (the tools sweep's v2-nogold-fullft-full uses it)
FULL_LR = 5e-5


def _need_torch():
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise InvalidRequest("fine-tuning needs torch, transformers and peft: pip install -e '.[pipeline]'",
                             param="finetune") from None


def encode(worker, example: dict, settings, decisions: int = 1) -> tuple[list[int], list[int], list]:
    """(prompt tokens exactly as served, answer tokens: the teacher's calls in the envelope + end of turn,
    split into tokens the way the served grammar lets them come out, and which of those the model
    chooses: the loss skips the tokens the grammar forces, which the model is never asked for). With
    `decisions` > 1 the third part is each token's weight instead: 0 forced, `decisions` for a chosen
    token that decides the call's shape (shape_tokens), else 1."""
    messages, spec, params = data.request(example, settings)
    prompt = worker.preparer.prompt_tokens(messages, spec)
    schemas = {t.name: t.parameters for t in spec.tools}
    calls = [(c["name"], as_grammar_writes(c["arguments"], schemas.get(c["name"]))) for c in data.teacher_calls(example)]
    text = worker.envelope.render(calls) if calls else (example["answer"].get("content") or "")
    job = worker.prepare(messages, spec, params, lambda ev: None, adapter="none")  # the grammar; no adapter lookup
    answer = constrained_tokens(worker, job.constraint, text.encode()) if job.constraint is not None else None
    if job.constraint is not None:
        job.constraint.close()
    if answer is None:
        # a text answer is the teacher's text: never control tokens (as serving treats every field)
        tokens = worker.backend.tokenize(text, add_bos=False, special=bool(calls))
        answer = (tokens, [True] * len(tokens))
    ids, free = answer[0] + [worker.preparer.turn_end()], answer[1] + [True]
    if decisions == 1 or not calls:
        return prompt, ids, free
    shape = shape_tokens([worker.tokenizer.table[t] for t in ids[:-1]], free[:-1]) + [True]
    return prompt, ids, [0 if not f else decisions if d else 1 for f, d in zip(free, shape, strict=True)]


def shape_tokens(pieces: list[bytes], free: list[bool]) -> list[bool]:
    """For each chosen piece of a rendered call envelope, whether it decides the call's shape: it holds a
    `,` or closing bracket of the arguments' JSON outside a string (the value ends here, and another
    argument comes or the call closes), or it is the first chosen piece after a call's JSON closed
    (another call begins; where the turn ends instead, the caller's end of turn decides)."""
    out, depth, in_str, esc, after = [], 0, False, False, False
    for piece, chosen in zip(pieces, free, strict=True):
        decides, text = after and chosen, piece.decode("utf-8", "replace")
        if decides:
            after = False
        for ch in text:
            if in_str:
                esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
            elif ch == '"' and depth:
                in_str = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]" and depth:
                depth -= 1
                decides = True
                after = depth == 0
            elif ch == "," and depth:
                decides = True
        out.append(decides and chosen)
    return out


def encode_split(worker, examples: list[dict], settings, cfg: TrainConfig,
                 widen: Callable[[list[dict]], list[dict]] | None = None) -> tuple[list[tuple], list[tuple]]:
    """(training pairs, dev pairs) of a task's training examples: with `cfg.eval_every`, 15% of them (by
    content hash) become the dev split whose loss decides when training stops. `widen` adds examples made
    from the training part only (augmentation), so none is a copy of a dev example."""
    fit, dev = data.split(list(range(len(examples))), examples, held_out=0.15) if cfg.eval_every else (
        list(range(len(examples))), [])
    train = [examples[i] for i in fit]
    train = widen(train) if widen else train
    return ([encode(worker, e, settings, cfg.decisions) for e in train],
            [encode(worker, examples[i], settings, cfg.decisions) for i in dev])


def constrained_tokens(worker, constraint, target: bytes) -> tuple[list[int], list[bool]] | None:
    """`target` as the tokens constrained decoding produces it: where the grammar forces tokens, those
    (llguidance's fast-forward splits text its own way); elsewhere the token the tokenizer would start
    the rest with, or else the longest allowed token that fits. Training on another split of the same
    text teaches the model token sequences the grammar never lets it see (measured: an adapter trained
    on the plain tokenization answered every enum with its first value). None if the grammar refuses
    `target`. With each token: True when the model chose it, False when the grammar forced it."""
    table = worker.tokenizer.table
    index = _token_index(worker)
    longest = max(map(len, index))
    out, free, rest = [], [], target
    try:
        while rest:
            m = constraint.mask()
            allowed = (lambda t: True) if m is None else (lambda t, m=m: (int(m[t >> 5]) >> (t & 31)) & 1)
            first = worker.backend.tokenize(rest.decode("utf-8", "ignore"), add_bos=False)[:1]
            pick = first[0] if first and rest.startswith(table[first[0]]) and allowed(first[0]) else None
            if pick is None:
                pick = next((index[rest[:n]] for n in range(min(longest, len(rest)), 0, -1)
                             if rest[:n] in index and allowed(index[rest[:n]])), None)
            if pick is None:
                return None
            constraint.consume(pick)
            out.append(pick)
            free.append(m is None or _choices(m) > 1)
            rest = rest[len(table[pick]):]
            for t in constraint.forced(len(rest) + 8):
                if not rest.startswith(table[t]):
                    return None
                out.append(t)
                free.append(False)
                rest = rest[len(table[t]):]
    except Exception:  # noqa: BLE001 - a grammar error means this target cannot come out constrained
        return None
    return out, free


def _choices(mask) -> int:
    """How many tokens a bitmask allows (stops counting at 2)."""
    nz = mask[mask != 0]
    if len(nz) > 1:
        return 2
    return bin(int(nz[0]) & 0xFFFFFFFF).count("1") if len(nz) else 0


def _token_index(worker) -> dict[bytes, int]:
    index = getattr(worker, "_token_index", None)
    if index is None:
        index = {}
        for t, b in enumerate(worker.tokenizer.table):
            if b and b not in index and t not in worker.backend.eog_tokens:
                index[b] = t
        worker._token_index = index
    return index


def no_worse(dev_loss: float, best: float, tolerance: float) -> bool:
    """Whether a dev loss counts as no worse than the best so far (TrainConfig.tolerance)."""
    return dev_loss < best or (tolerance > 0 and dev_loss <= best * (1 + tolerance))


def _batches(n: int, cfg: TrainConfig) -> list[list[int]]:
    import random

    rng = random.Random(cfg.seed)
    per_epoch = max(1, -(-n // cfg.batch))
    total = max(1, round(cfg.epochs * per_epoch))
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    out: list = []
    order: list = []
    while len(out) < total:
        if len(order) < cfg.batch:
            fresh = list(range(n))
            rng.shuffle(fresh)
            order += fresh
        out.append(order[: cfg.batch])
        order = order[cfg.batch:]
    return out


def train(base_gguf: Path, pairs: list[tuple], out: Path, cfg: TrainConfig, progress=None,
          fingerprint: dict | None = None, dev: list[tuple] | None = None, cache: Path | None = None,
          under: Path | None = None) -> dict:
    """Train a LoRA (or, with `cfg.full`, the weights themselves) on `pairs` (prompt, answer tokens[, chosen
    flags], as encode() makes them); the PEFT adapter goes to `out`. Resumes from
    `out/checkpoint` when it was written for the same data and settings. Returns the training record.
    `cache`: where the dequantized base is kept (default: Settings().cache). `under`: a PEFT LoRA folded
    into the base first (pipeline/stack.py); the adapter written is then the delta on top of it."""
    _need_torch()
    import peft
    import torch

    if not pairs:
        raise InvalidRequest("no training examples", param="finetune")
    # as JSON stores it (tuples become lists), so a checkpoint's fingerprint compares equal
    # the trainer's settings; what only shapes the data (_DATA_FIELDS) shows in the pairs and in the
    # caller's fingerprint, and leaving it out keeps checkpoints written before those fields existed valid
    config = {k: v for k, v in asdict(cfg).items() if k not in _DATA_FIELDS and not (k in ("full", "tolerance") and not v)
              and not (k == "prefix_grad" and not cfg.prompt_grad)}  # no prefix to one example at a time
    fingerprint = json.loads(json.dumps({**(fingerprint or {}), "config": config, "n": len(pairs),
                                         "pairs": checkpoint.pairs_hash(pairs)}))
    done = out / "edgeslm_training.json"
    if done.is_file() and (out / "adapter_model.safetensors").is_file():  # finished for this data and settings
        record = json.loads(done.read_text())
        if checkpoint.matches(record, fingerprint, subset=True):
            return record
    ckpt = out / CHECKPOINT
    t0 = time.perf_counter()
    base = _base(base_gguf, cache, under)
    # after loading: a first load draws from torch's generator (from_pretrained's init), a cached one not
    torch.manual_seed(cfg.seed)
    originals = extract.trainable(base, cfg.modules) if cfg.full else None
    model = base if cfg.full else peft.get_peft_model(base, peft.LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, target_modules=list(cfg.modules), lora_dropout=0.0))
    try:
        record = _run(model, pairs, out, cfg, progress, fingerprint, dev, originals, t0)
    finally:
        if originals is not None:  # the cached base as it was, for the next run
            extract.restore(base, originals)
    (out / "edgeslm_training.json").write_text(json.dumps(record))
    shutil.rmtree(ckpt, ignore_errors=True)
    return record


def _run(model, pairs, out, cfg, progress, fingerprint, dev, originals, t0: float) -> dict:
    """The training loop, from the checkpoint when there is one; writes the adapter to `out` and returns
    the record. `originals`: full fine-tuning's base weights (pipeline/extract.py), else None."""
    import torch

    ckpt = out / CHECKPOINT
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    batches = _batches(len(pairs), cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5) * max(0.1, 1 - s / len(batches)))
    start, losses, state, resumed_best = checkpoint.resume(ckpt, fingerprint, model, opt, sched)
    load_s = time.perf_counter() - t0
    model.train()
    evals = state.get("evals", []) if start else []
    best = resumed_best  # (dev loss, step, LoRA state) of the best evaluation so far
    stopped = None
    for step in range(start, len(batches)):
        if cfg.prompt_grad:
            loss = batch_loss(model, collate([pairs[i] for i in batches[step]]), cfg.prefix_grad)
            loss.backward()
        else:
            loss = torch.tensor(each_loss(model, [pairs[i] for i in batches[step]]))
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(round(float(loss.detach()), 5))
        if progress is not None:
            progress(step + 1, len(batches), losses[-1])
        if dev and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == len(batches)):
            model.eval()
            d = round(dev_loss(model, dev), 5)
            model.train()
            evals.append({"step": step + 1, "dev_loss": d})
            if best is None or no_worse(d, best[0], cfg.tolerance):
                best = (min(d, best[0]) if best else d, step + 1,
                        {k: v.detach().clone() for k, v in checkpoint.weights(model).items()})
            elif sum(e["step"] > best[1] for e in evals) >= cfg.patience:
                stopped = step + 1
                break
        if (step + 1) % cfg.save_every == 0 and step + 1 < len(batches):
            checkpoint.save(model, opt, sched, ckpt, step + 1, losses, fingerprint, evals, best)
    if best is not None:
        checkpoint.load_weights(model, best[2])
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    kept = None
    if originals is not None:
        kept = extract.save_lora(model, originals, cfg.modules, cfg.rank, out)
    else:
        model.save_pretrained(str(out))
        model.unload()  # the cached base, without this task's LoRA layers, for the next task
    record = {"steps": len(batches), "stopped_at": stopped, "best_step": best[1] if best else None,
              "dev_loss": next((e["dev_loss"] for e in evals if best and e["step"] == best[1]), None), "evals": evals,
              "resumed_from": start, "examples": len(pairs), "loss_first": losses[0],
              "loss_last": losses[-1], "losses": losses, "load_s": round(load_s, 2),
              "train_s": round(time.perf_counter() - t0 - load_s, 2), **fingerprint}
    if kept is not None:
        record["kept"] = kept  # the share of the weights' change the rank-`rank` LoRA holds
    return record


_BASES: dict[str, object] = {}


def _base(base_gguf: Path, cache: Path | None, under: Path | None = None):
    """The base as transformers dequantizes it from its GGUF (store/dequantized.py: ~45 s the first time,
    ~2 s from the cache), with `under` merged in, loaded once per process: every task's LoRA is wrapped
    around it and unloaded again after training."""
    import peft
    import torch
    import transformers

    from edgeslm.config import get_settings
    from edgeslm.store import dequantized

    key = f"{base_gguf.resolve()}+{under.resolve() if under else ''}"
    if key in _BASES and hasattr(_BASES[key], "peft_config"):
        del _BASES[key]  # a run stopped by an exception left its LoRA layers in it
    if key not in _BASES:
        _BASES.clear()
        ckpt = dequantized.checkpoint(base_gguf, cache or get_settings().cache)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(ckpt), dtype=torch.float32)
        if under is not None:
            model = peft.PeftModel.from_pretrained(model, str(under)).merge_and_unload()
        model.config.use_cache = False
        _BASES[key] = model
    return _BASES[key]
