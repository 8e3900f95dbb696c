"""A/B/n experiments: deterministic salted-hash assignment, holdouts, exposure logs, analysis.

Assignment is a pure function of (salt, user id): the same user lands in the same variant on
every request and every machine, with no state to share, so the serving path can bucket users
at request time (e.g. ALS vs EASE, or two diversity settings) as cheaply as a campaign can.
A holdout uses its own hash (salt + ":holdout"), so changing the variant weights never moves
users in or out of the holdout.

Exposure is logged the first time a user actually sees a variant (not when assigned): analysing
exposed users only keeps unexposed users' noise out of the estimate, and the sample-ratio check
on exposures catches logging or delivery bugs that favour one arm.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from limelight.marketing import stats

HOLDOUT = "holdout"
_SCALE = float(2**64)


def hash_unit(salt: str, user_ids: Iterable[str]) -> np.ndarray:
    """Uniform numbers in [0, 1), one per user, from blake2b(salt, user id)."""
    out = [
        int.from_bytes(hashlib.blake2b(f"{salt}\x1f{u}".encode(), digest_size=8).digest(), "big")
        for u in user_ids
    ]
    return np.asarray(out, dtype=np.float64) / _SCALE


@dataclass
class Experiment:
    """An A/B/n experiment.

    Parameters
    ----------
    name
        Unique name; also the default salt.
    variants
        Variant name -> weight (normalised); the first one is control unless ``control`` says.
    holdout
        Share of users kept out of every variant (they get ``"holdout"``), e.g. a campaign's
        no-contact group.
    salt
        Hash salt; change it to re-randomise users for a new experiment with the same name.

    Examples
    --------
    >>> exp = Experiment("subject-line", {"A": 0.5, "B": 0.5})
    >>> exp.assign_one("u1") == exp.assign_one("u1")
    True
    """

    name: str
    variants: dict[str, float]
    control: str | None = None
    holdout: float = 0.0
    salt: str | None = None
    description: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError("an experiment needs at least one variant")
        if any(w <= 0 for w in self.variants.values()):
            raise ValueError("variant weights must be positive")
        if HOLDOUT in self.variants:
            raise ValueError(f"{HOLDOUT!r} is reserved for the holdout group")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError("holdout must lie in [0, 1)")
        if self.control is None:
            self.control = next(iter(self.variants))
        if self.control not in self.variants:
            raise ValueError(f"control {self.control!r} is not a variant")

    @property
    def key(self) -> str:
        return self.salt or self.name

    @property
    def names(self) -> list[str]:
        return list(self.variants)

    @property
    def ratios(self) -> np.ndarray:
        w = np.asarray(list(self.variants.values()), float)
        return w / w.sum()

    def assign(self, user_ids: Sequence[str]) -> np.ndarray:
        """Variant name per user (``"holdout"`` for the holdout), as an object array."""
        ids = [str(u) for u in user_ids]
        names = np.asarray(self.names, dtype=object)
        bucket = np.searchsorted(np.cumsum(self.ratios), hash_unit(self.key, ids), side="right")
        result = names[np.minimum(bucket, len(names) - 1)]
        if self.holdout > 0:
            held = hash_unit(self.key + ":holdout", ids) < self.holdout
            result = np.where(held, HOLDOUT, result).astype(object)
        return result

    def assign_one(self, user_id: str) -> str:
        """The variant of one user (request-time bucketing)."""
        return str(self.assign([user_id])[0])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "variants": self.variants, "control": self.control,
                "holdout": self.holdout, "salt": self.salt, "description": self.description,
                "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(**data)


class ExposureLog:
    """First exposure per (experiment, user), kept in the store's ``marketing_exposures`` table.

    Calls to :meth:`log` are buffered in memory and written by :meth:`flush` in one statement,
    so logging on the request path costs a dict insert.
    """

    TABLE = "marketing_exposures"

    def __init__(self, store: Any) -> None:
        self.store = store
        # (experiment, user) -> [variant, first time, count, context JSON]
        self._buffer: dict[tuple[str, str], list[Any]] = {}
        store.execute(
            f"CREATE TABLE IF NOT EXISTS {self.TABLE} (experiment VARCHAR, user_id VARCHAR, "
            "variant VARCHAR, first_exposed TIMESTAMPTZ, exposures BIGINT, context VARCHAR, "
            "PRIMARY KEY (experiment, user_id))"
        )

    def log(self, experiment: str, user_id: str, variant: str,
            context: dict[str, Any] | None = None) -> None:
        """Record that ``user_id`` saw ``variant`` of ``experiment`` now."""
        key = (experiment, str(user_id))
        entry = self._buffer.get(key)
        if entry is None:
            ctx = json.dumps(context, default=str) if context else None
            self._buffer[key] = [variant, datetime.now(UTC).isoformat(), 1, ctx]
        else:
            entry[2] += 1

    def flush(self) -> int:
        """Write buffered exposures in one statement; returns how many pairs were written."""
        if not self._buffer:
            return 0
        frame = pd.DataFrame(
            [(e, u, *entry) for (e, u), entry in self._buffer.items()],
            columns=["experiment", "user_id", "variant", "first_exposed", "exposures",
                     "context"])
        frame["first_exposed"] = pd.to_datetime(frame["first_exposed"], utc=True)
        view = f"__exposures_{id(frame)}"
        self.store.register(view, frame)
        try:
            # The first exposure wins; later ones only add to the count.
            self.store.execute(
                f"INSERT INTO {self.TABLE} SELECT experiment, user_id, variant, first_exposed, "
                f"exposures, context FROM {view} ON CONFLICT (experiment, user_id) DO UPDATE "
                "SET exposures = exposures + excluded.exposures")
        finally:
            self.store.unregister(view)
        self._buffer.clear()
        return len(frame)

    def exposures(self, experiment: str) -> pd.DataFrame:
        """Exposed users of ``experiment``: user_id, variant, first_exposed, exposures."""
        self.flush()
        return self.store.sql(
            f"SELECT user_id, variant, first_exposed, exposures FROM {self.TABLE} "
            "WHERE experiment = ? ORDER BY user_id", [experiment]
        )


@dataclass
class ExperimentReport:
    """Per-variant metrics and comparisons against control."""

    experiment: str
    control: str
    variants: pd.DataFrame  # index variant: users, clicks, conversions, revenue, rates
    comparisons: dict[str, dict[str, Any]]  # variant -> metric -> test result dict
    srm: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "control": self.control,
            "variants": self.variants.reset_index().to_dict(orient="records"),
            "comparisons": self.comparisons,
            "srm": self.srm,
        }


def analyze(
    experiment: Experiment,
    outcomes: pd.DataFrame,
    *,
    alpha: float = 0.05,
    include_holdout: bool = True,
) -> ExperimentReport:
    """Compare every variant (and the holdout) with control on CTR, conversion and revenue.

    Parameters
    ----------
    experiment
        The experiment (its planned ratios feed the sample-ratio check).
    outcomes
        One row per exposed user: ``user_id``, ``variant``, and any of ``clicked`` (0/1),
        ``converted`` (0/1), ``revenue`` (float, 0 for none).
    alpha
        Level of every test; intervals have coverage ``1 - alpha``.

    Returns
    -------
    ExperimentReport
        Rates per variant; z-tests for CTR and conversion, Welch for revenue per user, the
        Bayesian probability to beat control, and the SRM check.
    """
    if "variant" not in outcomes or "user_id" not in outcomes:
        raise ValueError("outcomes need user_id and variant columns")
    frame = outcomes.copy()
    for col in ("clicked", "converted", "revenue"):
        if col not in frame:
            frame[col] = 0.0
        frame[col] = frame[col].fillna(0.0).astype(float)
    grouped = frame.groupby("variant")
    table = pd.DataFrame({
        "users": grouped.size(),
        "clicks": grouped["clicked"].sum(),
        "conversions": grouped["converted"].sum(),
        "revenue": grouped["revenue"].sum(),
        "revenue_var": grouped["revenue"].var(ddof=1).fillna(0.0),
    })
    table["ctr"] = table["clicks"] / table["users"]
    table["conversion_rate"] = table["conversions"] / table["users"]
    table["revenue_per_user"] = table["revenue"] / table["users"]
    control = experiment.control or experiment.names[0]
    comparisons: dict[str, dict[str, Any]] = {}
    if control in table.index:
        c = table.loc[control]
        others = [v for v in table.index if v != control
                  and (include_holdout or v != HOLDOUT)]
        for name in others:
            t = table.loc[name]
            result: dict[str, Any] = {}
            for metric, col in (("ctr", "clicks"), ("conversion", "conversions")):
                result[metric] = stats.two_proportion_ztest(
                    c[col], c["users"], t[col], t["users"], alpha=alpha).to_dict()
            if c["users"] >= 2 and t["users"] >= 2:
                result["revenue_per_user"] = stats.welch_ttest(
                    c["revenue_per_user"], c["revenue_var"], c["users"],
                    t["revenue_per_user"], t["revenue_var"], t["users"], alpha=alpha).to_dict()
            result["prob_beat_control_conversion"] = float(stats.prob_beat_control(
                c["conversions"], c["users"], t["conversions"], t["users"]))
            comparisons[str(name)] = result
    planned = [v for v in experiment.names if v in table.index]
    srm: dict[str, Any] = {"checked": False}
    if len(planned) >= 2:
        ratios = experiment.ratios[[experiment.names.index(v) for v in planned]]
        srm = stats.srm_test(table.loc[planned, "users"].to_numpy(), ratios)
        srm = {k: (bool(v) if k == "mismatch" else float(v)) for k, v in srm.items()}
        srm["checked"] = True
    return ExperimentReport(experiment.name, control, table, comparisons, srm)
