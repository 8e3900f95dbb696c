"""Audience rules over profile features: a small fluent builder that round-trips to JSON.

>>> rule = (interest("Sci-Fi") > 0.3) & (feature("country") == "UK")
>>> Rule.from_json(rule.to_json()) == rule
True

JSON form (what the CLI and API accept)::

    {"all": [{"interest": "Sci-Fi", "op": ">", "value": 0.3},
             {"feature": "country", "op": "==", "value": "UK"}]}

Nodes: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``, ``{"segment": "At risk"}``,
``{"feature"|"interest": NAME, "op": OP, "value": V}`` with OP one of ``== != > >= < <= in
not_in between is_null not_null``.

Profile column names vary with the features built; :func:`resolve_column` finds ``interest``
columns under the usual spellings (``interest_Sci-Fi``, ``interest:sci-fi``, ...) and a missing
column is an error that lists the columns there are, never an empty audience.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from limelight.errors import LimelightError

OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "between", "is_null", "not_null")
SEGMENT_COLUMNS = ("segment", "segment_name", "segment_label", "rfm_segment", "segment_id",
                   "segment_description")


class RuleError(LimelightError):
    """An audience rule is malformed or names a feature the profiles do not have."""


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", str(name).lower())


def resolve_column(frame: pd.DataFrame, name: str, kind: str = "feature") -> str:
    """The profile column meant by ``name`` (exact, then interest spellings, then normalised)."""
    if kind == "feature" and name in frame.columns:
        return name
    candidates = [name] if kind == "feature" else [
        f"interest_{name}", f"interest:{name}", f"interest.{name}", f"interests.{name}",
        f"affinity_{name}", name]
    for c in candidates:
        if c in frame.columns:
            return c
    wanted = {_norm(c) for c in candidates}
    for col in frame.columns:
        if _norm(col) in wanted:
            return str(col)
    shown = ", ".join(map(str, list(frame.columns)[:30]))
    raise RuleError(f"profiles have no {kind} {name!r}; columns include: {shown}")


class Rule:
    """Base of rule nodes; combine with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Rule) -> Rule:
        return AllOf((self, other))

    def __or__(self, other: Rule) -> Rule:
        return AnyOf((self, other))

    def __invert__(self) -> Rule:
        return Not(self)

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        """Boolean Series over ``profiles``' index: who matches."""
        raise NotImplementedError

    def references(self) -> set[tuple[str, str]]:
        """(kind, name) of every column or segment the rule reads."""
        children = getattr(self, "rules", None) or (
            (self.rule,) if hasattr(self, "rule") else ())
        out: set[tuple[str, str]] = set()
        for child in children:
            out |= child.references()
        if isinstance(self, Condition):
            out.add((self.kind, self.name))
        elif isinstance(self, SegmentIs):
            out.add(("segment", self.name))
        return out

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Rule:
        """Parse the JSON form (see the module docstring)."""
        if not isinstance(data, dict):
            raise RuleError(f"a rule must be a JSON object, got {data!r}")
        if "all" in data:
            return AllOf(tuple(Rule.from_dict(d) for d in data["all"]))
        if "any" in data:
            return AnyOf(tuple(Rule.from_dict(d) for d in data["any"]))
        if "not" in data:
            return Not(Rule.from_dict(data["not"]))
        if "segment" in data:
            return SegmentIs(str(data["segment"]))
        for kind in ("feature", "interest"):
            if kind in data:
                op = data.get("op", "==")
                value = data.get("value")
                if isinstance(value, list):
                    value = tuple(value)
                return Condition(kind, str(data[kind]), op, value)
        raise RuleError(f"unrecognised rule {data!r}: expected all/any/not/segment/feature/"
                        "interest")

    @staticmethod
    def from_json(text: str) -> Rule:
        try:
            return Rule.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise RuleError(f"rule is not valid JSON: {exc}") from None


