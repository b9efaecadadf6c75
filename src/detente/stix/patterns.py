"""STIX 2.1 patterns: a fast checker in front of ``stix2-patterns``.

Why hand-written: ``stix2patterns.validator.run_validator`` (an ANTLR parser) costs ~416 µs
per pattern, thirty times the whole ingest budget of an object.  Most real patterns are one
bracketed comparison or a few joined by AND/OR, so this module answers those itself:

(1) one compiled regex for the commonest shape, ``[type:path = 'string']``;
(2) otherwise a small tokenizer and recursive-descent parser for the same grammar
    (``STIXPattern.g4``: observation expressions, AND/OR/FOLLOWEDBY, qualifiers, every
    comparison operator, ``[*]`` index steps, all literal kinds);
(3) the two semantic checks ``run_validator`` adds after parsing, replicated exactly: hash
    values of known algorithms must match their regex, and a qualifier type may not be
    applied twice directly to one ``[...]``.

The fast path answers :data:`Verdict.UNKNOWN` whenever the input leaves the subset it is
sure about (comments, unusual whitespace, numeric index steps, lone ``-``/``+``/``!``,
unterminated strings, bad escapes...), and :func:`check_pattern` then asks
``stix2-patterns``.  ``tests/stix/test_patterns_equivalence.py`` proves with hypothesis that
whenever the fast path answers, its answer is ``run_validator``'s.
"""

from __future__ import annotations

import enum
import re
from typing import Final, Generic, NamedTuple, TypeVar

from stix2patterns.v21.object_validator import HASHES_REGEX

from detente.stix.errors import PatternError

__all__ = [
    "Verdict",
    "check_pattern",
    "fast_check",
    "simple_comparisons",
    "slow_check",
]


