"""Run a campaign against the sample world's hidden response model, where the truth is known.

Every user of the world is assigned (salted hash, equal shares) to one arm -- ``personalised``
(top-n from a recommender trained on the world's events), ``random`` (n random in-stock items)
or ``popular`` (the n best sellers the user has not bought) -- and the message shows n items.
One message converts when at least one shown item is bought; each item is an independent
exposure through the response model's click -> cart -> buy funnel.

Because the response model is known, each user's conversion probability under *every* arm can
be computed, not only the arm they were in: the **true uplift** is the mean over all users of
``P(convert | personalised) - P(convert | other)``. The experiment sees one sampled outcome
per user in one arm and estimates the uplift with a two-proportion z-test; over repeated
draws its 95% interval should cover the true uplift about 95% of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from limelight.marketing import stats
from limelight.marketing.experiments import Experiment

ARMS = ("personalised", "random", "popular")


@dataclass
class SimulationResult:
    """True and estimated uplifts of personalised items over each other arm."""

    users: int
    n_items: int
    discount: float
    true_rates: dict[str, float]
    observed: dict[str, dict[str, float]]
    uplift: dict[str, dict[str, Any]]  # "personalised_vs_random" -> true, estimate, CI, covered
    coverage: dict[str, float] | None = None  # over replications, when run

    def to_dict(self) -> dict[str, Any]:
        return {"users": self.users, "n_items": self.n_items, "discount": self.discount,
                "true_rates": self.true_rates, "observed": self.observed,
                "uplift": self.uplift, "coverage": self.coverage}


def train_recommender(world: Any, model: str = "als", **params: Any) -> Callable[[str, int],
                                                                                   list[str]]:
    """Fit ``model`` from the registry on the world's events; returns recommend(user, n)."""
    from limelight.data.dataset import build_dataset
    from limelight.models.registry import create
    from limelight.store import open_store

    store = open_store("memory://")
    try:
        for name in ("users", "items", "events"):
            store.write(name, getattr(world, name))
        dataset = build_dataset(store, with_features=False)
    finally:
        store.close()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit's ALS runs its own threads
        recommender = create(model, **params).fit(dataset)
    users, items = dataset.users, dataset.items

    def recommend(user_id: str, n: int) -> list[str]:
        idx = users.get(user_id)
        if idx < 0:
            return []
        top, _ = recommender.recommend(np.array([idx]), n)
        return [str(i) for i in items.ids_of(top[0][top[0] >= 0])]

    return recommend


def _items_for(arm: str, users: Sequence[str], n: int, world: Any,
               recommend: Callable[[str, int], list[str]], rng: np.random.Generator
               ) -> np.ndarray:
    items = world.items
    stock = items[items["in_stock"].fillna(True).astype(bool)] if "in_stock" in items else items
    pool = stock["item_id"].astype(str).to_numpy()
    if arm == "random":
        return np.stack([rng.choice(pool, n, replace=False) for _ in users])
    if arm == "popular":
        ev = world.events
        buys = ev[ev["type"] == "purchase"]
        ranked = buys["item_id"].value_counts().index.astype(str)
        ranked = [i for i in ranked if i in set(pool)]
        bought = buys.groupby("user_id")["item_id"].agg(set).to_dict()
        out = []
        for u in users:
            seen = bought.get(u, set())
            out.append([i for i in ranked if i not in seen][:n])
        return np.array(out, dtype=object)
    out = []
    popular = None
    for u in users:
        chosen = [i for i in recommend(u, n) if i in set(pool)][:n]
        if len(chosen) < n:  # cold users: fill from random items
            popular = pool if popular is None else popular
            extra = [i for i in rng.choice(popular, 3 * n, replace=False) if i not in chosen]
            chosen += extra[: n - len(chosen)]
        out.append(chosen)
    return np.array(out, dtype=object)


def _p_convert(response: Any, users: Sequence[str], shown: np.ndarray,
               discount: float) -> np.ndarray:
    n = shown.shape[1]
    u = np.repeat(np.asarray(users, dtype=object), n)
    p = response.p_purchase(list(u), list(shown.reshape(-1)), discount).reshape(-1, n)
    return 1.0 - np.prod(1.0 - p, axis=1)


def simulate_campaign(world: Any, *, recommend: Callable[[str, int], list[str]] | None = None,
                      n_items: int = 3, discount: float = 0.0, max_users: int | None = None,
                      replications: int = 0, alpha: float = 0.05,
                      random_state: int = 0) -> SimulationResult:
    """Simulate the three-arm campaign on ``world`` (see the module docstring).

    Parameters
    ----------
    world
        A :class:`limelight.sim.World` (its ``truth.response`` answers the probabilities).
    recommend
        The personalised arm's recommender; default: ALS trained on the world's events.
    discount
        Fraction off shown items (an offer), passed to the response model.
    replications
        Extra independent assignments and draws used to measure the CI's coverage.

    Returns
    -------
    SimulationResult
    """
    rng = np.random.default_rng(random_state)
    response = world.truth.response
    users = world.users["user_id"].astype(str).tolist()
    if max_users is not None and len(users) > max_users:
        users = list(rng.choice(users, max_users, replace=False))
    recommend = recommend or train_recommender(world)
    shown = {arm: _items_for(arm, users, n_items, world, recommend, rng) for arm in ARMS}
    p = {arm: _p_convert(response, users, shown[arm], discount) for arm in ARMS}
    true_rates = {arm: float(p[arm].mean()) for arm in ARMS}

    def one_run(salt: str, draw_rng: np.random.Generator) -> tuple[dict, dict]:
        arm_of = Experiment("sim", dict.fromkeys(ARMS, 1.0), salt=salt).assign(users)
        converted = np.zeros(len(users), bool)
        for arm in ARMS:
            mask = arm_of == arm
            converted[mask] = draw_rng.random(mask.sum()) < p[arm][mask]
        frame = pd.DataFrame({"arm": arm_of, "converted": converted})
        g = frame.groupby("arm")["converted"].agg(["sum", "count"])
        observed = {a: {"users": int(g.loc[a, "count"]), "conversions": int(g.loc[a, "sum"]),
                        "rate": float(g.loc[a, "sum"] / g.loc[a, "count"])} for a in ARMS}
        uplift = {}
        for other in ("random", "popular"):
            res = stats.two_proportion_ztest(g.loc[other, "sum"], g.loc[other, "count"],
                                             g.loc["personalised", "sum"],
                                             g.loc["personalised", "count"], alpha=alpha)
            true = true_rates["personalised"] - true_rates[other]
            uplift[f"personalised_vs_{other}"] = {
                "true": true, **res.to_dict(),
                "covered": bool(res.ci_low <= true <= res.ci_high)}
        return observed, uplift

    observed, uplift = one_run("sim-0", rng)
    coverage = None
    if replications:
        hits = {k: 0 for k in uplift}
        for r in range(replications):
            _, rep = one_run(f"sim-{r + 1}", rng)
            for k in hits:
                hits[k] += rep[k]["covered"]
        coverage = {k: v / replications for k, v in hits.items()}
    return SimulationResult(len(users), n_items, discount, true_rates, observed, uplift,
                            coverage)