@dataclass(frozen=True, eq=True)
class Condition(Rule):
    """``<kind> <name> <op> <value>``: a comparison on one profile column."""

    kind: str
    name: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise RuleError(f"unknown operator {self.op!r}; use one of {', '.join(OPS)}")
        if self.op == "between" and (not isinstance(self.value, tuple) or len(self.value) != 2):
            raise RuleError("'between' needs a [low, high] pair")

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        col = profiles[resolve_column(profiles, self.name, self.kind)]
        op, v = self.op, self.value
        if op == "is_null":
            return col.isna()
        if op == "not_null":
            return col.notna()
        if op in ("in", "not_in"):
            values = list(v) if isinstance(v, tuple | list) else [v]
            m = col.isin(values)
            return ~m & col.notna() if op == "not_in" else m
        if op == "between":
            return (col >= v[0]) & (col <= v[1])
        comparisons = {"==": operator.eq, "!=": operator.ne, ">": operator.gt,
                       ">=": operator.ge, "<": operator.lt, "<=": operator.le}
        try:
            result = comparisons[op](col, v)
        except TypeError as exc:
            raise RuleError(f"cannot compare {self.name!r} {op} {v!r}: {exc}") from None
        # Missing values never match (NaN compares False except for !=).
        return pd.Series(result, index=profiles.index).fillna(False).astype(bool) & col.notna()

    def to_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        d: dict[str, Any] = {self.kind: self.name, "op": self.op}
        if self.op not in ("is_null", "not_null"):
            d["value"] = value
        return d


@dataclass(frozen=True)
class SegmentIs(Rule):
    """Membership of a named (or numbered) segment."""

    name: str

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        cols = [c for c in SEGMENT_COLUMNS if c in profiles.columns]
        if not cols:
            raise RuleError("profiles carry no segment column; build segments first "
                            f"(looked for {', '.join(SEGMENT_COLUMNS)})")
        m = pd.Series(False, index=profiles.index)
        for c in cols:
            m |= profiles[c].astype(str).str.casefold() == self.name.casefold()
        return m

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.name}


@dataclass(frozen=True)
class AllOf(Rule):
    rules: tuple[Rule, ...]

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        m = pd.Series(True, index=profiles.index)
        for r in self.rules:
            m &= r.mask(profiles)
        return m

    def to_dict(self) -> dict[str, Any]:
        return {"all": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class AnyOf(Rule):
    rules: tuple[Rule, ...]

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        m = pd.Series(False, index=profiles.index)
        for r in self.rules:
            m |= r.mask(profiles)
        return m

    def to_dict(self) -> dict[str, Any]:
        return {"any": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class Not(Rule):
    rule: Rule

    def mask(self, profiles: pd.DataFrame) -> pd.Series:
        return ~self.rule.mask(profiles)

    def to_dict(self) -> dict[str, Any]:
        return {"not": self.rule.to_dict()}


class _Ref:
    """A column reference: comparisons build :class:`Condition` nodes."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name

    def _c(self, op: str, value: Any) -> Condition:
        return Condition(self.kind, self.name, op, value)

    def __eq__(self, v: object) -> Condition:  # type: ignore[override]
        return self._c("==", v)

    def __ne__(self, v: object) -> Condition:  # type: ignore[override]
        return self._c("!=", v)

    def __gt__(self, v: Any) -> Condition:
        return self._c(">", v)

    def __ge__(self, v: Any) -> Condition:
        return self._c(">=", v)

    def __lt__(self, v: Any) -> Condition:
        return self._c("<", v)

    def __le__(self, v: Any) -> Condition:
        return self._c("<=", v)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: list[Any]) -> Condition:
        return self._c("in", tuple(values))

    def between(self, low: Any, high: Any) -> Condition:
        return self._c("between", (low, high))

    def isnull(self) -> Condition:
        return self._c("is_null", None)


def feature(name: str) -> _Ref:
    """A profile feature column, e.g. ``feature("monetary") >= 100``."""
    return _Ref("feature", name)


def interest(name: str) -> _Ref:
    """A (time-decayed) interest score, e.g. ``interest("Sci-Fi") > 0.3``."""
    return _Ref("interest", name)


def segment(name: str) -> SegmentIs:
    """Membership of a segment by name, e.g. ``segment("At risk")``."""
    return SegmentIs(name)
