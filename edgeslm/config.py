"""Settings: one pydantic model, read from EDGESLM_* environment variables.

EDGESLM_HOME moves all state (models, catalog additions, reports). CLI flags override fields
(see the cli/ package); every field carries a description, which is also the flag's help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("edgeslm", appauthor=False))


class _Guards(BaseSettings):
    """The request limits and who may call: each limit a 4xx naming it (wire/limits.py, the guard)."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="Largest request body (bytes); over it: 413.")
    max_messages: int = Field(1024, ge=1, description="Most messages in one request.")
    max_tools: int = Field(128, ge=1, description="Most tools in one request.")
    max_schema_depth: int = Field(48, ge=2, description="Deepest nesting of a tool or response JSON Schema.")
    max_schema_bytes: int = Field(65536, ge=256, description="Largest tool or response JSON Schema, serialized.")
    max_stop_chars: int = Field(1024, ge=1, description="Longest total length of the stop strings of one request.")
    max_json_depth: int = Field(64, ge=4, description="Deepest nesting of any JSON value in a request body.")
    max_content_parts: int = Field(256, ge=1, description="Most content parts in one message.")
    max_text_chars: int = Field(
        1_000_000, ge=1024, description="Most characters of text in one request, all its strings together "
        "(checked before anything is rendered or tokenized)."
    )
    # ---- who may call ----
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key clients must send as 'Authorization: Bearer "
        "KEY' on every route but /health (default: no key; then only localhost should reach the server).",
    )
    allowed_hosts: str = Field(
        "localhost,127.0.0.1,[::1],::1", description="Comma-separated Host header names the server answers "
        "(DNS-rebinding defence); '*' answers any. The bound host is always allowed.",
    )
    upstream_forward_client_auth: bool = Field(
        False, description="Pass the client's own Authorization header to the --upstream teacher when no "
        "--upstream-api-key-env is set (off: the client's credentials never leave this server).",
    )


