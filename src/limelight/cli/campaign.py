"""``limelight campaign | audience | experiment ...``: precision marketing from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from limelight.cli.common import (
    console,
    fail,
    friendly_errors,
    open_configured_store,
    print_json,
    print_table,
)

campaign_app = typer.Typer(help="Create, preview, launch and report campaigns.",
                           no_args_is_help=True)
audience_app = typer.Typer(help="Build audiences (rules, segments, propensity, lookalike).",
                           no_args_is_help=True)
experiment_app = typer.Typer(help="Experiment design and analysis helpers.",
                             no_args_is_help=True)



def _json_arg(value: str | None, name: str) -> Any:
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"{name} is not valid JSON: {exc}")


def _manager(store: Any) -> Any:
    """A CampaignManager using the active model when there is one, else popularity."""
    from limelight.errors import ArtifactError
    from limelight.marketing.campaigns import CampaignManager
    from limelight.marketing.content import artifact_recommender, popularity_recommender
    from limelight.settings import get_settings
    from limelight.store.artifacts import ArtifactStore

    popular = popularity_recommender(store)
    try:
        artifact = ArtifactStore(get_settings().artifacts_dir).load()
        recommend = artifact_recommender(artifact, popular)
    except (ArtifactError, FileNotFoundError, OSError):
        recommend = popular
    return CampaignManager(store, recommend=recommend)


# -- audience ------------------------------------------------------------------------------

@audience_app.command("build")
@friendly_errors
def audience_build(
    segment: str | None = typer.Option(None, help="Start from this segment."),
    rule: str | None = typer.Option(None, help="JSON rule (or @file.json)."),
    where: list[str] = typer.Option([], help="column=value filters (repeatable)."),
    channel: str = typer.Option("email", help="email, push, webhook or inapp."),
    store: str | None = typer.Option(None, help="Event store URL (default: settings)."),
    users: bool = typer.Option(False, "--users", help="List the final user ids too."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resolve an audience and show how many consent, unsubscribe, suppression and frequency
    rules removed.

    Example: limelight audience build --segment "At risk" --rule '{"interest": "Sci-Fi",
    "op": ">", "value": 0.3}' --where country=UK --channel email
    """
    from limelight.marketing.audiences import Audience, build_audience
    from limelight.marketing.rules import Rule

    aud = Audience.segment(segment) if segment else Audience.everyone()
    if rule:
        aud = aud.where(Rule.from_dict(_json_arg(rule, "--rule")))
    for item in where:
        if "=" not in item:
            fail(f"--where needs column=value, got {item!r}")
        col, value = item.split("=", 1)
        aud = aud.where(**{col.strip(): value.strip()})
    report = build_audience(open_configured_store(store), aud, channel)
    if as_json:
        print_json(report.to_dict(with_users=users))
        return
    rows = [{"step": "matched", "users": report.matched}]
    rows += [{"step": f"removed: {k}", "users": -v} for k, v in report.removed.items()]
    rows.append({"step": "final", "users": report.size})
    print_table(f"audience {report.name or 'everyone'} ({channel})", rows)
    if users:
        console.print(" ".join(report.user_ids))


