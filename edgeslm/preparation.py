"""Request preparation: everything that can fail because of the request happens here, in the thread
pool, before a job reaches the worker's thread: the adapter it runs under, the prompt tokens (what
fine-tuning trains on too), the context check, and the grammar. A `Job` is the prepared request."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeslm import context
from edgeslm.backends.base import Backend, file_identity
from edgeslm.config import Settings
from edgeslm.decoding import asks, constraints, gbnf, prompt, said, sampler
from edgeslm.decoding.finite import infinite_path
from edgeslm.decoding.schemas import Bounds, digit_limits
from edgeslm.decoding.templates import ChatTemplate
from edgeslm.decoding.tools import (
    Envelope,
)
from edgeslm.errors import (
    ContextTooLong,
    EdgeError,
    GrammarError,
    InvalidRequest,
)
from edgeslm.output import Emit, answered_calls
from edgeslm.store.adapters import NONE, Adapter, AdapterStore
from edgeslm.store.registry import ModelEntry
from edgeslm.types import (
    Message,
    OutputSpec,
    SamplingParams,
    common_prefix,
)

log = logging.getLogger("edgeslm.preparation")



@dataclass
class Job:
    prompt: list[int]
    params: SamplingParams
    spec: OutputSpec
    constraint: constraints.Constraint | gbnf.GbnfConstraint | None
    emit: Emit
    cancelled: threading.Event = field(default_factory=threading.Event)
    fresh: bool = False  # drop the prefix cache in memory first (cold-start measurements)
    disk: bool = True  # the prefix cache on disk may serve it
    # with fresh: this many prompt tokens (what precedes the user's text) are evaluated apart and may be
    # reused as such, so a fresh job's answer still depends on its own prompt alone (pipeline/evaluate.py)
    pin: int = 0
    adapters: list[Adapter] = field(default_factory=list)
    folded: bool = False  # its adapters are folded into the model's weights (store/folded.py): named, never applied
    # earlier calls of the conversation whose results it holds ("name\0arguments", as the grammar writes them)
    answered: list[str] = field(default_factory=list)
    text_constraint: Callable[[], constraints.Constraint] | None = None  # for the answered-repeat fallback
    source: str = ""  # what the user and the tools said: the spans the copy bias leans toward (decoding/copying.py)
    # each offered tool's relevance (the tool lean) and how well the request fits the best (the call lean)
    ranking: said.Ranking = field(default_factory=lambda: said.Ranking({}))
    # after a tool's result: the tokens of each "no tool fits" refusal its adapters declare, which the
    # answer leans away from by call_bias while it follows one (generation.Run; a tool did fit: it has
    # just answered)
    shun: list[list[int]] = field(default_factory=list)
    # on a user's turn, the shun holds a student's questions for a value the request states: a call is due, and the
    # first token leans to one by all of call_bias (a student asks in words its record does not hold: "What is the sender?")
    asked: bool = False
    kinds: dict[str, dict[str, str]] = field(default_factory=dict)  # its adapters' kinds of values (decoding/asks.kinds)
    request_id: str = field(default_factory=context.request_id.get)  # for the worker thread's log lines

    def __post_init__(self):
        # the files as the request found them: a file replaced later is another adapter (base.adapter_key)
        self._adapter_set = [] if self.folded else [(a.gguf, file_identity(a.gguf), 1.0) for a in self.adapters]

    @property
    def adapter_set(self) -> list[tuple]:
        """(GGUF LoRA path, file identity, scale) of the adapters this job decodes under."""
        return self._adapter_set


class Preparer:
    """Requests made into jobs for one model (a ModelWorker holds one): the adapter a request runs under,
    its prompt tokens, the context check and its grammar constraint. Runs in the server's thread pool,
    never on the worker's thread; the worker guards it against unloading (ModelWorker.prepare)."""

    def __init__(self, entry: ModelEntry, settings: Settings, backend: Backend, template: ChatTemplate,
                 specials: prompt.Specials, tokenizer: Any, envelope: Envelope, adapters: list[Adapter],
                 rank: Callable[[str, list], said.Ranking] = said.by_words, folded: Adapter | None = None):
        self.entry, self.settings, self.backend, self.adapters = entry, settings, backend, adapters
        self.folded = folded  # the adapter already in this model's weights (a served copy): the only one it runs
        self.rank = rank  # each offered tool's relevance to a request (ranking.ToolRanker)
        self.template, self.specials, self.tokenizer, self.envelope = template, specials, tokenizer, envelope
        self._warned_default = False  # the missing default adapter is logged once

    def adapter(self, task: str) -> Adapter:
        """A task adapter of this model, looked up in the store now (adapters added while serving work)."""
        if self.folded is not None and task == self.folded.task:
            return self.folded
        if not self.backend.capabilities.lora:
            raise InvalidRequest(f"the backend of '{self.entry.id}' cannot apply adapters", param="adapter")
        return AdapterStore(self.settings.adapters_dir).get(self.entry.id, task, self.entry.sha256)

    def task_for(self, task: str | None) -> str | None:
        """The adapter task a request runs under: the one it names, none for `none`, else the catalog's
        default adapter of this model (when this backend applies adapters and none are fixed). A served
        copy runs its folded adapter only (the engine sends it nothing else)."""
        if self.folded is not None:
            if task not in (None, self.folded.task):
                raise InvalidRequest(f"this copy of '{self.entry.id}' runs adapter '{self.folded.task}' only",
                                     param="adapter")
            return self.folded.task
        if task == NONE:
            return None
        if task:
            return task
        d = self.entry.default_adapter
        if d and not self.adapters and self.backend.capabilities.lora:
            if AdapterStore(self.settings.adapters_dir).has(self.entry.id, d):
                return d
            if not self._warned_default:
                self._warned_default = True
                log.warning("default adapter '%s' of %s is neither in the store nor shipped; serving the bare base",
                            d, self.entry.id)
        return None

    def prompt_tokens(self, messages: list[Message], spec: OutputSpec) -> list[int]:
        """The tokens this model evaluates for these messages (what fine-tuning trains on, too): only
        the template's markup becomes special tokens, never a field's text (decoding/prompt.py)."""
        scrub = self.specials.scrubber()
        text = self.template.render(messages, spec.tools if spec.kind == "tools" else [], scrub)
        add_bos = self.backend.add_bos and not (self.backend.bos_text and text.startswith(self.backend.bos_text))
        tokens = prompt.encode(text, scrub, lambda piece: self.backend.tokenize(piece, add_bos=False))
        return self.backend.tokenize("", add_bos=True) + tokens if add_bos else tokens

    def pinned(self, messages: list[Message], spec: OutputSpec, prompt: list[int]) -> int:
        """How many of `prompt`'s tokens precede the first user message's text: the system prompt and
        tools, the same for every request of a task."""
        first = next((i for i, m in enumerate(messages) if m.role == "user"), len(messages))
        other = self.prompt_tokens(messages[:first] + [Message("user", "x")], spec)
        return max(0, min(common_prefix(prompt, other), len(prompt) - 1))

    def turn_end(self) -> int:
        """The end-of-generation token the chat template closes an assistant turn with."""
        marker = "EDGESLM_TURN_MARKER"
        text = self.template.render([Message("user", "x"), Message("assistant", marker)], [])
        after = self.backend.tokenize(text.split(marker, 1)[1], add_bos=False, special=True)
        for t in after:
            if t in self.backend.eog_tokens:
                return t
        return next(iter(sorted(self.backend.eog_tokens)))

    def job(self, messages: list[Message], spec: OutputSpec, params: SamplingParams, emit: Emit,
            adapter: str | None = None) -> Job:
        """The job these messages make, checked and constrained (errors name the request's field)."""
        task = self.task_for(adapter)
        adapters = [self.adapter(task)] if task else ([] if adapter == NONE else self.adapters)
        tools = spec.tools if spec.kind == "tools" else []
        prompt = self.prompt_tokens(messages, spec)
        room = self.backend.n_ctx - len(prompt)
        if room < 1:
            raise ContextTooLong(
                f"the prompt is {len(prompt)} tokens, but the context of '{self.entry.id}' holds "
                f"{self.backend.n_ctx} (including at least 1 completion token); shorten the messages",
                param="messages",
            )
        if params.max_tokens_given and params.max_tokens > room:
            raise ContextTooLong(
                f"max_tokens is {params.max_tokens}, but the context of '{self.entry.id}' holds {self.backend.n_ctx} "
                f"tokens and the prompt takes {len(prompt)}: at most {room} can be generated; lower max_tokens "
                "or leave it out", param="max_tokens")
        params.max_tokens = min(params.max_tokens, room)
        _finite_or_refuse(spec, tools)
        st = self.settings
        limits = Bounds(st.max_string_chars, st.max_int_digits, st.max_fraction_digits)
        if st.constraint_engine == "gbnf":
            written = gbnf.gbnf_for(spec, self.envelope, limits, st.max_parallel_calls)
            if written is not None:
                return Job(prompt, params, spec, gbnf.GbnfConstraint(
                    self.backend, written, params.temperature, params.top_p, params.seed), emit, adapters=adapters,
                    folded=self.folded is not None)
        limits = dataclasses.replace(limits, numbers_in_schema=False)
        answered = answered_calls(messages, tools) if spec.kind == "tools" and spec.tool_choice == "auto" else []
        marks = self.tokenizer.markers(self.envelope)
        text_grammar = (constraints.grammar_for(dataclasses.replace(spec, tool_choice="none"), self.envelope, limits, 1, marks)
                        if answered else None)
        grammar = constraints.grammar_for(spec, self.envelope, limits, st.max_parallel_calls, marks)
        constraint = None
        if grammar is not None:
            schemas = [spec.schema] if spec.kind == "json" else [t.parameters for t in tools]
            try:
                constraint = constraints.Constraint(self.tokenizer, grammar, digit_limits(schemas, limits))
            except GrammarError as e:
                e.param = e.param or ("response_format" if spec.kind == "json" else "tools")
                raise
        return Job(prompt, params, spec, constraint, emit, adapters=adapters, folded=self.folded is not None,
                   answered=answered,
                   text_constraint=(lambda: constraints.Constraint(self.tokenizer, text_grammar or "")) if answered else None,
                   source=said.source_text(messages) if tools else "", shun=(shun := self._shun(messages, spec, adapters)),
                   asked=bool(shun) and messages[-1].role == "user",
                   kinds={t: k for a in adapters for t, k in asks.kinds(a.manifest).items()} if tools else {},
                   ranking=self._ranking(messages, spec, params, adapters))

    def leans(self) -> bool:
        """Whether a request that sends no lean field gets a tool or call lean (from the default adapter's
        manifest or the catalog): then the tool ranker is worth loading before the first request."""
        task = self.task_for(None)
        try:
            adapters = [self.adapter(task)] if task else []
        except EdgeError:
            adapters = []
        p = sampler.resolve(SamplingParams(max_tokens=1), sampler.layers(adapters, self.entry, self.backend.metadata))
        return bool(p.tool_bias or p.call_bias)

    def _ranking(self, messages: list[Message], spec: OutputSpec, params: SamplingParams,
                 adapters: list[Adapter]) -> said.Ranking:
        """The offered tools ranked for the last user message, when the request decodes with a tool lean
        and the model has a choice of tools, or with a call lean and the model may answer in text (its
        own, or its adapter's or model's default)."""
        if spec.kind != "tools" or spec.tool_choice not in ("auto", "required"):
            return said.Ranking({})
        p = sampler.resolve(params, sampler.layers(adapters, self.entry, self.backend.metadata))
        if not ((p.tool_bias and len(spec.tools) > 1) or (p.call_bias and spec.tool_choice == "auto")):
            return said.Ranking({})
        asked = next((m.content for m in reversed(messages) if m.role == "user" and isinstance(m.content, str)), "")
        if not asked.strip():
            return said.Ranking({})
        ranked = self.rank(asked, spec.tools)
        # after a tool's result the request has been served once already: whether to answer or call again
        # is the model's own (the lean would call the same tool again)
        return ranked if messages[-1].role == "user" else ranked._replace(fit=None)


    def _shun(self, messages: list[Message], spec: OutputSpec, adapters: list[Adapter]) -> list[list[int]]:
        """With the choice left to the model (tool_choice auto), the tokens of what is no answer. After a tool's result,
        each refusal its adapters' manifests declare (`refusals`: what the adapter was trained to say when
        no offered tool fits; the tool it called has just answered), and the opener of a result block (an
        answer that copies the result with its markup into `content`). The shipped adapter's first choice
        after openai-agents' result was "None of the available functions can do that.", its second
        `<tool_response>` and the result again; with both leaned away from, an answer that states it.
        On a user's turn: each question a student was trained to ask for a value (its training record's `asks`) while the
        request states a value of that kind; the first token leans so beside the call lean."""
        if spec.kind != "tools" or spec.tool_choice != "auto" or not messages or messages[-1].role not in ("tool", "user"):
            return []
        if messages[-1].role == "user":  # a student's questions for a value of a kind the request states (decoding/asks.py)
            request = messages[-1].content if isinstance(messages[-1].content, str) else ""
            offered = {t.name for t in spec.tools}
            shun = [q for a in adapters for ask in asks.recorded(a.manifest)
                    if ask.get("tool") in offered and asks.states(request, ask.get("kind")) for q in asks.texts(ask)]
        else:
            said = [a.manifest.get("refusals") for a in adapters]
            shun = [t for r in said if isinstance(r, list) for t in r] + [self.envelope.result_open]
        out: list[list[int]] = []
        for text in [t for t in shun if isinstance(t, str) and t.strip()]:
            ids = self.backend.tokenize(text, add_bos=False, special=True)
            if ids and ids not in out:
                out.append(ids)
        return out


def _finite_or_refuse(spec: OutputSpec, tools: list) -> None:
    """A schema that admits no finite value is the caller's error, found before any grammar or decoding."""
    where = [("response_format", "response_format.json_schema.schema", spec.schema)] if spec.kind == "json" else []
    where += [(f"tools[{i}].function.parameters", f"tools[{i}].function.parameters", t.parameters)
              for i, t in enumerate(tools)]
    for param, path, schema in where:
        why = infinite_path(schema, path) if schema is not None else None
        if why:
            raise GrammarError(f"this schema admits no finite JSON value: {why}", param=param,
                               code="schema_unsatisfiable")
