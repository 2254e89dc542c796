"""The RankingEvaluator's figures in `recommender inspect` (text, --json) and `recommender report` (HTML):
read once from the run's artifacts (recorded in ML Metadata) by `read`, rendered by `text_lines` / `html`."""

from __future__ import annotations

import html as html_lib

from components.ranking_evaluator.component import COMPARISON_FILE, RESULT_FILE  # noqa: F401  (read by inspection)
from components.ranking_evaluator.metrics import ACCURACY

COLUMNS = ("users", *ACCURACY, "coverage", "novelty", "intra_list_diversity", "popularity", "head_share")


def read(result: dict, blessing) -> dict:
    """The RankingEvaluator's RESULT_FILE (parsed), plus its blessing's verdict."""
    result = dict(result)
    if blessing is not None:
        result["final_blessed"] = bool(blessing.custom_properties["blessed"].int_value)
    return result


def _row(name: str, figures: dict) -> dict:
    return {"slice": name, **{column: figures.get(column) for column in COLUMNS}}


def rows(ranking: dict) -> list[dict]:
    """One row per slice: overall first."""
    return [_row("Overall", ranking["overall"])] + [_row(name, v) for name, v in ranking["slices"].items()]


def _format(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"


def text_lines(ranking: dict) -> list[str]:
    """The terminal view."""
    k = ranking["k"]
    lines = [f"  top-{k} recommendations (test split, training movies excluded; {ranking['catalogue']:,} movies):"]
    header = "".join(f"{c if c != 'intra_list_diversity' else 'ILD':>11}" for c in COLUMNS)
    lines.append(f"    {'slice':<20}{header}")
    for row in rows(ranking):
        lines.append(f"    {row['slice']:<20}" + "".join(f"{_format(row[c]):>11}" for c in COLUMNS))
    sweep = ", ".join(f"{r['diversity']:g}: NDCG {r['ndcg']:.4f} ILD {r['intra_list_diversity']:.3f}"
                      for r in ranking["diversity_sweep"])  # fmt: skip
    lines.append(f"    diversity knob → {sweep}")
    baseline = ranking.get("baseline_ndcg")
    verdict = "yes" if ranking.get("blessed") else "no: " + "; ".join(ranking.get("not_blessed_because", []))
    against = f"last blessed model's NDCG {baseline:.4f}" if baseline is not None else "no earlier blessed model"
    lines.append(f"  final blessing (RMSE and ranking gates): {verdict} ({against})")
    return lines


def html(ranking: dict | None, table, image, plot) -> str:
    """The report section; `table`, `image` and `plot` are the report's helpers (rows → HTML table,
    png → <img>, sweep → png)."""
    if not ranking:
        return "<h2>Recommendations</h2><p>No ranking evaluation in this run (the RankingEvaluator did not run).</p>"
    k = ranking["k"]
    verdict = "blessed" if ranking.get("blessed") else "not blessed: " + "; ".join(ranking["not_blessed_because"])
    return "\n".join(
        [
            f"<h2>Recommendations (top-{k} on the test split)</h2>",
            f"<p>Each test user's top {k} from <code>recommend</code>, their training movies excluded; relevant = "
            "their test movies (Microsoft Recommenders' protocol). Final blessing: "
            f"<b>{html_lib.escape(verdict)}</b>.</p>",
            table(rows(ranking), ["slice", *COLUMNS]),
            "<h3>Diversity knob: relevance vs intra-list diversity</h3>",
            image(plot(ranking["diversity_sweep"]), "NDCG and intra-list diversity as the diversity knob moves"),
        ]
    )
