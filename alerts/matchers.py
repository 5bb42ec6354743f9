"""Label matchers in Alertmanager syntax: ``name="value"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Regular expressions are fully anchored. A missing label has the value ``""``.

>>> m = parse_matchers(['model="churn"', 'severity=~"warning|critical"', "team!=payments"])
>>> matches(m, {"model": "churn", "severity": "critical", "team": "risk"})
True
>>> matches(m, {"model": "churn", "severity": "info"})
False
>>> str(m[1])
'severity=~"warning|critical"'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        value = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{value}"'


@lru_cache(maxsize=1024)
def parse_matcher(text: str) -> Matcher:
    """One matcher; ValueError says what is wrong."""
    found = _SYNTAX.match(text)
    if found is None:
        raise ValueError(f'invalid matcher {text!r}: use name="value", name!="value", name=~"regex" or name!~"regex"')
    name, op = found.group(1), found.group(2)
    quoted = found.group(3)
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else found.group(4)
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
    return Matcher(name, op, value, regex)


def parse_matchers(texts: Sequence[str]) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t) for t in texts)


def matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
