"""The main job's marketing step: a campaign on the sample world, and its simulated truth."""

from __future__ import annotations

from typing import Any


def demo_campaign_step(ctx: Any) -> dict[str, Any]:
    """Send an in-app campaign with a 15%-off coupon to the largest RFM segment (personalised
    with the active model), then simulate personalised vs random vs popular items against the
    world's hidden response model and compare the A/B estimate with the true uplift."""
    from limelight.errors import ArtifactError
    from limelight.marketing.audiences import Audience, load_profiles
    from limelight.marketing.campaigns import CampaignManager, CampaignSpec
    from limelight.marketing.content import artifact_recommender, popularity_recommender
    from limelight.marketing.reports import campaign_report
    from limelight.marketing.simulation import simulate_campaign
    from limelight.sim import load_world
    from limelight.store.artifacts import ArtifactStore

    store = ctx.store
    profiles = load_profiles(store)
    segment = str(profiles["rfm_segment"].value_counts().index[0])
    popular = popularity_recommender(store)
    try:
        recommend = artifact_recommender(ArtifactStore(ctx.workdir / "artifacts").load(),
                                         popular)
        source = "active model"
    except (ArtifactError, FileNotFoundError, OSError):
        recommend, source = popular, "popularity"
    manager = CampaignManager(store, recommend=recommend, profiles=profiles)
    cid = manager.create(CampaignSpec(
        f"demo: {segment}", audience=Audience.segment(segment).to_dict(), channel="inapp",
        subject="Picked for you", offer={"offer_id": "demo-15", "kind": "percent",
                                         "value": 15},
        holdout=0.1, schedule={"quiet_hours": None}, frequency_cap=0))
    launch = manager.launch(cid)
    report = campaign_report(store, cid)
    report.plot(ctx.workdir / "campaign.png")
    world = load_world(ctx.world_dir)
    sim = simulate_campaign(world, max_users=5000, replications=100,
                            random_state=ctx.seed).to_dict()
    vs_random = sim["uplift"]["personalised_vs_random"]
    if ctx.console is not None:
        ctx.console.print(
            f"campaign {cid}: segment {segment!r}, {launch.audience['final']} users "
            f"({sum(launch.audience['removed'].values())} removed by consent/unsubscribe/"
            f"suppression/caps), {launch.dispatch['sent']} in-app messages, items from "
            f"{source}; simulated uplift of personalised over random items: true "
            f"{vs_random['true']:+.4f}, estimated {vs_random['estimate']:+.4f} "
            f"[{vs_random['ci_low']:+.4f}, {vs_random['ci_high']:+.4f}]")
    return {
        "summary": (f"campaign to {launch.dispatch['sent']} users of {segment!r}; simulated "
                    f"true uplift {vs_random['true']:+.3f}, CI covers it: "
                    f"{vs_random['covered']}"),
        "campaign_id": cid, "launch": launch.to_dict(), "report": report.to_dict(),
        "simulation": sim,
    }
