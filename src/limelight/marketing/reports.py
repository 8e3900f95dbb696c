"""Campaign reports: funnel, attributed revenue and uplift against the holdout, with CIs.

Funnel counts (per message, from the delivery log and tracked events):

- ``audience`` -- users assigned (treated and holdout);
- ``sent`` -- messages handed to the channel (sent, failed, or in doubt after a crash);
- ``delivered`` -- accepted by the receiving side (SMTP 250, HTTP 2xx, stored in the inbox);
- ``opened`` / ``clicked`` -- messages with an ``email_open`` / click event carrying their id;
- ``converted`` / ``revenue`` -- users and revenue with a purchase attributed to the campaign
  (last touch within the window, :mod:`limelight.marketing.attribution`).

Uplift is intention-to-treat: purchase rate and revenue per user within the window after
assignment, each variant against the holdout (two-proportion z-test, Welch t-test), with the
sample-ratio check over the planned split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from limelight.marketing import stats
from limelight.marketing.attribution import attribute, outcomes_after_assignment
from limelight.marketing.experiments import HOLDOUT

FUNNEL = ("audience", "sent", "delivered", "opened", "clicked", "converted")


@dataclass
class CampaignReport:
    campaign_id: str
    name: str
    status: str
    funnel: dict[str, int]
    revenue: float
    by_variant: list[dict[str, Any]]
    uplift: dict[str, dict[str, Any]]
    srm: dict[str, Any]
    window_days: float
    deliveries: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "name": self.name, "status": self.status,
                "funnel": self.funnel, "revenue": self.revenue, "by_variant": self.by_variant,
                "uplift": self.uplift, "srm": self.srm, "window_days": self.window_days,
                "deliveries": self.deliveries}

    def rows(self) -> list[dict[str, Any]]:
        """The funnel as table rows (stage, count, rate of the previous stage)."""
        out, prev = [], None
        for stage in FUNNEL:
            n = self.funnel[stage]
            out.append({"stage": stage, "count": n,
                        "rate": (n / prev) if prev else None})
            prev = n if n else prev
        out.append({"stage": "revenue", "count": round(self.revenue, 2), "rate": None})
        return out

    def plot(self, path: str | Path) -> Path:
        """Save the funnel and the uplift (with 95% CIs) as one PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        ax1.bar(list(FUNNEL), [self.funnel[s] for s in FUNNEL], color="#4C72B0")
        ax1.set_title(f"{self.name}: funnel")
        ax1.tick_params(axis="x", rotation=30)
        names = list(self.uplift)
        if names:
            conv = [self.uplift[n]["conversion"] for n in names]
            est = [c["estimate"] * 100 for c in conv]
            err = [[(c["estimate"] - c["ci_low"]) * 100 for c in conv],
                   [(c["ci_high"] - c["estimate"]) * 100 for c in conv]]
            ax2.errorbar(names, est, yerr=err, fmt="o", capsize=6, color="#C44E52")
            ax2.axhline(0, color="grey", lw=1)
        ax2.set_title("conversion uplift vs holdout (points, 95% CI)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def campaign_report(store: Any, campaign_id: str, *, window_days: float | None = None,
                    alpha: float = 0.05) -> CampaignReport:
    """Funnel, attributed revenue and uplift vs holdout for one campaign."""
    from limelight.marketing.campaigns import CampaignManager

    campaign = CampaignManager(store).get(campaign_id)
    window = campaign.spec.attribution_window_days if window_days is None else window_days
    outcomes = outcomes_after_assignment(store, campaign_id, window_days=window)
    attributed = attribute(store, window_days=window, campaign_id=campaign_id)
    deliveries = store.sql("SELECT status, count(*) AS n FROM marketing_deliveries WHERE "
                           "campaign_id = ? GROUP BY status", [campaign_id])
    counts = {str(s): int(n) for s, n in zip(deliveries["status"], deliveries["n"],
                                              strict=True)}
    engaged = store.sql(
        "SELECT count(DISTINCT e.message_id) FILTER (WHERE e.type = 'email_open') AS opened, "
        "count(DISTINCT e.message_id) FILTER (WHERE e.type IN ('email_click', 'click')) "
        "AS clicked FROM events e JOIN marketing_deliveries d ON d.message_id = e.message_id "
        "WHERE d.campaign_id = ?", [campaign_id]).iloc[0]
    funnel = {
        "audience": int(outcomes["user_id"].nunique()),
        "sent": sum(counts.get(s, 0) for s in ("sent", "failed", "unknown", "sending")),
        "delivered": counts.get("sent", 0),
        "opened": int(engaged["opened"]),
        "clicked": int(engaged["clicked"]),
        "converted": int(attributed["user_id"].nunique()),
    }
    by_variant, uplift, srm = _compare(outcomes, campaign.spec, alpha)
    return CampaignReport(campaign_id, campaign.spec.name, campaign.status, funnel,
                          float(attributed["revenue"].sum()), by_variant, uplift, srm, window,
                          counts)


def _compare(outcomes: pd.DataFrame, spec: Any, alpha: float
             ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, Any]]:
    frame = outcomes.assign(converted=outcomes["converted"].astype(float),
                            clicked=outcomes["clicked"].astype(float))
    g = frame.groupby("variant")
    table = pd.DataFrame({"users": g.size(), "conversions": g["converted"].sum(),
                          "clicks": g["clicked"].sum(), "revenue": g["revenue"].sum(),
                          "revenue_var": g["revenue"].var(ddof=1).fillna(0.0)})
    table["conversion_rate"] = table["conversions"] / table["users"]
    table["revenue_per_user"] = table["revenue"] / table["users"]
    by_variant = table.drop(columns="revenue_var").reset_index().to_dict(orient="records")
    uplift: dict[str, dict[str, Any]] = {}
    if HOLDOUT in table.index:
        c = table.loc[HOLDOUT]
        for name in table.index.drop(HOLDOUT):
            t = table.loc[name]
            result = {"conversion": stats.two_proportion_ztest(
                c["conversions"], c["users"], t["conversions"], t["users"],
                alpha=alpha).to_dict()}
            if c["users"] >= 2 and t["users"] >= 2:
                result["revenue_per_user"] = stats.welch_ttest(
                    c["revenue_per_user"], c["revenue_var"], c["users"],
                    t["revenue_per_user"], t["revenue_var"], t["users"], alpha=alpha).to_dict()
            result["prob_beat_holdout"] = float(stats.prob_beat_control(
                c["conversions"], c["users"], t["conversions"], t["users"]))
            uplift[str(name)] = result
    exp = spec.experiment("report")
    planned = {HOLDOUT: spec.holdout} if spec.holdout > 0 else {}
    planned.update({v: (1 - spec.holdout) * r for v, r in zip(exp.names, exp.ratios,
                                                                strict=True)})
    srm: dict[str, Any] = {"checked": False}
    present = [v for v in planned if v in table.index]
    # Only meaningful when every planned group was assigned (a budget cap trims treatment).
    if len(present) >= 2 and len(present) == len(planned) and int(table["users"].sum()) >= 20:
        res = stats.srm_test(table.loc[present, "users"].to_numpy(),
                             [planned[v] for v in present])
        srm = {"checked": True, "chi2": float(res["chi2"]), "p_value": float(res["p_value"]),
               "mismatch": bool(res["mismatch"])}
    return by_variant, uplift, srm
