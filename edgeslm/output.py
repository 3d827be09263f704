"""Output parsing: a request's sampled bytes become text or tool-call events. Owns the auto-mode
decision (text, calls, or text then calls: the text goes to `content` and the calls to `tool_calls`,
so the envelope's marker never reaches `content`), repeated-call detection, the conversation's
answered calls, and stop strings matched in time linear in the text (StopMatcher)."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable

from edgeslm.decoding.copying import Copier
from edgeslm.decoding.parsing import parser_for
from edgeslm.decoding.tools import Envelope, as_grammar_writes, new_call_id
from edgeslm.types import Message, OutputSpec, ToolCall

# Events a job emits, in order: ("text", str) | ("call", index, id, name) | ("args", index, str)
# and finally exactly one of ("done", Generation) | ("error", EdgeError).
Emit = Callable[[tuple], None]


class Output:
    """Turns sampled bytes into text or tool-call events; decides auto-mode text vs calls."""

    def __init__(self, spec: OutputSpec, env: Envelope, stop: list[str], emit: Emit, answered: tuple | list = (),
                 copier: Copier | None = None):
        self.env, self.emit = env, emit
        self.copier = copier  # follows the arguments as they stream (JSON envelopes only)
        self.answered = list(answered)
        self.repeated_answered = False
        self.stop = stop if spec.kind != "json" else []  # stop strings never cut grammar-bound JSON
        self.stopper, self.scanned = StopMatcher(self.stop), 0
        self.stopped_by: str | None = None  # the stop string that ended the text
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # everything decoded so far
        self.sent = 0  # how much of self.text has been emitted as content
        self.parser = parser_for(env)  # used once the output turns out to be calls
        self.ids: list[str] = []
        self.said: str | None = None  # the text before the calls, when text came first
        # with tools offered (auto), text turns into calls at the marker (which the grammar allows nowhere else)
        self.watch, self.looked = spec.kind == "tools" and spec.tool_choice == "auto", 0  # text[:looked]: no marker
        self._seen: list[str] = list(self.answered)  # completed calls as "name\0arguments"
        self._current: str = ""
        self._held: list[tuple] = []
        if spec.kind == "tools" and spec.tool_choice not in ("auto", "none"):
            self.mode = "calls"
            self.parser = parser_for(env)
        elif spec.kind == "tools":
            self.mode = "undecided"
        else:
            self.mode = spec.kind  # "text" or "json"

    def _could_call(self) -> bool:
        return self.env.start.startswith(self.text.lstrip(" \t\r\n"))

    def feed(self, data: bytes) -> bool:
        """Take a token's bytes; True when a stop string ended the output."""
        delta = self.decoder.decode(data)
        self.text += delta
        if self.mode == "undecided":
            if self.text.startswith(self.env.start):
                self.mode, self.parser = "calls", parser_for(self.env)
                delta = self.text
            elif self._could_call():
                return False
            else:
                self.mode = "text"
        if self.mode == "text" and self.watch:
            delta = self._said_then_call() or delta
        if self.mode == "calls":
            return self._feed_calls(delta)
        upto = markable(self.text, self.env.marker, self.sent) if self.mode == "text" and self.watch else len(self.text)
        if self.mode == "text" and self.stop:
            hit = self.stopper.feed(self.text, self.scanned)
            self.scanned = len(self.text)
            if hit >= 0:
                self.stopped_by = max((x for x in self.stopper.stops if self.text.startswith(x, hit)), key=len, default=None)
                self.text = self.text[:hit]
                self.watch = False
                self._flush(len(self.text))
                return True
            upto = min(upto, len(self.text) - self.stopper.hold)
        self._flush(upto)
        return False

    def _said_then_call(self) -> str | None:
        """Where the marker appears in text, the text before it (less trailing whitespace) is the content
        and the output turns into calls: the call text from the marker on, to parse; else None."""
        marker = self.env.marker
        at = self.text.find(marker, max(self.looked - len(marker) + 1, 0))
        if at < 0:
            self.looked = len(self.text)
            return None
        self.said = self.text[:at].rstrip(" \t\r\n") or None
        self._flush(len(self.said or ""))
        self.mode, self.parser = "calls", parser_for(self.env)
        return self.text[at:]

    def _feed_calls(self, delta: str) -> bool:
        """Stream call events, holding back a call while it repeats an earlier one so far.

        Small models loop on calls; an exact repeat within one response is never useful, so the
        output ends before it (and a streaming client never sees it)."""
        for ev in self.parser.feed(delta):
            if self.copier is not None and ev[0] in ("name", "args"):
                self.copier.begin(ev[2]) if ev[0] == "name" else self.copier.feed(ev[2])
            if ev[0] == "name":
                self.ids.append(new_call_id())
                self._current, self._held = ev[2] + "\0", [("call", ev[1], self.ids[ev[1]], ev[2])]
            elif ev[0] == "args":
                self._current += ev[2]
                self._held.append(ev)
            elif self._current in self._seen:  # complete, and identical to an earlier call
                self.parser.calls.pop()
                # an answer already begun in text keeps it; else the answer is decoded again as text
                self.repeated_answered = self._current in self.answered and self.said is None
                return True
            else:
                self._seen.append(self._current)
            if self._held and not any(c.startswith(self._current) for c in self._seen):
                for held in self._held:
                    self.emit(held)
                self._held = []
        return False

    def _flush(self, upto: int) -> None:
        if upto > self.sent:
            self.emit(("text", self.text[self.sent : upto]))
            self.sent = upto

    def finish(self) -> tuple[str | None, list[ToolCall]]:
        self.text += self.decoder.decode(b"", final=True)
        if self.mode == "calls":
            calls = [ToolCall(self.ids[i], name, args) for i, (name, args) in enumerate(self.parser.calls)]
            return self.said, calls
        if self.mode == "undecided":
            self.mode = "text"
        self._flush(len(self.text))
        return self.text, []


