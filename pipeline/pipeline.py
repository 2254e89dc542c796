"""`create_pipeline(config)`: the DAG, wiring only. Shared by the local and Kubeflow runners."""

from __future__ import annotations

import importlib.resources
import json
import os
import re

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx
from tfx.dsl.placeholder import runtime_placeholders  # tfx.v1.dsl.placeholders lacks environment_variable

from components import gates
from components.evaluator.eval_config import make_eval_config
from components.example_gen import layouts
from components.example_gen.component import movielens_example_gen
from components.pusher.component import AtomicPusher
from components.ranking_evaluator.component import RankingEvaluator
from components.schema_gen import ContentKeyedImportSchemaGen, file_sha256
from pipeline.config import PipelineConfig, Resources
from pipeline.fingerprint import code_fingerprint
from schemas import derive

PREPROCESSING_FN = "transform.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.task.run_fn"
TUNER_FN = "components.tuner.tuner.tuner_fn"

# Component ids, as they appear in MLMD and in the progress lines.
EXAMPLE_GEN = "ExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_IMPORTER = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
VALIDATION_GATE = "ValidationGate"
TRANSFORM = "Transform"
TUNER = "Tuner"
TRAINER = "Trainer"
MODEL_RESOLVER = "LatestBlessedModelResolver"
EVALUATOR = "Evaluator"
RANKING_EVALUATOR = "RankingEvaluator"
PUSHER = "Pusher"


def schema_path(layout: str = layouts.ML_100K) -> str:
    """Path of the schema shipped in the `schemas` package for `layout` (the curated one, or one derived from it)."""
    return str(importlib.resources.files("schemas") / derive.file_name(layout))


def schema_sha256(schema_file: str, layout: str = layouts.ML_100K) -> str:
    """The content hash that keys ImportSchemaGen's cache (see components/schema_gen.py).

    A local file is hashed as it is. A local path that does not exist where the pipeline is compiled
    is the pipeline image's copy of the packaged schema (kubeflow/Dockerfile installs this source),
    so the packaged copy is hashed. A remote URI (gs://) is not read at compile time: its path alone
    keys the cache, as in stock TFX.
    """
    if "://" in schema_file:
        return ""
    return file_sha256(schema_file if os.path.exists(schema_file) else schema_path(layout))


ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec


def resource_spec(resources: Resources) -> ResourceSpec:
    """The KFP v2 container ResourceSpec: CPU/memory (request = limit), accelerator type and count."""
    spec = ResourceSpec()
    if resources.cpu is not None:
        spec.cpu_limit = spec.cpu_request = resources.cpu
    if resources.memory_gb is not None:
        spec.memory_limit = spec.memory_request = resources.memory_gb
    if resources.gpus:
        spec.accelerator.type = resources.gpu_type
        spec.accelerator.count = resources.gpus
    return spec


