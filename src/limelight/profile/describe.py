"""Human-readable segment descriptions from the features that set a segment apart.

For each segment every candidate feature gets an effect size: the standardised difference
between the segment's mean and the population's (money, counts and durations on a log scale),
or for a categorical feature the over-representation of its most common value. The strongest
effects become short phrases, written in a fixed order, e.g.
``"high spend, frequent, Jewelry and Computers, mornings, weekdays, uk-south"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from limelight.profile.interests import INTEREST_PREFIX

#: column -> (phrase when high, phrase when low, log scale?). Order = order in descriptions.
NUMERIC_PHRASES: dict[str, tuple[str | None, str | None, bool]] = {
    "monetary": ("high spend", "low spend", True),
    "avg_basket_value": ("big baskets", "small baskets", True),
    "frequency": ("frequent buyers", "rarely buy", True),
    "n_sessions": ("frequent visitors", "infrequent", True),
    "recency_days": ("lapsed", "recent", True),
    "view_to_purchase": ("converts well", "browses without buying", False),
    "discount_share": ("discount-driven", "full price", False),
    "return_rate": ("returns often", None, False),
    "pagerank": ("influential", None, True),
    "degree": ("well connected", "few friends", True),
    "age": ("older", "younger", False),
}
DAYPART_PHRASES = {"share_night": "nights", "share_morning": "mornings",
                   "share_afternoon": "afternoons", "share_evening": "evenings"}
WEEKEND_PHRASES = ("weekends", "weekdays")
CATEGORICAL_COLUMNS = ("region",)
_ORDER = ["numeric", "interests", "time", "week", "categorical"]


def feature_effects(profiles: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """Standardised mean difference of each segment vs the population, one row per segment.

    Columns are the numeric candidates present in ``profiles`` (see ``NUMERIC_PHRASES``),
    day-part and weekend shares and ``interest:*`` shares.
    """
    cols = [c for c in (*NUMERIC_PHRASES, *DAYPART_PHRASES, "share_weekend") if c in profiles]
    cols += [c for c in profiles if c.startswith(INTEREST_PREFIX)]
    out = {}
    for c in cols:
        x = pd.to_numeric(profiles[c], errors="coerce").to_numpy(np.float64)
        if c in NUMERIC_PHRASES and NUMERIC_PHRASES[c][2]:
            x = np.log1p(np.maximum(x, 0.0))
        ok = np.isfinite(x)
        if ok.sum() < 2:
            continue
        mu, sd = x[ok].mean(), x[ok].std()
        if sd <= 1e-9 * max(1.0, abs(mu)):  # constant up to rounding: nothing to say
            continue
        seg = pd.Series(x[ok]).groupby(labels[ok]).mean()
        out[c] = (seg - mu) / sd
    return pd.DataFrame(out)


def describe_segments(profiles: pd.DataFrame, labels: np.ndarray, *, threshold: float = 0.4,
                      max_terms: int = 5) -> dict[int, str]:
    """A short description per segment label.

    Parameters
    ----------
    profiles
        Profiles (rows = users) holding any of the candidate columns.
    labels
        Segment label of each row.
    threshold
        Smallest effect size (in population standard deviations) worth a phrase.
    max_terms
        Most phrases per description.

    Returns
    -------
    dict segment label -> description ("typical" when nothing stands out).
    """
    labels = np.asarray(labels)
    effects = feature_effects(profiles, labels)
    cats = _categorical_terms(profiles, labels)
    out: dict[int, str] = {}
    for seg in np.unique(labels):
        row = effects.loc[seg] if seg in effects.index else pd.Series(dtype=float)
        terms = _terms(row, threshold) + cats.get(seg, [])
        terms.sort(key=lambda t: -t[0])
        chosen = terms[:max_terms]
        # What people are into is the most useful thing to read: keep it when there is one.
        taste = [t for t in terms if t[1] == "interests"]
        if taste and taste[0] not in chosen:
            chosen[-1] = taste[0]
        chosen.sort(key=lambda t: (_ORDER.index(t[1]), t[3]))
        out[int(seg)] = ", ".join(t[2] for t in chosen) if chosen else "typical"
    return out


def _terms(row: pd.Series, threshold: float) -> list[tuple[float, str, str, int]]:
    """(strength, group, phrase, position) candidates from one segment's effects."""
    terms: list[tuple[float, str, str, int]] = []
    for pos, (col, (high, low, _)) in enumerate(NUMERIC_PHRASES.items()):
        z = row.get(col, np.nan)
        if not np.isfinite(z) or abs(z) < threshold:
            continue
        phrase = high if z > 0 else low
        if phrase:
            terms.append((abs(z), "numeric", phrase, pos))
    interests = sorted(((z, c.removeprefix(INTEREST_PREFIX)) for c, z in row.items()
                        if c.startswith(INTEREST_PREFIX) and np.isfinite(z) and z >= threshold),
                       reverse=True)[:2]
    if interests:
        terms.append((interests[0][0], "interests", " and ".join(n for _, n in interests), 0))
    parts = [(row.get(c, np.nan), p) for c, p in DAYPART_PHRASES.items()]
    parts = [(z, p) for z, p in parts if np.isfinite(z) and z >= threshold]
    if parts:
        z, phrase = max(parts)
        terms.append((z, "time", phrase, 0))
    z = row.get("share_weekend", np.nan)
    if np.isfinite(z) and abs(z) >= threshold:
        terms.append((abs(z), "week", WEEKEND_PHRASES[0] if z > 0 else WEEKEND_PHRASES[1], 0))
    return terms


def _categorical_terms(profiles: pd.DataFrame, labels: np.ndarray
                       ) -> Mapping[int, list[tuple[float, str, str, int]]]:
    """The most over-represented region per segment (lift >= 1.5 and at
    least 30 % of the segment); strength ``(lift - 1) * share``, comparable to an effect size."""
    out: dict[int, list[tuple[float, str, str, int]]] = {}
    for pos, col in enumerate(CATEGORICAL_COLUMNS):
        if col not in profiles:
            continue
        values = profiles[col].astype(object).where(profiles[col].notna(), None).to_numpy()
        frame = pd.DataFrame({"seg": labels, "v": values}).dropna()
        if frame.empty:
            continue
        overall = frame["v"].value_counts(normalize=True)
        within = frame.groupby("seg")["v"].value_counts(normalize=True)
        for (seg, value), share in within.items():
            lift = share / overall[value]
            if share >= 0.3 and lift >= 1.5:
                strength = min(lift - 1.0, 3.0) * share
                current = out.setdefault(int(seg), [])
                if not any(t[3] == pos for t in current):
                    current.append((strength, "categorical", str(value), pos))
                elif strength > next(t[0] for t in current if t[3] == pos):
                    current[:] = [t for t in current if t[3] != pos]
                    current.append((strength, "categorical", str(value), pos))
    return out
