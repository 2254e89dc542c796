"""The rating gate's decision in `recommender inspect` (text, --json), `report` and the app: assembled once by
`read` from what inspection read in ML Metadata (the Evaluator's blessing and EvalConfig, the RankingEvaluator's
comparison, components/evaluator/paired.py), rendered by `text_lines`."""

from __future__ import annotations

import json
import re


def gated_metric(metric_config: dict) -> str:
    """The name of the metric a MetricConfig's threshold applies to, as TFMA keys it: the `name` in its config
    (the Evaluator's one-pass rating metrics name their RMSE so), else TFMA's default, the class name in
    snake case (`RootMeanSquaredError` → `root_mean_squared_error`, runs from before those metrics)."""
    name = json.loads(metric_config.get("config") or "{}").get("name")
    return name or re.sub(r"(?<!^)(?=[A-Z])", "_", metric_config["class_name"]).lower()


def thresholds(eval_config_json: str | None) -> dict:
    """The RMSE threshold of the Evaluator's EvalConfig (and the fixed change threshold of older runs)."""
    if not eval_config_json:
        return {}
    config = json.loads(eval_config_json)
    for spec in config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            for per_slice in metric.get("per_slice_thresholds", []):
                threshold = per_slice.get("threshold", {})
                found = {
                    "metric": gated_metric(metric),
                    "upper_bound": threshold.get("value_threshold", {}).get("upper_bound"),
                }
                if "change_threshold" in threshold:  # runs from before the paired comparison
                    found["max_increase_vs_baseline"] = threshold["change_threshold"].get("absolute")
                return found
    return {}


def read(
    within_bound: bool,
    candidate_model: str | None,
    baseline_model: str | None,
    eval_config_json: str | None,
    comparison: dict | None,
) -> dict:
    """The decision: passed iff within the RMSE bound and (when compared) not worse than the baseline by more
    than the margin. `comparison` is paired.compare's result (None in runs from before it)."""
    found = thresholds(eval_config_json)
    if comparison is not None:
        found |= {"margin": comparison["margin"], "confidence": comparison["confidence"]}
    return {
        "blessed": within_bound and (comparison is None or comparison["noninferior"]),
        "within_bound": within_bound,
        "candidate_model": candidate_model,
        "baseline_model": baseline_model,
        "thresholds": found,
        "comparison": comparison,
    }


def text_lines(decision: dict) -> list[str]:
    """The rating gate in words: bound, the test RMSE's interval, the comparison with the last blessed model."""
    t, c = decision["thresholds"], decision["comparison"]
    bound = f"RMSE <= {t.get('upper_bound')}: {'yes' if decision['within_bound'] else 'no'}"
    lines = [f"rating gate: {'passed' if decision['blessed'] else 'refused'} ({bound})"]
    if c is None:
        if "max_increase_vs_baseline" in t:
            lines.append(f"vs the last blessed model: at most +{t['max_increase_vs_baseline']} (fixed, TFMA)")
        return lines
    level = f"{c['confidence']:.0%}"
    interval = f"[{c['rmse_low']:.4f}, {c['rmse_high']:.4f}]"
    lines.append(f"test RMSE {c['rmse']:.4f}, {level} interval over {c['users']:,} users {interval}")
    if "difference" not in c:
        lines.append("vs the last blessed model: none yet (the first blessed model)")
    else:
        verdict = "within" if c["noninferior"] else "beyond"
        lines.append(
            f"vs the last blessed model ({c['baseline_rmse']:.4f}): difference {c['difference']:+.4f}, {level} "
            f"interval [{c['difference_low']:+.4f}, {c['difference_high']:+.4f}], {verdict} the margin +{c['margin']:g}"
        )
    return lines
