"""OpenAI's embeddings (`POST /v1/embeddings`): the request's inputs as token lists, and the answer.

Inputs may be a string, a list of strings, a list of token ids, or a list of such lists (token ids of
the embedding model's own vocabulary). Vectors come back as floats or as base64 of little-endian
float32, as OpenAI's clients ask by default; `usage` counts the tokens embedded. Each input is
checked (empty, too long for the model, a token outside its vocabulary) before any is embedded.
"""

from __future__ import annotations

import base64
import struct
from typing import Literal

from pydantic import Field

from edgeslm.backends.embedding import Embedder
from edgeslm.errors import InvalidRequest
from edgeslm.wire.protocol import _Loose


class EmbeddingsRequest(_Loose):
    model: str = "default"
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


def tokens_of(req: EmbeddingsRequest, model: Embedder, max_inputs: int) -> list[list[int]]:
    given: list = [req.input] if isinstance(req.input, str) else list(req.input)
    items: list[str | list[int]] = [given] if given and all(isinstance(t, int) for t in given) else given
    if not items:
        raise InvalidRequest("input is empty; send a string, strings, or token ids", param="input", code="empty_input")
    if len(items) > max_inputs:
        raise InvalidRequest(f"input holds {len(items)} items; the limit is {max_inputs} (max_messages)", param="input",
                             code="too_many_inputs")
    if req.dimensions is not None and req.dimensions != model.dims:
        raise InvalidRequest(f"'{model.name}' embeds in {model.dims} dimensions; it cannot give {req.dimensions} "
                             f"(send dimensions={model.dims} or leave it out)", param="dimensions", code="invalid_value")
    out = []
    for i, item in enumerate(items):
        param = "input" if isinstance(req.input, str) or len(items) == 1 else f"input[{i}]"
        if not item:
            raise InvalidRequest(f"{param} is empty; send text or at least one token", param=param, code="empty_input")
        tokens = model.tokenize(item) if isinstance(item, str) else [int(t) for t in item]
        model.check(tokens, param)
        out.append(tokens)
    return out


def answer(req: EmbeddingsRequest, model: Embedder, vectors: list[list[float]], tokens: int) -> dict:
    def encode(v: list[float]):
        return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if req.encoding_format == "base64" else v

    return {"object": "list", "model": model.name,
            "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