class Settings(_Guards):
    model_config = SettingsConfigDict(env_prefix="EDGESLM_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Directory holding all edgeslm state.")
    cache_dir: Path | None = Field(
        None, description="Directory for what edgeslm can rebuild (dequantized checkpoints for fine-tuning and "
        "export, grammar vocabularies); default: HOME/cache.",
    )
    default_model: str = Field("default", description="Catalog id served when a request names no known model.")
    host: str = Field("127.0.0.1", description="Interface the server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port the server binds to.")
    threads: int | None = Field(
        None, ge=1, description="Decode threads; default: the physical cores that are free right now."
    )
    n_ctx: int = Field(8192, ge=256, description="Context window (tokens) the model is loaded with.")
    n_batch: int = Field(512, ge=32, description="Prompt tokens evaluated per forward pass.")
    default_max_tokens: int = Field(
        1024, ge=1, description="Completion token cap for requests that send no max_tokens."
    )
    max_parallel_calls: int = Field(
        8, ge=1, description="Most tool calls one response may hold when parallel_tool_calls is on: a safety "
        "bound against loops, above any count BFCL's parallel answers need (8); the model's own end of "
        "its calls decides before it."
    )
    max_string_chars: int = Field(
        1024, ge=1, description="Length bound on JSON strings whose schema sets no maxLength."
    )
    constraint_engine: Literal["llguidance", "gbnf"] = Field(
        "llguidance",
        description="Grammar engine: llguidance (token masks, forced tokens) or llama.cpp's GBNF sampler "
        "(for comparison; auto/none tool choice always use llguidance).",
    )
    fast_forward: bool = Field(
        True, description="Feed the tokens a grammar forces as one batch, without sampling (off: sample "
        "every token, for comparison).",
    )
    max_int_digits: int = Field(
        9, ge=1, le=18, description="Digit bound on JSON numbers whose schema sets no minimum/maximum."
    )
    max_fraction_digits: int = Field(
        6, ge=0, le=15, description="Decimals bound on JSON numbers whose schema sets no multipleOf."
    )
    memory_budget: str | None = Field(
        None, description="Memory the server may use, e.g. 6GB or 512MiB, or ram=6GB,vram=4GB; a model whose memory "
        "plan exceeds either is refused before loading. Default: the RAM available when the model loads, and the "
        "GPU's free VRAM.",
    )
    gpu_layers: str = Field(
        "auto", description="Layers to offload to the GPU: auto (as many as fit the free VRAM, from the memory "
        "plan), all, 0 (CPU only) or a number. Needs a GPU build of llama-cpp-python; a CPU build runs on the CPU.",
    )
    parallel: int = Field(
        4, ge=1, le=64, description="Requests one model decodes at once (slots sharing its n_ctx KV cells); "
        "those on the same adapter set share each forward pass.",
    )
    capture: bool = Field(False, description="S1: log every model call to the capture store (opt-in).")
    capture_key_env: str = Field(
        "EDGESLM_CAPTURE_KEY", description="Environment variable whose value, when set, encrypts captured calls "
        "at rest (AES-GCM), and the curated examples made from them.",
    )
    capture_retention_days: float | None = Field(
        30, ge=0, description="Captured calls older than this many days are deleted (default: 30), and the curated "
        "examples made from them: when each store is next opened, and periodically while the capture is open; "
        "deleted rows are overwritten, with no copy left in a journal. EDGESLM_CAPTURE_RETENTION_DAYS=0 keeps them.",
    )
    curate_names: bool = Field(
        True, description="S2 also replaces person names (edgeslm.names: a probe on the embedded model's hidden "
        "states, loaded with transformers when curation runs); false: names stay as they are, and the report says so.",
    )
    upstream: str | None = Field(
        None, description="Base URL of the teacher LLM (OpenAI-compatible): requests for model 'auto' that the "
        "router does not keep local go there. Without it they are answered by the default model, no adapter.",
    )
    upstream_model: str | None = Field(None, description="Model name sent to the upstream (default: the client's).")
    upstream_api_key_env: str | None = Field(
        None, description="Environment variable holding the upstream API key (default: the client's key is passed on).",
    )
    route_threshold: float | None = Field(
        None, ge=0, le=1, description="Router confidence below which model 'auto' goes to the teacher "
        "(default: the threshold the router was trained with).",
    )
    preempt_after: int = Field(
        32, ge=1, description="Tokens a request decodes before it yields its slot to a waiting request that has "
        "decoded fewer (it resumes where it stopped)."
    )
    prefill_chunk: int = Field(
        256, ge=16, description="Prompt tokens evaluated per scheduler round, in one batch with the other "
        "requests' steps (a long prompt never stalls the streams beside it)."
    )
    prefix_disk_mb: int = Field(
        1024, ge=0, description="Disk (MiB) for KV states of long prompts kept across restarts under HOME/prefixes, "
        "so an agent's first call after a restart starts warm (least recently used leave first; 0: off)."
    )
    prefix_disk_min_tokens: int = Field(
        256, ge=16, description="Prompt tokens a request must evaluate anew before its state is kept on disk."
    )
    flash_attn: bool = Field(
        False, description="llama.cpp's flash attention (off by default: see the README's measurements)."
    )
    kv_type: Literal["f16", "q8_0"] = Field(
        "f16", description="KV cache type: f16, or q8_0 (about half the KV memory; needs --flash-attn; "
        "see the README's measurements for its quality cost)."
    )
    queue_size: int = Field(64, ge=1, description="Requests that may wait for a model before new ones get 503.")
    responses_kept: int = Field(256, ge=0, description="Responses held in memory for previous_response_id (LRU).")
    max_loaded_models: int = Field(2, ge=1, description="Models kept resident at once (least recently used leaves).")
    fold: bool = Field(True, description="Serve a model's default adapter from a copy of the weights with it folded in "
                       "(built once under the cache; adapted weights at Q8_0): decodes at the base's speed, for the "
                       "copy's memory beside the base's, which stays for @none and other adapters.")

    @model_validator(mode="after")
    def _kv_needs_flash(self) -> Settings:
        if self.kv_type != "f16" and not self.flash_attn:
            raise ValueError(f"kv_type {self.kv_type} needs flash_attn: llama.cpp quantizes the V cache only with "
                             "flash attention (add --flash-attn, or keep --kv-type f16)")
        return self

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.home / "cache"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def capture_db(self) -> Path:
        return self.home / "capture" / "calls.db"

    @property
    def curated_db(self) -> Path:
        return self.home / "capture" / "curated.db"

    @property
    def router_path(self) -> Path:
        return self.home / "router" / "router.json"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def user_catalog(self) -> Path:
        return self.home / "models.toml"


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit (non-None) overrides applied."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
