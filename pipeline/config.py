"""The pipeline's configuration: frozen dataclasses built once, at the entry point.

`PipelineConfig` is everything `create_pipeline` needs; `TrainerConfig` travels to
`run_fn`/`tuner_fn` as a plain dict in `custom_config` and is rebuilt there.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from components.example_gen import layouts, splits  # neither imports TensorFlow

DEFAULT_PIPELINE_NAME = "movielens-recommender"
DEFAULT_MODEL_NAME = "movielens_ranker"
METADATA_FILE_NAME = "metadata.sqlite"  # Local runs: the SQLite MLMD store, in the pipeline root by default.


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Training settings passed to run_fn and tuner_fn (hyperparameter defaults included)."""

    epochs: int = 12
    # The rating model's batch size at the Tuner's sizes; the Trainer doubles it until an epoch over train takes
    # at most `ranker_epoch_steps` steps (learning rate × sqrt of the growth, task.scaled), so the steps of an
    # epoch stop growing with the data: 256 on ML-100k (255 steps), 1,024 at 1M ratings (585 steps).
    batch_size: int = 256
    ranker_epoch_steps: int = 1024
    early_stopping_patience: int = 2
    seed: int = 42
    tuner_epochs: int = 3
    tuner_trials: int = 2
    # The Tuner's trials fit on a seeded sample of users holding about this many training ratings (all of them
    # below it: ML-100k's 65k): a trial's cost stops growing with the data (components/tuner/tuner.py).
    tuner_sample_ratings: int = 250_000
    # Defaults used when the Tuner is skipped; the Tuner searches around them.
    learning_rate: float = 0.001
    embedding_dim: int = 16
    layer_sizes: tuple[int, ...] = (64, 32)
    l2: float = 1e-5
    id_embeddings: bool = False  # see transform/features.py ID_FEATURES
    history_factors: int = 16  # see components/trainer/model.py RankingModel; 0: off
    factor_l2: float = 1e-4
    # Ranking models trained (seeds seed, seed+1000, ...) and averaged inside the exported model; 3 lowered
    # test RMSE by 0.006 on the time split at 3x the ranker's training (README "Variants").
    ensemble_size: int = 1
    # After early stopping on eval finds the best epoch E, each ranking model is trained afresh (same seed) for E
    # epochs on train and eval together: the exported model has seen the most recent ratings (docs/results.md).
    refit: bool = True
    # The retrieval model and `recommend` (components/trainer/retrieval.py, recommend.py).
    # The retrieval model's epochs; its NDCG@10 on eval is recorded after each (retrieval_training.py). With
    # `retrieval_patience` N > 0 it stops after N epochs without a better one and keeps the best epoch's weights.
    # Off by default: on ML-100k's time split the eval signal (106 eval users with train history, while most
    # test users are new) peaked at epoch 2 and test NDCG@10 fell 0.351 -> 0.336; on 1M generated ratings
    # patience 1 stopped at epoch 2, cut the Trainer 952 -> 566 s and raised NDCG@10 0.700 -> 0.716 (docs/results.md).
    retrieval_epochs: int = 8
    retrieval_patience: int = 0
    # The retrieval model's budget in steps: it trains ceil(retrieval_steps / its steps per epoch) epochs, at
    # least 1 and at most retrieval_epochs, so its work stops growing as epochs x data. 1,024 steps is ML-100k's 8
    # epochs; on 1M generated ratings the eval NDCG@10 peaked after 1 epoch (1,170 steps), and 1 epoch instead
    # of 8 raised test NDCG@10 0.687 -> 0.720 at the same RMSE (docs/results.md).
    retrieval_steps: int = 1024
    retrieval_batch_size: int = 1024
    # ExampleGen writes each user's ratings together: a smaller shuffle buffer leaves batches of few users.
    retrieval_shuffle_buffer: int = 200_000
    retrieval_dim: int = 32
    retrieval_learning_rate: float = 0.003
    candidates: int = 150  # movies retrieved per request, then reranked
    # `recommend` orders its candidates by candidate score + rating_weight × predicted rating. None: the Trainer
    # chooses it on eval (retrieval_training.choose_rating_weight, from item_item.RATING_WEIGHTS); a number fixes it.
    rating_weight: float | None = None
    # ...with at least this many eval users; below it the weight is 0.2. On ML-100k's time split (106 eval users) the
    # choice followed noise: 1.5 and 0 in two runs of the same code, test NDCG@10 0.354 and 0.332 (0.3: 0.350).
    rating_weight_min_users: int = 500
    # The item-item scorer (components/trainer/item_item.py): EASE over the most-rated movies, each movie's top
    # neighbours kept; its λ and share of the candidate score are chosen on eval.
    item_item_neighbours: int = 200
    item_item_movies: int = 4000

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.ranker_epoch_steps < 1:
            raise ValueError("epochs, batch_size and ranker_epoch_steps must be positive")
        if self.retrieval_epochs < 1 or self.retrieval_batch_size < 2 or self.candidates < 1:
            raise ValueError("retrieval_epochs, candidates must be positive and retrieval_batch_size >= 2")
        if self.rating_weight is not None and self.rating_weight < 0:
            raise ValueError("rating_weight must be >= 0 (or None: chosen on eval)")
        if self.retrieval_steps < 1:
            raise ValueError("retrieval_steps must be >= 1")
        if self.retrieval_patience < 0:
            raise ValueError("retrieval_patience must be >= 0 (0: no early stopping)")
        if self.item_item_neighbours < 1 or self.item_item_movies < 2 or self.retrieval_shuffle_buffer < 1:
            raise ValueError("item_item_neighbours, retrieval_shuffle_buffer must be >= 1 and item_item_movies >= 2")
        if self.ensemble_size < 1:
            raise ValueError("ensemble_size must be >= 1")
        if self.tuner_sample_ratings < 1:
            raise ValueError("tuner_sample_ratings must be >= 1")
        if self.tuner_trials < 0:
            raise ValueError("tuner_trials must be >= 0 (0 skips the Tuner)")
        object.__setattr__(self, "layer_sizes", tuple(self.layer_sizes))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainerConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclasses.dataclass(frozen=True)