@audience_app.command("propensity")
@friendly_errors
def audience_propensity(
    horizon: int = typer.Option(30, help="Days ahead to predict a purchase in."),
    method: str = typer.Option("gbm", help="gbm or logistic."),
    top: int = typer.Option(20, help="Show the top users."),
    store: str | None = typer.Option(None, help="Event store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train a purchase-propensity model (AUC measured on held-out time) and list top users.

    Example: limelight audience propensity --horizon 14 --top 100 --json
    """
    from limelight.marketing.propensity import PropensityModel

    db = open_configured_store(store)
    model = PropensityModel(horizon_days=horizon, method=method).fit(db)
    scores = model.predict(db).head(top)
    if as_json:
        print_json({**model.report_, "top": [{"user_id": u, "propensity": float(p)}
                                             for u, p in scores.items()]})
        return
    console.print(f"validation AUC {model.validation_auc_:.3f} (held-out time, "
                  f"cutoff {model.report_['validation_cutoff']})")
    print_table("likeliest buyers", [{"user_id": u, "propensity": float(p)}
                                     for u, p in scores.items()])


# -- campaign ------------------------------------------------------------------------------

@campaign_app.command("create")
@friendly_errors
def campaign_create(
    spec: str | None = typer.Option(None, help="Full campaign spec as JSON (or @file.json)."),
    name: str | None = typer.Option(None, help="Campaign name (without --spec)."),
    segment: str | None = typer.Option(None, help="Audience segment."),
    rule: str | None = typer.Option(None, help="Audience JSON rule."),
    channel: str = typer.Option("email", help="email, push, webhook or inapp."),
    subject: str = typer.Option("Picked for you", help="Subject / title."),
    percent_off: float | None = typer.Option(None, help="Percent-off coupon offer."),
    amount_off: float | None = typer.Option(None, help="Amount-off coupon offer."),
    holdout: float = typer.Option(0.1, help="Control share never contacted."),
    n_items: int = typer.Option(3, help="Recommended items per message."),
    categories: str | None = typer.Option(None, help="Only items in these categories (a,b)."),
    max_price: float | None = typer.Option(None, help="Only items up to this price."),
    budget: float | None = typer.Option(None, help="Budget cap."),
    store: str | None = typer.Option(None, help="Event store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a draft campaign.

    Example: limelight campaign create --name spring --segment "At risk" --percent-off 20
    --categories Sci-Fi --holdout 0.1
    """
    from limelight.marketing.audiences import Audience
    from limelight.marketing.campaigns import CampaignSpec
    from limelight.marketing.rules import Rule

    if spec:
        data = _json_arg(spec, "--spec")
    else:
        if not name:
            fail("give --name (or a full --spec)")
        aud = Audience.segment(segment) if segment else Audience.everyone()
        if rule:
            aud = aud.where(Rule.from_dict(_json_arg(rule, "--rule")))
        offer = None
        if percent_off is not None:
            offer = {"offer_id": f"{name}-{percent_off:g}pct", "kind": "percent",
                     "value": percent_off}
        elif amount_off is not None:
            offer = {"offer_id": f"{name}-{amount_off:g}off", "kind": "amount",
                     "value": amount_off}
        rules: dict[str, Any] = {}
        if categories:
            rules["categories"] = [c.strip() for c in categories.split(",") if c.strip()]
        if max_price is not None:
            rules["max_price"] = max_price
        data = CampaignSpec(name, audience=aud.to_dict(), channel=channel, subject=subject,
                            offer=offer, holdout=holdout, n_items=n_items, item_rules=rules,
                            budget=budget).to_dict()
    cid = _manager(open_configured_store(store)).create(data)
    if as_json:
        print_json({"campaign_id": cid, "status": "draft"})
    else:
        console.print(f"created draft campaign [bold]{cid}[/]")


@campaign_app.command("list")
@friendly_errors
def campaign_list(store: str | None = typer.Option(None, help="Event store URL."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List campaigns and their status.

    Example: limelight campaign list --json
    """
    from limelight.marketing.campaigns import CampaignManager

    rows = CampaignManager(open_configured_store(store)).list()
    print_json(rows) if as_json else print_table("campaigns", rows)


@campaign_app.command("preview")
@friendly_errors
def campaign_preview(
    campaign_id: str = typer.Argument(..., help="Campaign id."),
    user: list[str] = typer.Option([], help="Preview for these users (default: audience)."),
    n: int = typer.Option(2, help="How many previews."),
    store: str | None = typer.Option(None, help="Event store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Render messages without sending anything or issuing coupons.

    Example: limelight campaign preview cmp-0123456789ab --user u42
    """
    previews = _manager(open_configured_store(store)).preview(campaign_id, user or None, n)
    if as_json:
        print_json(previews)
        return
    for p in previews:
        console.rule(f"{p['user_id']} ({p['variant']}): {p['subject']}")
        console.print(p["text"], highlight=False, markup=False)


@campaign_app.command("schedule")
@friendly_errors
def campaign_schedule(campaign_id: str = typer.Argument(..., help="Campaign id."),
                      store: str | None = typer.Option(None, help="Event store URL.")) -> None:
    """Mark a draft scheduled (`limelight campaign run-due` launches it on time).

    Example: limelight campaign schedule cmp-0123456789ab
    """
    _manager(open_configured_store(store)).schedule(campaign_id)
    console.print(f"{campaign_id} scheduled")


@campaign_app.command("launch")
@friendly_errors
def campaign_launch(campaign_id: str = typer.Argument(..., help="Campaign id."),
                    store: str | None = typer.Option(None, help="Event store URL."),
                    as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Send the campaign now (quiet hours, budget and all policies apply).

    Example: limelight campaign launch cmp-0123456789ab --json
    """
    report = _manager(open_configured_store(store)).launch(campaign_id).to_dict()
    if as_json:
        print_json(report)
        return
    print_table(f"launch {campaign_id}", [
        {"what": "audience", "value": report["audience"]["final"]},
        *({"what": f"assigned {k}", "value": v} for k, v in report["assigned"].items()),
        {"what": "deferred (quiet hours)", "value": report["deferred"]},
        {"what": "budget capped", "value": report["budget_capped"]},
        *({"what": k, "value": v} for k, v in report["dispatch"].items() if k != "errors"),
        {"what": "status", "value": report["status"]}])


@campaign_app.command("run-due")
@friendly_errors
def campaign_run_due(store: str | None = typer.Option(None, help="Event store URL."),
                     as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Launch due scheduled campaigns and release messages held by quiet hours.

    Example: limelight campaign run-due   (e.g. every 5 minutes from cron)
    """
    result = _manager(open_configured_store(store)).run_due()
    if as_json:
        print_json(result)
    else:
        console.print(f"launched {len(result['launched'])}, released deferred messages for "
                      f"{len(result['released'])} running campaign(s)")


@campaign_app.command("report")
@friendly_errors
def campaign_report(
    campaign_id: str = typer.Argument(..., help="Campaign id."),
    plot: Path | None = typer.Option(None, help="Save funnel + uplift plot (PNG) here."),
    window: float | None = typer.Option(None, help="Attribution window, days."),
    store: str | None = typer.Option(None, help="Event store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Funnel, attributed revenue and uplift vs holdout with confidence intervals.

    Example: limelight campaign report cmp-0123456789ab --plot report.png
    """
    from limelight.marketing.reports import campaign_report as build

    report = build(open_configured_store(store), campaign_id, window_days=window)
    if plot:
        report.plot(plot)
    if as_json:
        print_json(report.to_dict())
        return
    print_table(f"{report.name} ({report.status})", report.rows())
    for variant, u in report.uplift.items():
        c = u["conversion"]
        console.print(f"{variant} vs holdout: conversion uplift {c['estimate']:+.4f} "
                      f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], p = {c['p_value']:.3g}")
    if report.srm.get("mismatch"):
        console.print("[bold red]sample-ratio mismatch[/]: the split is not as planned")
    if plot:
        console.print(f"plot: {plot}")


# -- experiment ----------------------------------------------------------------------------

@experiment_app.command("size")
@friendly_errors
def experiment_size(
    baseline: float = typer.Option(..., help="Control conversion rate, e.g. 0.05."),
    mde: float = typer.Option(..., help="Minimum detectable effect (absolute unless "
                              "--relative)."),
    relative: bool = typer.Option(False, "--relative", help="mde is a relative lift."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    power: float = typer.Option(0.8, help="Power."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Users per arm needed to detect the effect (two-sided two-proportion z-test).

    Example: limelight experiment size --baseline 0.10 --mde 0.01
    """
    from limelight.marketing import stats

    try:
        n = stats.sample_size_proportions(baseline, mde, alpha=alpha, power=power,
                                          relative=relative)
    except ValueError as exc:
        fail(str(exc))
    out = {"baseline": baseline, "mde": mde, "relative": relative, "alpha": alpha,
           "power": power, "n_per_arm": n}
    print_json(out) if as_json else console.print(f"{n:,} users per arm")


@experiment_app.command("simulate")
@friendly_errors
def experiment_simulate(
    size: str = typer.Option("tiny", help="Sample-world size."),
    seed: int = typer.Option(0, help="World seed."),
    replications: int = typer.Option(100, help="Re-draws to measure CI coverage."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a personalised vs random vs popular campaign on the sample world, where the true
    uplift is known, and compare the A/B estimate with it.

    Example: limelight experiment simulate --size small --json
    """
    from limelight.marketing.simulation import simulate_campaign
    from limelight.sim import generate_world

    result = simulate_campaign(generate_world(size, seed=seed), replications=replications,
                               random_state=seed)
    if as_json:
        print_json(result.to_dict())
        return
    rows = [{"comparison": k, "true": u["true"], "estimate": u["estimate"],
             "ci_low": u["ci_low"], "ci_high": u["ci_high"], "covered": u["covered"],
             "coverage": (result.coverage or {}).get(k)} for k, u in result.uplift.items()]
    print_table(f"campaign simulation ({result.users} users)", rows)


@experiment_app.command("create")
@friendly_errors
def experiment_create(
    name: str = typer.Argument(..., help="Experiment name."),
    variants: str = typer.Option(..., help='Variant weights as JSON, e.g. {"als": 1, "ease": 1}.'),
    params: str | None = typer.Option(None, help="Per-variant serving parameters as JSON."),
    holdout: float = typer.Option(0.0, help="Share of users kept out."),
    store: str | None = typer.Option(None, help="Event store URL."),
) -> None:
    """Start an experiment the serving path buckets users into at request time.

    Example: limelight experiment create ranker --variants '{"als": 1, "ease": 1}'
    --params '{"als": {"model": "als"}, "ease": {"model": "ease"}}'
    """
    from limelight.marketing.experiments import Experiment
    from limelight.marketing.registry import ExperimentRegistry

    weights = _json_arg(variants, "--variants")
    if not isinstance(weights, dict):
        fail("--variants must be a JSON object of variant -> weight")
    try:
        experiment = Experiment(name, weights, holdout=holdout)
    except ValueError as exc:
        fail(str(exc))
    ExperimentRegistry(open_configured_store(store)).create(
        experiment, params=_json_arg(params, "--params"))
    console.print(f"experiment {name} running")


@experiment_app.command("list")
@friendly_errors
def experiment_list(store: str | None = typer.Option(None, help="Event store URL."),
                    as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List stored experiments.

    Example: limelight experiment list
    """
    from limelight.marketing.registry import ExperimentRegistry

    rows = ExperimentRegistry(open_configured_store(store)).list()
    print_json(rows) if as_json else print_table("experiments", rows)


@experiment_app.command("report")
@friendly_errors
def experiment_report(
    name: str = typer.Argument(..., help="Experiment name."),
    window: float = typer.Option(7.0, help="Days after first exposure that count."),
    store: str | None = typer.Option(None, help="Event store URL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Variants vs control: CTR, conversion and revenue per user with CIs, P(beat control),
    and the sample-ratio check.

    Example: limelight experiment report ranker --json
    """
    from limelight.marketing.registry import analyze_exposures

    report = analyze_exposures(open_configured_store(store), name, window_days=window)
    if as_json:
        print_json(report.to_dict())
        return
    print_table(f"experiment {name}", report.variants.reset_index().to_dict(orient="records"),
                ["variant", "users", "ctr", "conversion_rate", "revenue_per_user"])
    for variant, comp in report.comparisons.items():
        c = comp["conversion"]
        console.print(f"{variant} vs {report.control}: conversion {c['estimate']:+.4f} "
                      f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] p = {c['p_value']:.3g}, "
                      f"P(beat) = {comp['prob_beat_control_conversion']:.3f}")
    if report.srm.get("mismatch"):
        console.print("[bold red]sample-ratio mismatch[/]: do not trust these numbers")


@experiment_app.command("bandit")
@friendly_errors
def experiment_bandit(
    rates: str = typer.Option(..., help='True arm rates as JSON, e.g. {"a": 0.04, "b": 0.06}.'),
    horizon: int = typer.Option(5000, help="Pulls to simulate."),
    seed: int = typer.Option(0, help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Simulate Thompson sampling and UCB1 on known arm rates: allocation and regret.

    Example: limelight experiment bandit --rates '{"a": 0.04, "b": 0.05, "c": 0.07}'
    """
    from limelight.marketing import bandits

    arms = _json_arg(rates, "--rates")
    if not isinstance(arms, dict) or len(arms) < 2 or not all(
            isinstance(v, int | float) and 0 <= v <= 1 for v in arms.values()):
        fail("--rates must map two or more arms to rates in [0, 1]")
    runs = {name: bandits.simulate(cls(list(arms), random_state=seed), arms, horizon,
                                   random_state=seed).to_dict()
            for name, cls in (("thompson", bandits.ThompsonSampling), ("ucb1", bandits.UCB1))}
    best = max(arms.values())
    uniform = horizon * (best - sum(arms.values()) / len(arms))
    if as_json:
        print_json({"runs": runs, "uniform_regret": uniform})
        return
    rows = [{"policy": name, "regret": r["regret"], "best arm share":
             r["allocation"][r["best_arm"]], **{f"share {a}": r["allocation"][a] for a in arms}}
            for name, r in runs.items()]
    rows.append({"policy": "uniform", "regret": uniform,
                 "best arm share": 1 / len(arms)})
    print_table(f"bandits over {horizon} pulls", rows)


@audience_app.command("suppress")
@friendly_errors
def audience_suppress(
    users: list[str] = typer.Argument(..., help="User ids never to contact."),
    channel: str = typer.Option("*", help="Channel, or * for all."),
    reason: str = typer.Option("manual", help="Why (kept with the entry)."),
    remove: bool = typer.Option(False, "--remove", help="Take them off the list instead."),
    store: str | None = typer.Option(None, help="Event store URL."),
) -> None:
    """Add users to (or remove them from) the suppression list.

    Example: limelight audience suppress u17 u42 --channel email --reason complaint
    """
    from limelight.marketing.audiences import SuppressionList

    sl = SuppressionList(open_configured_store(store))
    if remove:
        sl.remove(users, channel)
        console.print(f"removed {len(users)} user(s) from the {channel} suppression list")
    else:
        console.print(f"suppressed {sl.add(users, channel, reason)} user(s) on {channel}")


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(audience_app, name="audience")
    app.add_typer(experiment_app, name="experiment")
