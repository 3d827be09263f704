"""The training loss (pipeline/finetune.py): cross-entropy of the answer tokens the model chooses, each
weighted (finetune.encode: the tokens that decide a call's shape may weigh more), in two forms that give
the same number. Shared-prefix batches (`batch_loss`): the prompts' common prefix (an agent's system
prompt and tools) is evaluated once, with gradients or without, and its keys and values repeated for
every row. One example at a time (`each_loss`): the prompt goes into a cache without gradients and only
the answer backpropagates, ~3x cheaper on long prompts that share nothing. Only answer positions go through
the 262k-wide output layer.
"""

from __future__ import annotations

from edgeslm.types import common_prefix


def inner(model):
    """The transformers model under a PEFT wrapper (full fine-tuning trains it bare)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def weights(example: tuple) -> list[float]:
    """Each answer token's weight in the loss: the example's third part (0 for a token the grammar
    forces, which the model is never asked for; a bool or a number), else 1 for every token."""
    return [float(w) for w in example[2]] if len(example) > 2 else [1.0] * len(example[1])


def collate(examples: list[tuple], pad: int = 0):
    """One batch of (prompt, answer[, each answer token's weight]): the prompts' longest common prefix (an
    agent's system prompt and tool list, most of each prompt), evaluated once, then every example's rest
    after it, right-padded. Returns (prefix, rest ids, mask over prefix + rest, positions of the rest, for
    each target token the (row, column) of the rest that predicts it, the target tokens, their weights)."""
    import torch

    prompts = [e[0] for e in examples]
    n = min(min(len(p) for p in prompts) - 1, len(common_prefix_all(prompts)))
    rests = [e[0][n:] + e[1] for e in examples]
    width = max(map(len, rests))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rests])
    mask = torch.tensor([[1] * (n + len(r)) + [0] * (width - len(r)) for r in rests])
    rows, cols, targets, ws = [], [], [], []
    for i, e in enumerate(examples):
        p, a = e[0], e[1]
        start = len(p) - n  # the rest's column of the first answer token
        for j, (tok, w) in enumerate(zip(a, weights(e), strict=False)):
            if w:
                rows.append(i)
                cols.append(start - 1 + j)
                targets.append(tok)
                ws.append(w)
    positions = torch.arange(n, n + width).unsqueeze(0).expand(len(examples), -1)
    return (torch.tensor([prompts[0][:n]]), ids, mask, positions, torch.tensor(rows), torch.tensor(cols),
            torch.tensor(targets), torch.tensor(ws))


def common_prefix_all(seqs: list[list[int]]) -> list[int]:
    first = seqs[0]
    n = min(map(len, seqs))
    for s in seqs[1:]:
        n = min(n, common_prefix(first, s))
    return first[:n]


def batch_loss(model, batch, prefix_grad: bool = True):
    """Weighted mean cross-entropy of the answer tokens. The prefix is evaluated once (with gradients,
    or without: `prefix_grad` False, ~1.4x cheaper a step on the pipeline's tool prompts, as serving
    computes the same keys and values) and its keys and values repeated for every row; only answer
    positions go through the output layer."""
    import torch
    from transformers import DynamicCache

    prefix, ids, mask, positions, rows, cols, targets, ws = batch
    base = inner(model)
    cache = DynamicCache()
    with torch.set_grad_enabled(prefix_grad and torch.is_grad_enabled()):
        base.model(input_ids=prefix, cache=cache, use_cache=True)
    cache.batch_repeat_interleave(len(ids))
    hidden = base.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache,
                         use_cache=True).last_hidden_state
    logits = base.lm_head(hidden[rows, cols])
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    each = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
    return (each * ws).sum() / ws.sum()


def each_loss(model, examples: list[tuple]):
    """Weighted mean cross-entropy over the chosen answer tokens of `examples`, one example at a time: the
    prompt (all but its last token) under no_grad into a cache, then its last token and the answer with
    gradients, backpropagated example by example (when gradients are on). Returns the mean loss."""
    import torch
    from transformers import DynamicCache

    base = inner(model)
    cap = getattr(base.config, "final_logit_softcapping", None)
    total, n = 0.0, sum(sum(weights(e)) for e in examples)
    for e in examples:
        prompt, answer = e[0], e[1]
        ws = weights(e)
        cache = DynamicCache(config=base.config)
        with torch.no_grad():
            base.model(input_ids=torch.tensor([prompt[:-1]]), past_key_values=cache, use_cache=True)
        ids = torch.tensor([prompt[-1:] + answer[:-1]])
        pos = torch.arange(len(prompt) - 1, len(prompt) - 1 + ids.shape[1]).unsqueeze(0)
        hidden = base.model(input_ids=ids, position_ids=pos, past_key_values=cache, use_cache=True).last_hidden_state
        cols = [j for j, w in enumerate(ws) if w]
        if not cols:
            continue
        logits = base.lm_head(hidden[0, cols])
        if cap:
            logits = torch.tanh(logits / cap) * cap
        each = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([answer[j] for j in cols]),
                                                 reduction="none")
        loss = (each * torch.tensor([ws[j] for j in cols])).sum() / max(1.0, n)
        if torch.is_grad_enabled():
            loss.backward()
        total += float(loss.detach())
    return total


def dev_loss(model, pairs: list[tuple]) -> float:
    """Weighted mean loss per chosen answer token on `pairs`, no gradients."""
    import torch

    with torch.no_grad():
        return each_loss(model, pairs)