class Resources:
    """Container resources requested for the Trainer and Tuner on Kubeflow (ignored by the local runner).

    `gpu_type` is the Kubernetes extended resource name the KFP backend requests (`nvidia.com/gpu`);
    `memory_gb` is in GB, as TFX's ResourceSpec expects.
    """

    gpus: int = 0
    gpu_type: str = "nvidia.com/gpu"
    cpu: float | None = None
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        if self.gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {self.gpus}")
        if self.gpus and not self.gpu_type:
            raise ValueError("gpu_type is required when gpus > 0")
        if (self.cpu is not None and self.cpu <= 0) or (self.memory_gb is not None and self.memory_gb <= 0):
            raise ValueError("cpu and memory_gb must be positive")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Everything the DAG needs. Paths may be local or gs://."""

    pipeline_root: str
    data_dir: str  # A MovieLens release directory in `layout` (components/example_gen/layouts.py).
    serving_dir: str
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    model_name: str = DEFAULT_MODEL_NAME
    metadata_path: str | None = None  # SQLite MLMD file; local runs only.
    split_names: tuple[str, ...] = ("train", "eval", "test")
    split_fractions: tuple[float, ...] = (0.6, 0.2, 0.2)  # the time split's (see split_protocol)
    # How ratings go to the splits: "time" (the seed's), "stratified", "u1".."u5" (components/example_gen/splits.py).
    # Random protocols draw their split with the trainer's seed.
    split_protocol: str = splits.TIME
    layout: str = layouts.ML_100K  # the data's file layout: ml-100k, ml-1m, ml-10m or csv (ml-20m and later)
    max_rejected_fraction: float = 0.001  # of raw records ExampleGen may quarantine before it fails the run
    accepted_anomalies: tuple[str, ...] = ()  # features whose schema anomalies the gate lets through (recorded)
    trainer: TrainerConfig = TrainerConfig()
    rmse_upper_bound: float = 1.10
    # Blessing vs the last blessed model: the upper end of the 95% bootstrap interval (over users) of the
    # paired test RMSE difference candidate − baseline must be <= rmse_margin (components/evaluator/paired.py).
    rmse_margin: float = 0.005
    bootstrap_draws: int = 1000
    top_k: int = 10  # ranking metrics @K (components/ranking_evaluator)
    ndcg_lower_bound: float = 0.0  # blessing: min NDCG@K on the test split
    ndcg_max_decrease: float = 0.02  # blessing: max NDCG@K decrease vs the last blessed model
    enable_cache: bool = True
    beam_pipeline_args: tuple[str, ...] = ()
    schema_file: str | None = None  # Curated schema; default: the copy shipped in the `schemas` package.
    trainer_resources: Resources | None = None  # Kubeflow only: CPU/memory/GPUs for Trainer and Tuner.

    def __post_init__(self) -> None:
        if len(self.split_names) != 3 or len(self.split_fractions) != 3:
            raise ValueError("the pipeline needs three splits: train, eval (validation) and test (evaluation)")
        if any(x <= 0 for x in self.split_fractions) or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(f"split fractions must be positive and sum to 1, got {self.split_fractions}")
        if self.layout not in layouts.LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; one of: {', '.join(layouts.LAYOUTS)}")
        layouts.check_protocol(layouts.LAYOUTS[self.layout], self.split_protocol)
        if not 0 <= self.max_rejected_fraction < 1:
            raise ValueError(f"max_rejected_fraction must be in [0, 1), got {self.max_rejected_fraction}")
        object.__setattr__(self, "accepted_anomalies", tuple(self.accepted_anomalies))
        if self.rmse_upper_bound <= 0 or self.rmse_margin < 0:
            raise ValueError("rmse_upper_bound must be > 0 and rmse_margin >= 0")
        if self.bootstrap_draws < 100:
            raise ValueError(f"bootstrap_draws must be >= 100 (an interval needs draws), got {self.bootstrap_draws}")
        if self.top_k < 1 or not 0 <= self.ndcg_lower_bound <= 1 or self.ndcg_max_decrease < 0:
            raise ValueError("top_k must be >= 1, ndcg_lower_bound within 0..1 and ndcg_max_decrease >= 0")

    @property
    def train_split(self) -> str:
        return self.split_names[0]

    @property
    def eval_split(self) -> str:
        return self.split_names[1]

    @property
    def test_split(self) -> str:
        return self.split_names[2]

    @property
    def metadata_file(self) -> str:
        return self.metadata_path or os.path.join(self.pipeline_root, METADATA_FILE_NAME)

    @property
    def split_seed(self) -> int:
        """The seed the split protocol draws with: the trainer's seed, 0 for the time split (it draws nothing)."""
        return 0 if splits.by_time(self.split_protocol) else self.trainer.seed

    @property
    def training_identity(self) -> dict:
        """Which data and split this run's model trains on (components/identity.py)."""
        from components import identity

        fractions = self.split_fractions if splits.by_time(self.split_protocol) else ()
        return identity.identity(self.data_dir, self.layout, self.split_protocol, self.split_seed, fractions)

    @property
    def model_serving_dir(self) -> str:
        """`<serving_dir>/<model_name>`: TF Serving's model base path; versions go below it."""
        return os.path.join(self.serving_dir, self.model_name)


