"""The raw side of side-by-side benchmarks: the default model loaded straight into llama-cpp-python
with the server's settings and threads, and the chat template the server would use."""

from __future__ import annotations

import llama_cpp

from edgeslm.config import get_settings
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import Envelope, envelope_for
from edgeslm.store.registry import Catalog, ModelEntry


def raw_default(threads: int) -> tuple[ModelEntry, llama_cpp.Llama, Envelope, ChatTemplate]:
    settings = get_settings()
    cat = Catalog(settings)
    entry = cat.get("default")
    llm = llama_cpp.Llama(str(cat.ensure_local(entry)), n_ctx=settings.n_ctx, n_batch=settings.n_batch,
                          n_threads=threads, n_threads_batch=threads, verbose=False)
    env = envelope_for(entry.tool_format)
    return entry, llm, env, ChatTemplate(None, entry.chat_format, env, "<bos>")