class Verdict(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    UNKNOWN = "unknown"


_V = TypeVar("_V")

#: A path step: a property name, or ``None`` for the ``[*]`` index step.
PathStep = str | None

_WS = "[ \\t\\r\\n]*"
_ID = "[A-Za-z_][A-Za-z0-9_]*"
_QUICK: Final = re.compile(
    rf"{_WS}\[{_WS}([A-Za-z_][A-Za-z0-9_-]*):({_ID})((?:\.(?:{_ID}|'[^'\\\\]*'))*)"
    rf"{_WS}={_WS}'([^'\\\\]*)'{_WS}\]{_WS}"
)
_QUICK_STEP: Final = re.compile(rf"\.({_ID}|'[^'\\\\]*')")
_ID_RE: Final = re.compile(_ID)

_TOKEN: Final = re.compile(
    r"""
     (?P<ws>[ \t\r\n]+)
    |(?P<ts>t'\d{4}-(?:0[1-9]|1[012])-(?:0[1-9]|[12]\d|3[01])
        T(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?Z')
    |(?P<hex>h'(?:[0-9A-Fa-f]{2})*')
    |(?P<bin>b'(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)')
    |(?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    |(?P<str>'(?:[^'\\]|\\['\\])*')
    |(?P<fltp>\+?[0-9]*\.[0-9]+)
    |(?P<fltn>-[0-9]*\.[0-9]+)
    |(?P<intp>\+?(?:0|[1-9][0-9]*))
    |(?P<intn>-(?:0|[1-9][0-9]*))
    |(?P<op><=|>=|<>|!=|==|[=<>])
    |(?P<punct>[:.,()\[\]*])
    """,
    re.VERBOSE,
)

_KEYWORDS: Final = frozenset(
    {
        "AND", "OR", "NOT", "FOLLOWEDBY", "LIKE", "MATCHES", "ISSUPERSET", "ISSUBSET",
        "EXISTS", "LAST", "IN", "START", "STOP", "SECONDS", "WITHIN", "REPEATS", "TIMES",
    }
)  # fmt: skip
_ORDERABLE: Final = frozenset({"intp", "intn", "fltp", "fltn", "str", "bin", "hex", "ts"})
_PRIMITIVE: Final = _ORDERABLE | {"bool"}
_STRING_OPS: Final = frozenset({"LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"})
#: stix2-patterns' hash regexes, compiled once (same ``re.match`` semantics).
_HASH_RE: Final = {name: re.compile(entry[0]) for name, entry in HASHES_REGEX.items()}
_NAMES: Final = {
    "id": "an object type", "idh": "an object type", "eof": "the end of the pattern",
    "intp": "a positive integer", "fltp": "a positive number", "ts": "a t'...' timestamp",
}  # fmt: skip
_HASH_NAMES: Final = {
    "MD5": "MD5", "SHA1": "SHA-1", "SHA224": "SHA-224", "SHA256": "SHA-256",
    "SHA384": "SHA-384", "SHA512": "SHA-512", "SHA3224": "SHA3-224", "SHA3256": "SHA3-256",
    "SHA3384": "SHA3-384", "SHA3512": "SHA3-512", "SSDEEP": "SSDEEP", "TLSH": "TLSH",
}  # fmt: skip


class _Unknown(Exception):
    """The fast path is not sure: ask stix2-patterns."""


class _Reject(Exception):
    """The pattern is certainly invalid; the argument says why and where."""


class _Comparison(NamedTuple):
    type: str
    path: tuple[PathStep, ...]
    op: str  # "=", "!=", "<", ..., "IN", "LIKE", ...; "NOT " prefix when negated
    kind: str  # token kind of the value ("str", "intp", "set", ...)
    text: str  # the value as ANTLR's getText() renders it (no whitespace)


# -- tokenizer ------------------------------------------------------------------------------


def _tokenize(pattern: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos, end = 0, len(pattern)
    while pos < end:
        m = _TOKEN.match(pattern, pos)
        if m is None:
            raise _Unknown  # a character or construct outside the fast subset
        kind, text, start = m.lastgroup or "", m.group(), pos
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "ident":
            kind = _ident_kind(text)
        elif kind in ("op", "punct"):
            kind = text
        tokens.append((kind, text, start))
    tokens.append(("eof", "", end))
    return tokens


def _ident_kind(text: str) -> str:
    if "-" in text:
        return "idh"
    if text in _KEYWORDS:
        return text
    if text in ("true", "false"):
        return "bool"
    return "id"


# -- parser ---------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the STIXPattern.g4 grammar (same language, no tree)."""

    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.out: list[_Comparison] = []

    def peek(self) -> str:
        return self.tokens[self.i][0]

    def take(self, *kinds: str) -> str:
        kind, text, _ = self.tokens[self.i]
        if kind not in kinds:
            raise self.error(" or ".join(_NAMES.get(k, k) for k in kinds))
        self.i += 1
        return text

    def error(self, expected: str) -> _Reject:
        _, text, offset = self.tokens[self.i]
        got = repr(text) if text else "the end of the pattern"
        return _Reject(f"expected {expected} at offset {offset}, got {got}")

    def pattern(self) -> list[_Comparison]:
        self.observations()
        self.take("eof")
        return self.out

    def observations(self) -> None:
        self.observation_or()
        while self.peek() == "FOLLOWEDBY":
            self.i += 1
            self.observation_or()

    def observation_or(self) -> None:
        self.observation_and()
        while self.peek() == "OR":
            self.i += 1
            self.observation_and()

    def observation_and(self) -> None:
        self.observation()
        while self.peek() == "AND":
            self.i += 1
            self.observation()

    def observation(self) -> None:
        simple = self.peek() == "["
        if simple:
            self.i += 1
            self.comparison_or()
            self.take("]")
        else:
            self.take("(", "[")
            self.observations()
            self.take(")")
        seen: set[str] = set()
        while self.peek() in ("WITHIN", "REPEATS", "START"):
            qualifier = self.qualifier()
            if simple and qualifier in seen:  # run_validator's duplicate-qualifier rule
                raise _Reject(f"duplicate qualifier type encountered: {qualifier}")
            seen.add(qualifier)

    def qualifier(self) -> str:
        kind = self.take("WITHIN", "REPEATS", "START")
        if kind == "WITHIN":
            self.take("intp", "fltp")
            self.take("SECONDS")
            return "WITHIN"
        if kind == "REPEATS":
            self.take("intp")
            self.take("TIMES")
            return "REPEATS"
        self.take("ts")
        self.take("STOP")
        self.take("ts")
        return "STARTSTOP"

    def comparison_or(self) -> None:
        self.comparison_and()
        while self.peek() == "OR":
            self.i += 1
            self.comparison_and()

    def comparison_and(self) -> None:
        self.prop_test()
        while self.peek() == "AND":
            self.i += 1
            self.prop_test()

    def prop_test(self) -> None:
        kind = self.peek()
        if kind == "(":
            self.i += 1
            self.comparison_or()
            self.take(")")
            return
        if kind == "EXISTS":
            self.i += 1
            self.object_path()
            return
        obj_type, path = self.object_path()
        negated = self.peek() == "NOT"
        if negated:
            self.i += 1
        op, value_kind, text = self.operator_and_value()
        self.out.append(
            _Comparison(obj_type, path, ("NOT " if negated else "") + op, value_kind, text)
        )

    def operator_and_value(self) -> tuple[str, str, str]:
        op_kind, op_text, _ = self.tokens[self.i]
        self.i += 1
        if op_kind in ("=", "==", "!=", "<>"):
            return op_text, *self.literal(_PRIMITIVE)
        if op_kind in ("<", "<=", ">", ">="):
            return op_text, *self.literal(_ORDERABLE)
        if op_kind == "IN":
            return "IN", "set", self.set_literal()
        if op_kind in _STRING_OPS:
            return op_kind, *self.literal(frozenset({"str"}))
        self.i -= 1
        raise self.error("a comparison operator")

    def literal(self, kinds: frozenset[str]) -> tuple[str, str]:
        kind, text, _ = self.tokens[self.i]
        if kind not in kinds:
            raise self.error("a literal value")
        self.i += 1
        return kind, text

    def set_literal(self) -> str:
        parts = [self.take("(")]
        if self.peek() != ")":
            parts.append(self.literal(_PRIMITIVE)[1])
            while self.peek() == ",":
                parts.append(self.take(","))
                parts.append(self.literal(_PRIMITIVE)[1])
        parts.append(self.take(")"))
        return "".join(parts)

    def object_path(self) -> tuple[str, tuple[PathStep, ...]]:
        obj_type = self.take("id", "idh")
        self.take(":")
        steps: list[PathStep] = [self.path_name()]
        while True:
            kind = self.peek()
            if kind == ".":
                self.i += 1
                steps.append(self.path_name())
            elif kind == "[" and self.tokens[self.i + 1][0] != "*":
                raise _Unknown  # numeric index steps: stix2-patterns' inspector is fragile there
            elif kind == "[":
                self.i += 2
                self.take("]")
                steps.append(None)
            else:
                return obj_type, tuple(steps)

    def path_name(self) -> str:
        kind, text, _ = self.tokens[self.i]
        if kind == "id":
            self.i += 1
            return text
        if kind == "str":
            self.i += 1
            return _inspector_unquote(text)
        raise self.error("a property name")


def _inspector_unquote(token: str) -> str:
    """Exactly stix2-patterns' ``_string_literal_to_string`` (used for path components)."""
    return token[1:-1].replace("\\'", "'").replace("\\\\", "\\")


def _unescape(token: str) -> str:
    """The value of a StringLiteral token (``\\'`` and ``\\\\`` are the only escapes)."""
    if "\\" not in token:
        return token[1:-1]
    return _ESCAPE.sub(r"\1", token[1:-1])


_ESCAPE: Final = re.compile(r"\\(['\\])")


# -- checks run_validator adds after parsing -------------------------------------------------


def _check_hashes(comparisons: list[_Comparison]) -> None:
    """stix2-patterns' ``object_validator.verify_object``, replicated exactly."""
    for c in comparisons:
        if "hashes" not in c.path:
            continue
        selector = c.path[-1]
        if selector is None:
            continue
        hash_type = selector.upper().replace("-", "").replace("'", "")
        regex = _HASH_RE.get(hash_type)
        if regex is not None:
            value = c.text.replace("'", "")
            if not regex.match(value):
                raise _Reject(f"{value!r} is not a valid {selector} hash")


# -- public API -----------------------------------------------------------------------------


def _quick(pattern: str) -> list[_Comparison] | None:
    m = _QUICK.fullmatch(pattern)
    if m is None:
        return None
    obj_type, first, rest, value = m.groups()
    steps: list[PathStep] = [first]
    for step in _QUICK_STEP.findall(rest):
        if step.startswith("'"):
            steps.append(step[1:-1])
        elif step in _KEYWORDS or step in ("true", "false"):
            return None
        else:
            steps.append(step)
    if obj_type in _KEYWORDS or first in _KEYWORDS or obj_type in ("true", "false"):
        return None
    if first in ("true", "false"):
        return None
    return [_Comparison(obj_type, tuple(steps), "=", "str", f"'{value}'")]


class _Recent(Generic[_V]):
    """A two-generation memo of the most recent patterns (at least the last ``size``).

    On the intake path every indicator's pattern is parsed twice — to validate it, then
    for its claims (trust, echo detection) — a batch apart at most; remembering the
    last few thousand parses makes the second one free.  Values are immutable tuples."""

    __slots__ = ("new", "old", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.new: dict[str, _V] = {}
        self.old: dict[str, _V] = {}

    def get(self, key: str) -> _V | None:
        found = self.new.get(key)
        return found if found is not None else self.old.get(key)

    def put(self, key: str, value: _V) -> None:
        if len(self.new) >= self.size:
            self.old, self.new = self.new, {}
        self.new[key] = value


#: at least the last 8,192 accepted patterns (an intake batch is 5,000 objects at most)
_PARSED: Final[_Recent[tuple[_Comparison, ...]]] = _Recent(8192)
#: the same for :func:`simple_comparisons` (None: not a simple pattern)
_SIMPLE: Final[_Recent[tuple[tuple[str, str, str], ...] | None]] = _Recent(8192)


def _parse(pattern: str) -> tuple[_Comparison, ...]:
    """Parse with the fast path; raises _Reject (certainly invalid) or _Unknown."""
    cached = _PARSED.get(pattern)
    if cached is not None:
        return cached
    comparisons = _quick(pattern)
    if comparisons is None:
        comparisons = _Parser(_tokenize(pattern)).pattern()
    _check_hashes(comparisons)
    parsed = tuple(comparisons)
    _PARSED.put(pattern, parsed)
    return parsed


def fast_check(pattern: str) -> tuple[Verdict, str | None]:
    """The fast path alone: (ACCEPT, None), (REJECT, reason) or (UNKNOWN, None)."""
    try:
        _parse(pattern)
    except _Reject as exc:
        return Verdict.REJECT, str(exc)
    except _Unknown:
        return Verdict.UNKNOWN, None
    return Verdict.ACCEPT, None


def slow_check(pattern: str) -> str | None:
    """stix2-patterns' verdict: None when valid, else its first error message."""
    from stix2patterns.validator import run_validator

    try:
        errors: list[str] = run_validator(pattern, stix_version="2.1")
    except Exception as exc:  # the ANTLR tooling crashes on a few inputs (e.g. "")
        return f"pattern could not be parsed ({type(exc).__name__})"
    if not errors:
        return None
    return str(errors[0]).removeprefix("FAIL: ")


def check_pattern(pattern: str, *, where: str, path: str = "pattern") -> None:
    """Raise :class:`PatternError` unless ``pattern`` is a valid STIX 2.1 pattern."""
    verdict, reason = fast_check(pattern)
    if verdict is Verdict.ACCEPT:
        return
    if verdict is Verdict.UNKNOWN:
        reason = slow_check(pattern)
        if reason is None:
            return
    raise PatternError(where, path, f"not a valid STIX 2.1 pattern: {reason}")


def simple_comparisons(pattern: str) -> list[tuple[str, str, str]] | None:
    """The (type, property path, value) of a pattern made only of ``=`` comparisons.

    Returns None unless the fast path accepts the pattern and every comparison is a plain
    ``=``/``==`` against a string or integer (no NOT, no other operator, no EXISTS).  The
    structure around the comparisons (AND/OR, observations, qualifiers) is ignored: each
    comparison names one observable.  Paths are rendered canonically (identifiers bare,
    other names quoted, ``[*]`` for index steps); a ``hashes.<algorithm>`` path uses the
    STIX vocabulary name (``hashes.'SHA-256'``) and a lower-case value.  Duplicates are
    dropped, order kept.
    """
    if pattern in _SIMPLE.new or pattern in _SIMPLE.old:
        cached = _SIMPLE.get(pattern)
        return None if cached is None else list(cached)
    found = _simple(pattern)
    _SIMPLE.put(pattern, None if found is None else tuple(found))
    return found


def _simple(pattern: str) -> list[tuple[str, str, str]] | None:
    try:
        parsed = _parse(pattern)
    except (_Reject, _Unknown):
        return None
    result: list[tuple[str, str, str]] = []
    for c in parsed:
        if c.op not in ("=", "==") or c.kind not in ("str", "intp", "intn"):
            return None
        item = _canonical(c)
        if item not in result:
            result.append(item)
    return result


def _canonical(c: _Comparison) -> tuple[str, str, str]:
    value = _unescape(c.text) if c.kind == "str" else str(int(c.text))
    known = _PATHS.get(c.path)
    if known is None:
        known = _canonical_path(c.path)
        if len(_PATHS) >= 4096:
            _PATHS.clear()
        _PATHS[c.path] = known
    path, lower = known
    return c.type, path, value.lower() if lower else value


#: canonical paths already rendered (a feed's patterns use a handful); emptied when full
_PATHS: Final[dict[tuple[PathStep, ...], tuple[str, bool]]] = {}


def _canonical_path(path: tuple[PathStep, ...]) -> tuple[str, bool]:
    """A path rendered canonically, and whether its value is compared lower-case (a
    ``hashes.<algorithm>`` path other than SSDEEP and TLSH)."""
    steps = list(path)
    lower = False
    if len(steps) == 2 and steps[0] == "hashes" and steps[1] is not None:
        name = _HASH_NAMES.get(steps[1].upper().replace("-", "").replace("_", ""))
        if name is not None:
            steps[1] = name
            lower = name not in ("SSDEEP", "TLSH")
    return _render_path(steps), lower


def _render_path(steps: list[PathStep]) -> str:
    out: list[str] = []
    for n, step in enumerate(steps):
        if step is None:
            out.append("[*]")
            continue
        name = step if _ID_RE.fullmatch(step) else "'" + step.replace(
            "\\", "\\\\").replace("'", "\\'") + "'"
        out.append(name if n == 0 else "." + name)
    return "".join(out)