LOCAL_CLUSTER = "[local-cluster]"  # --flink-master: a Flink session cluster started on this machine for the run
LOCAL_FLINK_MASTERS = ("[local]", LOCAL_CLUSTER)
EMBEDDED_HEAP, LOCAL_CLUSTER_TASK_HEAP = "2g", "1g"  # FlinkConfig.effective_heap


@dataclasses.dataclass(frozen=True)
class FlinkConfig:
    """How `recommender run --beam-runner flink` runs its Beam steps (pipeline/flink/).

    `master` "[local]" embeds Flink in the job server's JVM; "[local-cluster]" starts a Flink session cluster on
    this machine for the run (pipeline/flink/local_cluster.py); HOST:PORT is a cluster's JobManager (REST port).
    `heap` is the Java heap where Flink runs the steps (the job server's with "[local]", the local cluster's
    TaskManager's task heap), `managed_memory` Flink's off-heap memory for batch sorts and joins (spilled to
    `tmp_dir` when full). `parallelism`: how many partitions a Beam step's data is cut into; 0 = this machine's
    cores with "[local]" (where it is also the number of task slots), one per 1.5 MB of input with
    "[local-cluster]" (resolved by the run), the cluster's default otherwise. `slots`: the local cluster's
    TaskManager's task slots, the partitions that run at once (0 = cores). `worker_pool` HOST:PORT of a Beam
    Python worker pool (EXTERNAL environment) a cluster's TaskManagers reach; None: LOOPBACK, the launching
    process runs the Python code (a Flink on this machine).
    """

    master: str = "[local]"
    job_server_jar: str | None = None
    parallelism: int = 0
    heap: str = ""  # "" = effective_heap's default for the master
    managed_memory: str = "512m"
    tmp_dir: str | None = None
    worker_pool: str | None = None
    slots: int = 0

    def __post_init__(self) -> None:
        if self.parallelism < 0:
            raise ValueError(f"Flink parallelism must be >= 0 (0 = all cores), got {self.parallelism}")
        if self.slots < 0:
            raise ValueError(f"Flink task slots must be >= 0 (0 = all cores), got {self.slots}")
        if self.slots and self.master != LOCAL_CLUSTER:
            raise ValueError("--flink-slots sizes the cluster of --flink-master [local-cluster]; give them together")
        for name, value in (("heap", self.effective_heap), ("managed_memory", self.managed_memory)):
            if not (value[:-1].isdigit() and value[-1].lower() in "kmg" and int(value[:-1]) > 0):
                raise ValueError(f"Flink {name.replace('_', ' ')} looks like 2g or 512m, got {value!r}")
        if self.master not in LOCAL_FLINK_MASTERS and ":" not in self.master:
            raise ValueError(
                f"--flink-master is HOST:PORT of a Flink JobManager, [local] or [local-cluster], got {self.master!r}"
            )

    @property
    def effective_heap(self) -> str:
        """The heap given, else 2g for the job server that runs the steps ([local]; a cluster's own settings decide
        elsewhere) and 1g for the local cluster's TaskManager, whose partitions each hold a slice of a step's data
        (at 2M ratings its heap held 50-300 MB live between collections)."""
        return self.heap or (LOCAL_CLUSTER_TASK_HEAP if self.master == LOCAL_CLUSTER else EMBEDDED_HEAP)

    @property
    def effective_parallelism(self) -> int:
        return self.parallelism or os.cpu_count() or 1

    @property
    def effective_slots(self) -> int:
        return self.slots or os.cpu_count() or 1