def create_pipeline(config: PipelineConfig, metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """The MovieLens recommender DAG (see README/DESIGN.md); tuner included iff tuner_trials > 0."""
    trainer_config = config.trainer.to_dict()
    model_code = code_fingerprint(
        "components.trainer", "components.tuner", "components.identity", "transform", "pipeline.config"
    )

    example_gen = movielens_example_gen(
        config.data_dir,
        list(config.split_names),
        list(config.split_fractions),
        code_fingerprint("components.example_gen", "transform.features"),
        config.max_rejected_fraction,
        config.split_protocol,
        config.split_seed,
        config.layout,
    ).with_id(EXAMPLE_GEN)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(STATISTICS_GEN)
    schema_file = config.schema_file or schema_path(config.layout)
    schema_gen = ContentKeyedImportSchemaGen(schema_file, schema_sha256(schema_file, config.layout)).with_id(
        SCHEMA_IMPORTER
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(EXAMPLE_VALIDATOR)
    gate = gates.ValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        schema=schema_gen.outputs["schema"],
        code_fingerprint=code_fingerprint("components.gates", "components.evaluator.eval_config"),
        accepted_anomalies=json.dumps(sorted(config.accepted_anomalies)),
    ).with_id(VALIDATION_GATE)
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=gate.outputs["validated_schema"],
        preprocessing_fn=PREPROCESSING_FN,
        splits_config=tfx.proto.SplitsConfig(
            analyze=[config.train_split], transform=[config.train_split, config.eval_split]
        ),
        custom_config={"code_fingerprint": code_fingerprint("transform")},
        # Its pre/post-transform TFDV statistics are read by nothing here (StatisticsGen covers the raw data).
        disable_statistics=True,
        # Traced as a TF1 graph: the same transformed data, in 41 s instead of 58 s on ML-100k (TF2 tracing
        # runs preprocessing_fn through tf.function once per analysis phase and again for the saved graph).
        force_tf_compat_v1=True,
    ).with_id(TRANSFORM)
    components = [example_gen, statistics_gen, schema_gen, example_validator, gate, transform]

    hyperparameters = None
    training_identity = json.dumps(config.training_identity, sort_keys=True)
    custom_config = {**trainer_config, "code_fingerprint": model_code, "training_identity": training_identity}
    if config.trainer.tuner_trials > 0:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=gate.outputs["validated_schema"],
            train_args=tfx.proto.TrainArgs(splits=[config.train_split]),
            eval_args=tfx.proto.EvalArgs(splits=[config.eval_split]),
            custom_config=custom_config,
        ).with_id(TUNER)
        if config.trainer_resources:
            tuner.with_platform_config(resource_spec(config.trainer_resources))
        components.append(tuner)
        hyperparameters = tuner.outputs["best_hyperparameters"]

    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=gate.outputs["validated_schema"],
        hyperparameters=hyperparameters,
        train_args=tfx.proto.TrainArgs(splits=[config.train_split]),
        eval_args=tfx.proto.EvalArgs(splits=[config.eval_split]),
        custom_config=custom_config,
    ).with_id(TRAINER)
    if config.trainer_resources:
        trainer.with_platform_config(resource_spec(config.trainer_resources))
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        # The final blessing (RMSE and ranking), not the Evaluator's: a model the ranking gate refused
        # was never pushed and must not become the baseline.
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing,
            producer_component_id=RANKING_EVALUATOR,
            output_key="blessing",
        ),
    ).with_id(MODEL_RESOLVER)
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        eval_config=make_eval_config(
            config.rmse_upper_bound,
            layouts.LAYOUTS[config.layout].has_user_attributes,
            layouts.LAYOUTS[config.layout].rating_range,
        ),
        example_splits=[config.test_split],
        schema=gate.outputs["evaluation_schema"],  # TFMA decodes the label alone; the model gives the slices
    ).with_id(EVALUATOR)
    ranking_evaluator = RankingEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        rating_blessing=evaluator.outputs["blessing"],
        baseline_model=model_resolver.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        test_split=config.test_split,
        k=config.top_k,
        ndcg_lower_bound=config.ndcg_lower_bound,
        ndcg_max_decrease=config.ndcg_max_decrease,
        rmse_margin=config.rmse_margin,
        bootstrap_draws=config.bootstrap_draws,
        training_identity=training_identity,
        code_fingerprint=code_fingerprint(
            "components.ranking_evaluator", "components.evaluator.paired", "components.identity"
        ),
    ).with_id(RANKING_EVALUATOR)
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=ranking_evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.model_serving_dir)
        ),
        custom_config={
            "code_fingerprint": code_fingerprint("components.pusher", "components.identity"),
            "training_identity": training_identity,
        },
    ).with_id(PUSHER)
    components += [trainer, model_resolver, evaluator, ranking_evaluator, pusher]

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=[_beam_arg(arg) for arg in config.beam_pipeline_args],
    )


_ENV_REFERENCE = re.compile(r"^(.*)\$\{([A-Z][A-Z0-9_]*)\}$")


def _beam_arg(arg: str):
    """A Beam arg ending in `${NAME}` becomes a TFX placeholder reading NAME from the environment when the
    component runs (pipeline.config.FLINK_JOB_ENDPOINT): its value is not part of the cache key."""
    match = _ENV_REFERENCE.match(arg)
    return match.group(1) + runtime_placeholders.environment_variable(match.group(2)) if match else arg