def markable(text: str, marker: str, sent: int) -> int:
    """How much of `text` may be emitted while a call may still follow it: not a tail that may open the
    marker, nor the whitespace before that (the content of text then a call is the text without it)."""
    end = len(text)
    for k in range(min(len(marker) - 1, end), 0, -1):
        if text.endswith(marker[:k]):
            end -= k
            break
    while end > sent and text[end - 1] in " \t\r\n":
        end -= 1
    return end


class StopMatcher:
    """Finds the first stop string in text that grows at its end, in time linear in the text: one
    Knuth-Morris-Pratt automaton per stop string, each fed every new character once."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.fail = [self._table(s) for s in self.stops]
        self.state = [0] * len(self.stops)

    @staticmethod
    def _table(s: str) -> list[int]:
        fail, k = [0] * len(s), 0
        for i in range(1, len(s)):
            while k and s[i] != s[k]:
                k = fail[k - 1]
            if s[i] == s[k]:
                k += 1
            fail[i] = k
        return fail

    def feed(self, text: str, start: int) -> int:
        """Scan text[start:]; the index where the earliest-ending stop string begins, or -1."""
        for pos in range(start, len(text)):
            c, hit = text[pos], -1
            for i, s in enumerate(self.stops):
                k, fail = self.state[i], self.fail[i]
                while k and s[k] != c:
                    k = fail[k - 1]
                if s[k] == c:
                    k += 1
                if k == len(s):  # of the stops ending here, the longest (earliest start) wins
                    hit = pos + 1 - len(s) if hit < 0 else min(hit, pos + 1 - len(s))
                    k = fail[k - 1]
                self.state[i] = k
            if hit >= 0:
                return hit
        return -1

    @property
    def hold(self) -> int:
        """Characters at the end that may begin a stop string (held back from the stream)."""
        return max(self.state, default=0)


def answered_calls(messages: list[Message], tools: list) -> list[str]:
    """The calls made since the user's last message that a tool message answered, as "name\0arguments"
    the way the grammar writes them (keys in the schema's order, ", " and ": " separators), for the
    repeat check. Calls from earlier user turns may be made again (polling, a question asked again)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    recent = messages[last_user + 1:]
    results = {m.tool_call_id for m in recent if m.role == "tool" and m.tool_call_id}
    schemas = {t.name: t.parameters for t in tools}
    out = []
    for m in recent:
        for c in (m.tool_calls or []) if m.role == "assistant" else []:
            if c.id in results:
                try:
                    args = json.loads(c.arguments or "{}")
                except ValueError:
                    continue
                if isinstance(args, dict):
                    out.append(f"{c.name}\0{as_grammar_writes(args, schemas.get(c.name))}")
    return out
