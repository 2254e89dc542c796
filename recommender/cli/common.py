"""What every `recommender` command shares: the group, one-line errors, options, the config builder."""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import click

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from components.example_gen import splits
from pipeline.config import DEFAULT_PIPELINE_NAME, PipelineConfig, TrainerConfig

DEFAULT_WORKDIR = "artifacts"


def fail(message: str) -> NoReturn:
    """Ends the command with `Error: <message>` (exit 1)."""
    raise click.ClickException(message)


class _Commands(click.Group):
    """Every failure ends in one `Error:` line (exit 1); `--debug` adds the Python stack for bug reports.

    Expected failures raise click.ClickException (`fail`); anything else is a bug of ours or of a
    library, reported in one line by default so that users never see a page of traceback, and with
    its stack under `--debug`, so that developers still can.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort):
            raise
        except click.ClickException as error:
            if ctx.params.get("debug") and (error.__cause__ or error.__context__):
                cause = error.__cause__ or error.__context__
                traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
            raise
        except Exception as error:  # Not one we expected: one line, the stack only under --debug.
            debug = ctx.params.get("debug")
            if debug:
                traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            hint = "" if debug else " (run again with --debug to see the stack)"
            raise click.ClickException(f"unexpected {type(error).__name__}: {message}{hint}") from error


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--debug",
    is_flag=True,
    envvar="RECOMMENDER_DEBUG",
    help="On failure, print the Python stack above the Error: line (for bug reports).",
)
def main(debug: bool) -> None:
    """MovieLens recommender: a TFX pipeline from raw MovieLens to a TF Serving model."""


mirror_option = click.option(
    "--mirror",
    envvar="MOVIELENS_MIRROR",
    type=click.Path(),
    help="Local ml-100k.zip or extracted directory to use instead of downloading (env MOVIELENS_MIRROR).",
)
data_root_option = click.option(
    "--data-root",
    default=os.path.join(DEFAULT_WORKDIR, "data"),
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the verified ml-100k/ directory is kept.",
)


def options(*decorators):
    """One decorator applying several click options, in the order given."""

    def decorate(command):
        for option in reversed(decorators):
            command = option(command)
        return command

    return decorate


# Training and blessing options shared by `run` and `compile`; their defaults are the configs' (one definition).
model_options = options(
    click.option(
        "--epochs",
        default=TrainerConfig.epochs,
        show_default=True,
        type=click.IntRange(min=1),
        help="The most epochs of the rating model (early stopping on eval RMSE).",
    ),
    click.option(
        "--batch-size",
        default=TrainerConfig.batch_size,
        show_default=True,
        type=click.IntRange(min=1),
        help="The rating model's batch size (Tuner; the Trainer's until --ranker-epoch-steps doubles it).",
    ),
    click.option(
        "--ranker-epoch-steps",
        default=TrainerConfig.ranker_epoch_steps,
        show_default=True,
        type=click.IntRange(min=1),
        help="The Trainer doubles the rating model's batch until an epoch takes at most this many steps.",
    ),
    click.option(
        "--tuner-trials",
        default=TrainerConfig.tuner_trials,
        show_default=True,
        type=click.IntRange(min=0),
        help="0 skips the Tuner.",
    ),
    click.option("--tuner-epochs", default=TrainerConfig.tuner_epochs, show_default=True, type=click.IntRange(min=1)),
    click.option(
        "--tuner-sample-ratings",
        default=TrainerConfig.tuner_sample_ratings,
        show_default=True,
        type=click.IntRange(min=1),
        help="The Tuner's trials fit on a seeded sample of users holding about this many training ratings.",
    ),
    click.option(
        "--retrieval-epochs",
        default=TrainerConfig.retrieval_epochs,
        show_default=True,
        type=click.IntRange(min=1),
        help="Epochs of the retrieval (recommend) model (the most, with --retrieval-patience).",
    ),
    click.option(
        "--retrieval-steps",
        default=TrainerConfig.retrieval_steps,
        show_default=True,
        type=click.IntRange(min=1),
        help="The retrieval model's budget in steps: ceil(steps / steps per epoch) epochs, 1 to --retrieval-epochs.",
    ),
    click.option(
        "--retrieval-patience",
        default=TrainerConfig.retrieval_patience,
        show_default=True,
        type=click.IntRange(min=0),
        help="Stop the retrieval model after N epochs without a better NDCG@10 on eval (0: no early stopping).",
    ),
    click.option(
        "--rating-weight-min-users",
        default=TrainerConfig.rating_weight_min_users,
        show_default=True,
        type=click.IntRange(min=1),
        help="Choose the predicted rating's weight in recommend's order on eval given this many eval users (else 0.2).",
    ),
    click.option(
        "--ensemble",
        "ensemble_size",
        default=TrainerConfig.ensemble_size,
        show_default=True,
        type=click.IntRange(min=1),
        help="Ranking models averaged in the exported model (each trained with its own seed).",
    ),
    click.option(
        "--refit/--no-refit",
        default=TrainerConfig.refit,
        show_default=True,
        help="Retrain each ranking model for its best epoch (found on eval) on train and eval together.",
    ),
    click.option(
        "--seed", default=TrainerConfig.seed, show_default=True, type=int, help="Training seed (and random splits')."
    ),
    click.option(
        "--split",
        "split_protocol",
        type=click.Choice(splits.PROTOCOLS),
        default=PipelineConfig.split_protocol,
        show_default=True,
        help="How ratings go to train/eval/test: by time (oldest 60/20/20), per-user stratified random "
        "65/10/25, or the zip's fold uK (test = uK.test). time-frozen is the time split with histories cut at "
        "the end of eval; it and the random protocols hide test ratings from histories.",
    ),
    click.option(
        "--rmse-upper-bound",
        default=PipelineConfig.rmse_upper_bound,
        show_default=True,
        type=float,
        help="Blessing: max RMSE.",
    ),
    click.option(
        "--rmse-margin",
        default=PipelineConfig.rmse_margin,
        show_default=True,
        type=float,
        help="Blessing: the test RMSE may exceed the last blessed model's by at most this (upper end of the "
        "95% bootstrap interval over users of the paired difference).",
    ),
    click.option(
        "--bootstrap-draws",
        default=PipelineConfig.bootstrap_draws,
        show_default=True,
        type=click.IntRange(min=100),
        help="Draws of the blessing's bootstrap over test users.",
    ),
    click.option(
        "--ndcg-lower-bound",
        default=PipelineConfig.ndcg_lower_bound,
        show_default=True,
        type=float,
        help="Blessing: min NDCG@10 on the test split.",
    ),
    click.option(
        "--ndcg-max-decrease",
        default=PipelineConfig.ndcg_max_decrease,
        show_default=True,
        type=float,
        help="Blessing: max NDCG@10 decrease under the last blessed model.",
    ),
    click.option("--no-cache", is_flag=True, help="Re-run every component even if its inputs are unchanged."),
    click.option(
        "--max-rejected-fraction",
        default=PipelineConfig.max_rejected_fraction,
        show_default=True,
        type=click.FloatRange(min=0, max=1, max_open=True),
        help="ExampleGen fails the run if more than this fraction of raw records is malformed (else quarantined).",
    ),
    click.option(
        "--accept-anomalies",
        "accepted_anomalies",
        multiple=True,
        metavar="FEATURE",
        help="Let schema anomalies of FEATURE through the validation gate ('*' = all); repeatable, recorded in MLMD.",
    ),
)
pipeline_name_option = click.option("--pipeline-name", default=DEFAULT_PIPELINE_NAME, show_default=True)


def build_config(**kwargs):
    """Builds the frozen PipelineConfig from CLI values; a bad value is a usage error, not a traceback."""
    names = (
        "epochs",
        "batch_size",
        "ranker_epoch_steps",
        "tuner_trials",
        "tuner_epochs",
        "tuner_sample_ratings",
        "retrieval_epochs",
        "retrieval_steps",
        "retrieval_patience",
        "rating_weight_min_users",
        "ensemble_size",
        "refit",
        "seed",
    )
    trainer = {key: kwargs.pop(key) for key in names}
    kwargs["enable_cache"] = not kwargs.pop("no_cache")
    try:
        return PipelineConfig(trainer=TrainerConfig(**trainer), **kwargs)
    except ValueError as error:
        fail(str(error))
