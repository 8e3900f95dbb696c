"""Message content: each user's items under campaign rules, tracking links, Jinja2 rendering.

Items come from a ``recommend(user_id, n) -> list[item_id]`` function given to the campaign,
so any model (or the serving pipeline) can stand behind it; :func:`popularity_recommender`
is the fallback that needs only the event store. Campaign rules (categories, price range,
in stock) filter the recommended list, and popular items that pass the rules fill any gap.

Tracking links carry the message id (and through it the campaign and the user): a click on
``{base}/t/click?m=<message id>&i=<item id>`` is recorded by the API as an ``email_click``
event with ``campaign_id`` and ``message_id`` set, and the open pixel as ``email_open``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import pandas as pd

from limelight.errors import LimelightError

Recommend = Callable[[str, int], Sequence[str]]
TEMPLATE_DIR = Path(__file__).parent / "templates"


class TemplateError(LimelightError):
    """A template is missing or uses a variable the message does not have."""


@dataclass(frozen=True)
class ItemRules:
    """Which items a campaign may show.

    Examples
    --------
    >>> ItemRules(categories=("Sci-Fi",), max_price=20).to_dict()["max_price"]
    20
    """

    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True

    def mask(self, items: pd.DataFrame) -> pd.Series:
        """Boolean Series over ``items`` (columns categories, price, in_stock)."""
        m = pd.Series(True, index=items.index)
        cats = items["categories"] if "categories" in items else pd.Series(
            [[]] * len(items), index=items.index)
        cats = cats.apply(lambda c: set(c) if isinstance(c, list | tuple) or hasattr(c, "tolist")
                          else set())
        if self.categories:
            wanted = set(self.categories)
            m &= cats.apply(lambda c: bool(c & wanted))
        if self.exclude_categories:
            banned = set(self.exclude_categories)
            m &= cats.apply(lambda c: not (c & banned))
        price = items["price"] if "price" in items else pd.Series(float("nan"), items.index)
        if self.min_price is not None:
            m &= price >= self.min_price
        if self.max_price is not None:
            m &= price <= self.max_price
        if self.in_stock_only and "in_stock" in items:
            m &= items["in_stock"].fillna(True).astype(bool)
        return m

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["categories"], d["exclude_categories"] = list(self.categories), list(
            self.exclude_categories)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ItemRules:
        data = dict(data or {})
        for k in ("categories", "exclude_categories"):
            data[k] = tuple(data.get(k) or ())
        return cls(**data)


def popularity_recommender(store: Any, *, days: int | None = None) -> Recommend:
    """Most-bought (then most-viewed) items, the same list for everyone, minus seen ones.

    The fallback when no trained model is available; also the "popular items" arm of the
    campaign simulation.
    """
    since = f"AND timestamp >= now() - INTERVAL {int(days)} DAY" if days else ""
    ranked = store.sql(
        "SELECT item_id, sum(CASE type WHEN 'purchase' THEN 5 WHEN 'add_to_cart' THEN 3 "
        "WHEN 'click' THEN 1 ELSE 0.5 END) AS score FROM events WHERE item_id IS NOT NULL "
        f"{since} GROUP BY item_id ORDER BY score DESC, item_id")["item_id"].astype(str).tolist()
    seen_frame = store.sql("SELECT user_id, list(DISTINCT item_id) AS items FROM events "
                           "WHERE type = 'purchase' AND item_id IS NOT NULL GROUP BY user_id")
    seen = {str(u): set(i) for u, i in zip(seen_frame["user_id"], seen_frame["items"],
                                           strict=True)}

    def recommend(user_id: str, n: int) -> list[str]:
        bought = seen.get(str(user_id), set())
        return [i for i in ranked if i not in bought][:n]

    return recommend


def artifact_recommender(artifact: Any, fallback: Recommend | None = None) -> Recommend:
    """``recommend(user, n)`` from a saved model version (an ``ArtifactStore.load()`` result);
    users the model does not know get ``fallback`` (e.g. popularity)."""
    import numpy as np

    def recommend(user_id: str, n: int) -> list[str]:
        idx = artifact.users.get(str(user_id))
        if idx < 0:
            return list(fallback(user_id, n)) if fallback else []
        top, _ = artifact.model.recommend(np.array([idx]), n)
        return [str(i) for i in artifact.items.ids_of(top[0][top[0] >= 0])]

    return recommend


def select_items(user_id: str, n: int, recommend: Recommend, items: pd.DataFrame,
                 rules: ItemRules, fallback: Sequence[str] = ()) -> list[str]:
    """Top ``n`` items for ``user_id`` that pass ``rules``; gaps filled from ``fallback``.

    ``items`` is indexed by item_id. Recommendations are over-fetched (5n) so rules that
    remove many items still leave enough.
    """
    allowed = items.index[rules.mask(items).to_numpy()]
    allowed_set = set(map(str, allowed))
    chosen: list[str] = []
    for source in (recommend(user_id, max(5 * n, 20)), fallback):
        for item in source:
            item = str(item)
            if item in allowed_set and item not in chosen:
                chosen.append(item)
                if len(chosen) == n:
                    return chosen
    return chosen


def tracking_url(base_url: str, kind: str, message_id: str, item_id: str | None = None) -> str:
    """Link that records ``kind`` ("click", "open", "unsubscribe") for the message."""
    params = {"m": message_id}
    if item_id is not None:
        params["i"] = item_id
    return f"{base_url.rstrip('/')}/t/{kind}?{urlencode(params)}"


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(directory),
                                    jinja2.FileSystemLoader(str(TEMPLATE_DIR))]),
        autoescape=jinja2.select_autoescape(["html.j2", "html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )


def render(template: str, context: dict[str, Any], *, directory: str | Path | None = None
           ) -> str:
    """Render ``template`` (a file name in ``directory`` or the built-in templates).

    Undefined variables are errors (StrictUndefined): a typo never ships an empty greeting.
    """
    env = _environment(str(directory or TEMPLATE_DIR))
    try:
        return env.get_template(template).render(**context)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"template {template!r} not found (built-in: "
                            f"{', '.join(sorted(p.name for p in TEMPLATE_DIR.glob('*.j2')))})"
                            ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {template!r}: {exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {template!r} line {exc.lineno}: {exc.message}"
                            ) from None


@dataclass
class Content:
    """Subject and bodies of one message, plus the structured payload."""

    subject: str
    text: str
    html: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