# kubeflow/manifests/flink/: the Beam job server's Service, and the worker pool beside every TaskManager (as the
# TaskManager reaches it): where `recommender compile --beam-runner flink` points the Beam steps by default.
CLUSTER_FLINK_JOB_ENDPOINT = "movielens-flink-job-server:8099"
CLUSTER_FLINK_WORKER_POOL = "localhost:50000"

BEAM_RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner")
# Beam options that carry credentials. Beam args are recorded in ML Metadata and in the compiled
# pipeline spec, so these are refused: their libraries read the same secrets from the environment.
SECRET_BEAM_OPTIONS = (
    "--s3_access_key_id",
    "--s3_secret_access_key",
    "--s3_session_token",
    "--azure_connection_string",
)
_SECRET_WORDS = ("secret", "password", "token", "credential", "private_key")


def beam_args(runner: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`--runner=<runner>` plus the user's extra Beam args, refusing a second `--runner`."""
    if runner not in BEAM_RUNNERS:
        raise ValueError(f"unknown Beam runner {runner!r}; expected one of {', '.join(BEAM_RUNNERS)}")
    for arg in extra:
        if not arg.startswith("--"):
            raise ValueError(f"Beam args look like --name=value, got {arg!r}")
        name = arg.split("=", 1)[0]
        if name == "--runner":
            raise ValueError("give the Beam runner with --beam-runner, not as a --beam-arg")
        if name in SECRET_BEAM_OPTIONS or any(word in name.lower() for word in _SECRET_WORDS):
            raise ValueError(
                f"Beam arg {name} carries a credential: it would be stored in ML Metadata and the compiled "
                "pipeline. Give it through the environment of the workers instead (e.g. AWS_SECRET_ACCESS_KEY)."
            )
    return (f"--runner={runner}", *extra)


# This project's setup.py (it requires tfx), present where the project is installed from its source tree.
PROJECT_SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def direct_runner_args(mode: str = "in_memory", workers: int = 0) -> tuple[str, ...]:
    """Beam DirectRunner args: `in_memory` (default) or `multi_processing` with N workers (0 = all cores).

    They name the workers' dependencies (`--setup_file`, this project's). Beam args that name none make
    every TFX Beam executor repackage the installed TFX into a new sdist under the temp directory first
    (`tfx.utils.dependency_utils`): 2.5 s and 49 MB per component run, never deleted (46 GB of them had
    piled up on a development machine and filled CI's disk). DirectRunner stages nothing: its workers
    are this interpreter or its subprocesses, which import TFX and this project already.
    """
    if mode not in ("in_memory", "multi_processing", "multi_threading"):
        raise ValueError(f"unknown Beam direct running mode {mode!r}")
    args = ("--runner=DirectRunner", f"--direct_running_mode={mode}")
    if os.path.isfile(PROJECT_SETUP_FILE):
        args = (*args, f"--setup_file={PROJECT_SETUP_FILE}")
    return args if mode == "in_memory" else (*args, f"--direct_num_workers={workers}")


# A Beam arg's `${NAME}` is read from the environment when its component runs (pipeline.pipeline), not when the
# pipeline is built: the local Flink job server's port changes per run and must not change cache keys.
FLINK_JOB_ENDPOINT = "${RECOMMENDER_FLINK_JOB_ENDPOINT}"


def flink_runner_args(
    config: FlinkConfig, job_endpoint: str = FLINK_JOB_ENDPOINT, package: str | None = None
) -> tuple[str, ...]:
    """Beam args of every Beam step on Flink: Beam's portable runner against one job server.

    `--sdk_location=container`: the workers already have this SDK (LOOPBACK: this interpreter; EXTERNAL: the
    pipeline image). The workers' dependencies: `package` (`--extra_package`, a wheel already built, as in the
    pipeline image), else this project's `--setup_file` as for the DirectRunner (naming neither makes TFX
    package itself per component).
    """
    if config.worker_pool:
        environment = ("--environment_type=EXTERNAL", f"--environment_config={config.worker_pool}")
    else:
        environment = ("--environment_type=LOOPBACK",)
    # BATCH_FORCED: every exchange between steps is blocking, so Flink schedules a step's partitions as task slots
    # free up rather than all at once (TFX's advice for Flink; what bounds memory on a cluster, local_cluster.py).
    args = (
        "--runner=PortableRunner", f"--job_endpoint={job_endpoint}", *environment, "--sdk_location=container",
        "--execution_mode_for_batch=BATCH_FORCED",
    )  # fmt: skip
    if package:
        return (*args, f"--extra_package={package}")
    return (*args, f"--setup_file={PROJECT_SETUP_FILE}") if os.path.isfile(PROJECT_SETUP_FILE) else args
