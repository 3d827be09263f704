"""The lexer over one call's arguments JSON as it streams, for the request lean (decoding/copying.py):
which string or number is being written and whether it is a value or a key, the top-level keys so far, and
whether the arguments' object has closed; and the calls written so far (`Calls`). Owns that state alone; knows nothing
of the request or the tokens."""

from __future__ import annotations

import re

_NUMBER = "-0123456789.eE+"  # what a JSON number is written with (a sign or a digit first)


class ArgStream:
    """One call's arguments, character by character (`feed`)."""

    def __init__(self) -> None:
        self.stack: list[str] = []  # "{" or "[" per open container
        self.expect_key = False  # inside an object, the next string is a key
        self.in_str = self.esc = self.is_value = False
        self.value: str | None = None  # the string value being written (None: escaped, not followed)
        self.closed = False  # this call's arguments have been written whole
        self.keys: set[str] = set()  # its top-level arguments written so far
        self.key = ""  # the last of them: the parameter whose value comes next
        self.last = ""  # the last character outside strings (a value has just been written unless ":{,")
        self.number: str | None = None  # the number value being written, from its first character

    def feed(self, fragment: str) -> None:
        for ch in fragment:
            if self.in_str:
                if self.esc:
                    self.esc = False
                elif ch == "\\":
                    self.esc, self.value = True, None
                elif ch == '"':
                    if not self.is_value and len(self.stack) == 1 and self.value is not None:
                        self.keys.add(self.value)
                        self.key = self.value
                    self.in_str, self.is_value, self.last = False, False, ch
                elif self.value is not None:
                    self.value += ch
            elif ch in _NUMBER and (self.number is not None or (ch in _NUMBER[:11] and not self.expect_key
                                                                 and self.last in (":", "[", ","))):
                self.number = (self.number or "") + ch
            else:
                self.number = None
                self._structure(ch)
            if not self.in_str and not ch.isspace():
                self.last = ch

    def _structure(self, ch: str) -> None:
        """A character outside strings that is no part of a number."""
        if ch == '"':
            self.in_str, self.esc = True, False
            self.is_value = not (self.stack and self.stack[-1] == "{" and self.expect_key)
            self.value = ""
        elif ch in "{[":
            self.stack.append(ch)
            self.expect_key = ch == "{"
        elif ch in "}]":
            if self.stack:
                self.stack.pop()
                self.closed = not self.stack
            self.expect_key = False
        elif ch == ":":
            self.expect_key = False
        elif ch == ",":
            self.expect_key = bool(self.stack) and self.stack[-1] == "{"


class Calls:
    """The calls one response has written so far: how many, the one being written's name and arguments (its ArgStream), the
    names called, and every call's name and arguments lower-cased (`written`: the values used). The request lean
    (copying.Copier) feeds it; its ends (ending.Ending) and a student's holds (asks.Kept) read it."""

    def __init__(self) -> None:
        self.n, self.name, self.args, self.written = 0, "", ArgStream(), ""
        self.called: set[str] = set()

    def begin(self, name: str = "") -> None:
        self.n, self.name, self.args = self.n + 1, name, ArgStream()
        self.called.add(name)
        self.written += " " + name.lower()

    def feed(self, fragment: str) -> None:
        self.written += fragment.lower()
        self.args.feed(fragment)

    def wrote(self, value: str) -> bool:
        """A call written so far holds this value of the request's (lower-cased)."""
        return re.search(rf"(?<![\w.]){re.escape(value)}(?!\w|\.\d)", self.written) is not None
