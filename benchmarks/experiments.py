"""Do the experiment statistics keep their promises? 10,000 simulated experiments per claim.

Claims checked (alpha = 0.05):

- fixed-horizon two-proportion z-test, A/A: false positive rate within [4.5%, 5.5%];
- Welch t-test on revenue per user (zero-inflated, skewed), A/A: false positive rate reported;
- 30 looks at a growing A/A experiment: the naive z-test rejects far more than 5% (peeking),
  the mSPRT (normal mixture) stays <= 5%;
- 95% interval coverage of the true difference >= 94.5% (Newcombe interval; the confidence
  sequence is checked for simultaneous coverage over all 30 looks);
- sample-ratio-mismatch check at p < 0.001, A/A: false alarms <= 0.2%;
- power at the minimum detectable effect >= 78% with the calculator's sample size;
- bandits: regret of Thompson sampling and UCB1 against uniform allocation;
- a campaign simulated on the sample world (``--world small``): personalised top-3 items (ALS)
  have a positive true uplift over random and popular items, and the A/B estimate's 95% CI
  covers it (single run, and coverage over 200 re-randomisations).

Run: ``python benchmarks/experiments.py [--sims 10000] [--seed 0] [--world small|none]``; writes
``benchmarks/results/experiments.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from limelight.marketing import bandits, stats

ALPHA = 0.05


def fixed_horizon_aa(rng: np.random.Generator, sims: int, n: int, p: float) -> float:
    xc, xt = rng.binomial(n, p, sims), rng.binomial(n, p, sims)
    return float(stats.two_proportion_ztest(xc, n, xt, n, alpha=ALPHA).significant.mean())


def welch_aa(rng: np.random.Generator, sims: int, n: int, chunk: int = 500) -> float:
    rejections = 0
    for start in range(0, sims, chunk):
        m = min(chunk, sims - start)
        # Revenue per user: 10% buy, log-normal basket -- skewed like real revenue.
        c, t = ((rng.random((m, n)) < 0.1) * rng.lognormal(3.0, 1.0, (m, n)) for _ in "ct")
        r = stats.welch_ttest(c.mean(1), c.var(1, ddof=1), n, t.mean(1), t.var(1, ddof=1), n,
                              alpha=ALPHA)
        rejections += int(np.sum(r.significant))
    return rejections / sims


def peeking(rng: np.random.Generator, sims: int, looks: int, n_per_look: int, p_c: float,
            p_t: float, tau: float) -> dict[str, float]:
    xc = rng.binomial(n_per_look, p_c, (sims, looks)).cumsum(axis=1)
    xt = rng.binomial(n_per_look, p_t, (sims, looks)).cumsum(axis=1)
    n = np.arange(1, looks + 1) * n_per_look
    naive = stats.two_proportion_ztest(xc, n, xt, n, alpha=ALPHA).significant.any(axis=1)
    seq = stats.msprt(xc, n, xt, n, mixture_sd=tau, alpha=ALPHA)
    true = p_t - p_c
    covered_all = ((seq.ci_low <= true) & (true <= seq.ci_high)).all(axis=1)
    stop = np.where(seq.rejected.any(axis=1), seq.rejected.argmax(axis=1) + 1, looks)
    return {
        "naive_reject_rate": float(naive.mean()),
        "msprt_reject_rate": float(seq.rejected[:, -1].mean()),
        "cs_simultaneous_coverage": float(covered_all.mean()),
        "msprt_mean_looks_to_stop": float(stop.mean()),
    }


def coverage(rng: np.random.Generator, sims: int, n: int, p_c: float, p_t: float) -> dict:
    xc, xt = rng.binomial(n, p_c, sims), rng.binomial(n, p_t, sims)
    out = {}
    for method in ("newcombe", "wald"):
        r = stats.two_proportion_ztest(xc, n, xt, n, alpha=ALPHA, ci_method=method)
        out[method] = float(((r.ci_low <= p_t - p_c) & (p_t - p_c <= r.ci_high)).mean())
    return out


def srm_false_alarms(rng: np.random.Generator, sims: int, users: int) -> float:
    a = rng.binomial(users, 0.5, sims)
    return float(np.mean(stats.srm_test(np.stack([a, users - a], axis=1))["mismatch"]))


def power_at_mde(rng: np.random.Generator, sims: int, base: float, mde: float) -> dict:
    n = stats.sample_size_proportions(base, mde, alpha=ALPHA, power=0.8)
    xc, xt = rng.binomial(n, base, sims), rng.binomial(n, base + mde, sims)
    empirical = float(stats.two_proportion_ztest(xc, n, xt, n, alpha=ALPHA).significant.mean())
    return {"n_per_arm": n, "planned_power": 0.8, "empirical_power": empirical}


def bandit_regret(seed: int, horizon: int = 5000) -> dict[str, float]:
    rates = {"creative-a": 0.04, "creative-b": 0.05, "creative-c": 0.07}
    out: dict[str, float] = {}
    policies = {
        "thompson": bandits.ThompsonSampling(list(rates), random_state=seed),
        "ucb1": bandits.UCB1(list(rates), random_state=seed),
    }
    for name, policy in policies.items():
        run = bandits.simulate(policy, rates, horizon, random_state=seed)
        out[f"{name}_regret"] = float(run.cumulative_regret[-1])
        out[f"{name}_best_share"] = run.allocation[run.best_arm]
    best = max(rates.values())
    out["uniform_regret"] = float(horizon * (best - np.mean(list(rates.values()))))
    return out


def campaign_simulation(size: str, seed: int) -> dict:
    from limelight.marketing.simulation import simulate_campaign
    from limelight.sim import generate_world

    world = generate_world(size, seed=seed)
    return simulate_campaign(world, replications=200, random_state=seed).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--world", default="small",
                        help="sample-world size for the campaign simulation, or 'none'")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    sims = args.sims
    results: dict[str, object] = {"sims": sims, "alpha": ALPHA, "seed": args.seed}
    timings: dict[str, float] = {}

    def timed(name: str, fn, *a, **k):
        t0 = time.perf_counter()
        value = fn(*a, **k)
        timings[name] = round(time.perf_counter() - t0, 2)
        return value

    results["fixed_horizon_fpr"] = timed("fixed", fixed_horizon_aa, rng, sims, 10_000, 0.10)
    results["welch_revenue_fpr"] = timed("welch", welch_aa, rng, sims, 1_000)
    results["peeking_aa"] = timed("peeking_aa", peeking, rng, sims, 30, 500, 0.10, 0.10, 0.01)
    results["peeking_effect"] = timed("peeking_ab", peeking, rng, sims, 30, 500, 0.10, 0.11,
                                      0.01)
    results["ci_coverage"] = timed("coverage", coverage, rng, sims, 10_000, 0.10, 0.11)
    results["srm_false_alarm_rate"] = timed("srm", srm_false_alarms, rng, sims, 20_000)
    results["power"] = timed("power", power_at_mde, rng, sims, 0.10, 0.01)
    results["bandits"] = timed("bandits", bandit_regret, args.seed)
    if args.world != "none":
        results["campaign_simulation"] = timed("campaign_sim", campaign_simulation, args.world,
                                               args.seed)
    results["seconds"] = timings

    checks = [
        ("fixed-horizon z-test A/A FPR", results["fixed_horizon_fpr"], "in [4.5%, 5.5%]",
         0.045 <= results["fixed_horizon_fpr"] <= 0.055),
        ("Welch revenue A/A FPR", results["welch_revenue_fpr"], "~5% (reported)", True),
        ("naive z-test, 30 peeks, A/A FPR", results["peeking_aa"]["naive_reject_rate"],
         "contrast (inflated)", True),
        ("mSPRT, 30 peeks, A/A FPR", results["peeking_aa"]["msprt_reject_rate"], "<= 5.0%",
         results["peeking_aa"]["msprt_reject_rate"] <= 0.05),
        ("confidence sequence coverage (all 30 looks)",
         results["peeking_effect"]["cs_simultaneous_coverage"], ">= 95% (reported)", True),
        ("mSPRT power, +1pt effect, 30 looks", results["peeking_effect"]["msprt_reject_rate"],
         "reported", True),
        ("95% CI coverage (Newcombe)", results["ci_coverage"]["newcombe"], ">= 94.5%",
         results["ci_coverage"]["newcombe"] >= 0.945),
        ("95% CI coverage (Wald, for contrast)", results["ci_coverage"]["wald"], "reported",
         True),
        ("SRM false alarms (p < 0.001)", results["srm_false_alarm_rate"], "<= 0.2%",
         results["srm_false_alarm_rate"] <= 0.002),
        (f"power at MDE 10% -> 11%, n = {results['power']['n_per_arm']}/arm",
         results["power"]["empirical_power"], ">= 78%",
         results["power"]["empirical_power"] >= 0.78),
    ]
    sim = results.get("campaign_simulation")
    if sim:
        vs_random = sim["uplift"]["personalised_vs_random"]
        checks += [
            ("sim: true uplift personalised vs random", vs_random["true"], "> 0",
             vs_random["true"] > 0),
            ("sim: 95% CI covers the true uplift (1 run)", float(vs_random["covered"]),
             "covered", vs_random["covered"]),
            ("sim: CI coverage over 200 re-draws", sim["coverage"]["personalised_vs_random"],
             "~95% (reported)", True),
        ]
    results["checks"] = [{"claim": c, "value": v, "target": t, "ok": bool(ok)}
                         for c, v, t, ok in checks]
    width = max(len(c) for c, *_ in checks)
    print(f"{'claim':<{width}}  {'value':>8}  {'target':<20} ok")
    for claim, value, target, ok in checks:
        print(f"{claim:<{width}}  {value:>8.2%}  {target:<20} {'yes' if ok else 'NO'}")
    b = results["bandits"]
    print(f"bandit regret over 5000 pulls: thompson {b['thompson_regret']:.1f}, "
          f"ucb1 {b['ucb1_regret']:.1f}, uniform {b['uniform_regret']:.1f}")
    if sim:
        print(f"campaign simulation on the '{args.world}' world ({sim['users']} users, "
              f"top-{sim['n_items']} items):")
        for key, u in sim["uplift"].items():
            print(f"  {key}: true uplift {u['true']:+.4f}, estimate {u['estimate']:+.4f} "
                  f"[{u['ci_low']:+.4f}, {u['ci_high']:+.4f}] covered={u['covered']}, "
                  f"coverage over 200 draws {sim['coverage'][key]:.1%}")
    print("seconds:", timings, "total", round(sum(timings.values()), 1))
    out = Path(__file__).parent / "results" / "experiments.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
