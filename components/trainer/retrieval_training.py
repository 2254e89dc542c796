"""Training the retrieval model and building what `recommend` needs besides the ranker (called by run_fn).

The query tower learns from two kinds of examples, half and half:
- point in time: each training rating with the user's history just before it (Transform's output), which
  teaches it users with little or no history (new users, cold start);
- profile: each training rating with the user's whole profile as `recommend` will see it (the snapshot,
  run through the same Transform), the rated movie itself masked out of the earlier-movies list. This is
  what a top-K request asks ("which of the movies this user has not rated will they rate?"); with point-in-
  time examples alone the model learns "what comes next", which scores poorly when the held-out movies are
  spread over the user's whole history (stratified protocols).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from scipy import sparse
from tfx import v1 as tfx

from components.trainer import cold_start, data, item_item, recommend, retrieval, snapshot
from components.trainer.model import Vocabularies
from pipeline.config import TrainerConfig
from transform import features as f

ROW_FEATURES = (*f.PASSTHROUGH_FEATURES, f.MOVIE_GENRES_XF, *retrieval.CANDIDATE_FEATURES)
_FLOAT = {*retrieval.USER_DENSE, f.PROFILE_DEVIATIONS, f.MOVIE_YEAR_XF, f.MOVIE_YEAR_MISSING_XF}
_LISTS = {f.PROFILE_MOVIES, f.PROFILE_DEVIATIONS, f.MOVIE_GENRES_XF, f.MOVIE_TITLE_TOKENS_XF}
TOWER_FEATURES = (*retrieval.QUERY_FEATURES, *retrieval.CANDIDATE_FEATURES)
MIN_STEPS = 20
EVAL_USERS = 2000  # the item-item scorer's λ and blend are chosen on at most this many eval users
EVAL_NDCG = "eval_ndcg_at_10"  # the towers' NDCG@10 on the eval users after each epoch (history.json)
# The predicted rating's weight when too few eval users choose it: the median of the weights eval chose where it had
# enough (ML-100k stratified, seeds 52-54: 0.2, 0.75, 0.2). Until 2026-12-07 it was 0.3, a value once chosen on test.
DEFAULT_RATING_WEIGHT = 0.2
RATING_USERS_PER_BATCH = 128  # eval users whose candidates the ranker scores at once (128 × 150 pairs)
# The rating weight is chosen on at most this many of them (a seeded sample): scoring every candidate through
# Transform and the ranker costs about 20 ms a user; the eval NDCG@10 moves by under 0.003 across weights.
RATING_WEIGHT_USERS = 1000


def tower_inputs(features: dict) -> dict[str, tf.Tensor]:
    """The towers' inputs in one layout whatever their source: scalars [b], lists [b, n]; ints as int64.
    (User attribute features are absent in releases without a users file.)"""
    return {
        name: tf.cast(
            features[name] if name in _LISTS else tf.reshape(features[name], [-1]),
            tf.float32 if name in _FLOAT else tf.int64,
        )
        for name in f.present(TOWER_FEATURES, features)
    }


def user_query_inputs(
    recommender: recommend.Recommender,
    tft_layer,
    users: np.ndarray,
    movies: np.ndarray | None = None,
    ratings: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The query tower's transformed inputs of each user, as `recommend` computes them from the snapshot and the
    request's (movie id, rating) pairs ([users, n]; none when omitted)."""
    if movies is None:
        movies, ratings = np.zeros((len(users), 0), object), np.zeros((len(users), 0), np.float32)
    parts: dict[str, list] = {}
    for start in range(0, len(users), 2048):
        ids = tf.constant([u.encode() for u in users[start : start + 2048]])
        rows = [[str(m).encode() for m in row] for row in movies[start : start + 2048]]
        given = tf.constant(rows, tf.string, [len(ids), movies.shape[1]])
        state = recommender.user_state(ids, given, tf.constant(ratings[start : start + 2048], tf.float32))
        transformed = tft_layer(recommender.pair_features(state, tf.zeros([len(ids), 1], tf.int64)))
        inputs = tower_inputs({**transformed, **state["profile"], **_dummy_candidate(len(ids))})
        for name in f.present(retrieval.QUERY_FEATURES, inputs):
            parts.setdefault(name, []).append(inputs[name].numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


def _dummy_candidate(n: int) -> dict:
    return {name: tf.zeros([n, 1], tf.int64) for name in retrieval.CANDIDATE_FEATURES}


def profile_dataset(
    queries: dict[str, np.ndarray], users: np.ndarray, movies: dict[str, np.ndarray], batch: int, seed: int | None
) -> tf.data.Dataset:
    """Batches of (the user's profile without the target movie, the target movie); shuffled when seed is given.

    The shuffle is a new permutation of the row indices every epoch (each pass over the dataset draws its seed):
    8 bytes a row, where a shuffle buffer of whole rows held ~800 bytes a row and took 7x as long to fill
    (800k rows: 0.9 GB, 10 s an epoch; docs/results.md).
    """
    tables = {name: tf.constant(value) for name, value in queries.items()}
    columns = {"user": tf.constant(users), **{name: tf.constant(value) for name, value in movies.items()}}
    count = len(users)
    if seed is None:
        order = tf.data.Dataset.range(count)
    else:
        order = (
            tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            .take(1)
            .map(lambda draw: tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), [draw, 0]))
            .unbatch()
        )

    def example(indices: tf.Tensor) -> dict:
        rows = {name: tf.gather(column, indices) for name, column in columns.items()}
        query = {name: tf.gather(table, rows["user"]) for name, table in tables.items()}
        target = tf.cast(tf.reshape(rows[f.MOVIE_ID_XF], [-1, 1]), tf.int64)
        hit = tf.equal(query[f.PROFILE_MOVIES], target)
        query[f.PROFILE_MOVIES] = tf.where(hit, tf.constant(-1, tf.int64), query[f.PROFILE_MOVIES])
        query[f.PROFILE_DEVIATIONS] = tf.where(hit, 0.0, query[f.PROFILE_DEVIATIONS])
        return tower_inputs({**query, **{name: rows[name] for name in retrieval.CANDIDATE_FEATURES}})

    return order.batch(batch).map(example, num_parallel_calls=tf.data.AUTOTUNE)


def train_recommender(
    fn_args: tfx.components.FnArgs,
    tft_output: tft.TFTransformOutput,
    config: TrainerConfig,
    vocab: Vocabularies,
    strategy: tf.distribute.Strategy,
    ranker: tf.keras.Model,
) -> tuple[recommend.Recommender, dict, dict]:
    """Builds the snapshot of every user and movie from the train and eval splits (everything the Trainer
    saw), trains the retrieval model, fits the item-item scorer, chooses the new-user popularity prior
    (cold_start.py), and returns the Recommender module (with its
    movie vectors and neighbours), the retrieval model's training history (with each phase's seconds) and the
    choices made on eval (the item-item scorer's, and the weight of the predicted rating).

    `ranker`: a ranking model trained on train alone (before the refit), which scores the eval users'
    candidates when the rating weight is chosen (unless config.rating_weight fixes it)."""

    def read(files: list[str], batch_size: int, shuffle: bool) -> tf.data.Dataset:
        return data.make_dataset(
            files, fn_args.data_accessor, tft_output, batch_size, shuffle, config.seed, config.retrieval_shuffle_buffer
        )

    started = time.monotonic()
    row_features = f.present(ROW_FEATURES, tft_output.transformed_feature_spec())  # user attributes if any
    train_rows = data.collect(read(fn_args.train_files, 4096, False), row_features)
    eval_rows = data.collect(read(fn_args.eval_files, 4096, False), row_features)
    rows = {name: np.concatenate([train_rows[name], eval_rows[name]]) for name in train_rows}
    genre_vocab = [g.decode("utf-8") for g in tft_output.vocabulary_by_name(f.GENRES_VOCAB)]

    def genre_lists(split_rows: dict) -> list[tuple[str, ...]]:
        return [
            tuple(genre_vocab[i] for i in row if 0 <= i < len(genre_vocab)) for row in split_rows[f.MOVIE_GENRES_XF]
        ]

    state = snapshot.build(rows, genre_lists(rows))
    _, first = np.unique(np.asarray(rows[f.MOVIE_ID]), return_index=True)  # the snapshot's movie order
    catalogue = retrieval.candidate_features(rows, first)

    movie_rows = vocab.sizes[f.MOVIE_ID_XF] + f.NUM_OOV_BUCKETS
    train_movies = train_rows[f.MOVIE_ID_XF].reshape(-1)
    sampling = np.bincount(train_movies, minlength=movie_rows) / max(train_movies.size, 1)
    hp = retrieval.RetrievalHyperparameters(config.retrieval_dim, config.retrieval_learning_rate)
    with strategy.scope():
        model = retrieval.build_retrieval(hp, vocab, sampling)
    movies = len(state.movie_ids)
    recommender = recommend.Recommender(
        state, np.zeros((movies, hp.dim), np.float32), catalogue[f.MOVIE_ID_XF], model.query_tower,
        config.candidates, DEFAULT_RATING_WEIGHT, data.rating_range(tft_output),
    )  # fmt: skip
    tft_layer = tft_output.transform_features_layer()
    queries = user_query_inputs(recommender, tft_layer, state.user_ids)

    def profiles(split_rows: dict, seed: int | None) -> tf.data.Dataset:
        users = np.searchsorted(state.user_ids, snapshot.text(split_rows[f.USER_ID]))
        movies = {name: np.asarray(split_rows[name]) for name in retrieval.CANDIDATE_FEATURES}
        return profile_dataset(queries, users, movies, batch, seed)

    # At least MIN_STEPS steps an epoch: small data (tests, a new catalogue) gets smaller batches.
    batch = int(min(config.retrieval_batch_size, max(32, len(train_movies) // MIN_STEPS)))
    point_in_time = read(fn_args.train_files, batch, True).map(
        lambda x, _: tower_inputs(
            {**x, f.PROFILE_MOVIES: x[f.USER_PRIOR_MOVIES_XF], f.PROFILE_DEVIATIONS: x[f.USER_PRIOR_DEVIATIONS_XF]}
        )  # fmt: skip
    )
    train = tf.data.Dataset.sample_from_datasets(
        [point_in_time, profiles(train_rows, config.seed)], seed=config.seed, stop_on_empty_dataset=False
    )

    # Choices on eval see the eval users as `recommend` would have seen them at the end of train: their profiles
    # from a train-only snapshot, scored against their eval movies not rated in train.
    train_state = snapshot.build(train_rows, genre_lists(train_rows))
    _, train_first = np.unique(np.asarray(train_rows[f.MOVIE_ID]), return_index=True)
    train_recommender = recommend.Recommender(
        train_state, np.zeros((len(train_state.movie_ids), hp.dim), np.float32),
        retrieval.candidate_features(train_rows, train_first)[f.MOVIE_ID_XF], model.query_tower, 1, 0.0,
        data.rating_range(tft_output),
    )  # fmt: skip
    judged = eval_users(state, train_rows, eval_rows, config.seed)
    judged_queries = user_query_inputs(train_recommender, tft_layer, state.user_ids[judged.users])

    # The towers' NDCG@10 on eval after every epoch, and with retrieval_patience early stopping on it (the best
    # epoch's weights kept). Not on the retrieval task's own eval recall: it peaked after one epoch while top-K
    # accuracy on held-out movies kept rising for several (stratified ML-100k: NDCG@10 0.364 after epoch 1, 0.431
    # after 3). Off by default: where eval users are not the test population it stops too early (config.py).
    callbacks = [EvalNdcg(judged, judged_queries, catalogue)] if len(judged.users) else []
    stopping = None
    if callbacks and config.retrieval_patience:
        stopping = tf.keras.callbacks.EarlyStopping(
            monitor=EVAL_NDCG, mode="max", patience=config.retrieval_patience, restore_best_weights=True
        )
        callbacks.append(stopping)
    seconds = {"snapshot": time.monotonic() - started}
    epochs = retrieval_epochs(len(train_movies), batch, config)
    history = model.fit(train, epochs=epochs, verbose=0, callbacks=callbacks)
    seconds["fit"] = time.monotonic() - started - seconds["snapshot"]
    recommender.movie_vectors.assign(model.candidate_tower(catalogue))
    record = {name: [float(x) for x in values] for name, values in history.history.items()}
    record["best_epoch"] = stopping.best_epoch + 1 if stopping else epochs  # the weights kept
    record["epochs"], record["steps_per_epoch"] = epochs, steps_per_epoch(len(train_movies), batch)

    query_vectors = model.query_tower(judged_queries).numpy() if len(judged.users) else np.zeros((0, hp.dim))
    movie_vectors = recommender.movie_vectors.numpy()
    choice, judged_scores, fitted = choose_item_item(judged, query_vectors, movie_vectors, config)
    both = item_item.rated_matrix(*split_indices(state, rows), (len(state.user_ids), movies))
    neighbours = item_item.fit(both, choice["regularization"], config.item_item_neighbours, config.item_item_movies)
    recommender.set_item_item(neighbours, choice["share"])
    seconds["item_item"] = time.monotonic() - started - sum(seconds.values())

    newcomers = cold_start.new_users(state.movie_ids, train_rows, eval_rows, config.seed, cold_start.EVAL_NEWCOMERS)

    def newcomer_queries(n: int) -> np.ndarray:
        users = len(newcomers.user_ids)
        given = np.array([state.movie_ids[m[:n]] for m in newcomers.movies], object).reshape(users, n)
        ratings = np.array([r[:n] for r in newcomers.ratings], np.float32).reshape(users, n)
        inputs = user_query_inputs(train_recommender, tft_layer, newcomers.user_ids, given, ratings)
        return model.query_tower(inputs).numpy()

    train_counts = np.bincount(split_indices(state, train_rows)[1], minlength=movies)
    prior = cold_start.choose_popularity_weights(
        newcomers, newcomer_queries, movie_vectors, fitted, np.log1p(train_counts), choice["share"]
    )
    recommender.new_user_popularity.assign(prior["new_user_popularity"])
    seconds["new_users"] = time.monotonic() - started - sum(seconds.values())

    def eval_ratings(users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        ids = state.user_ids[users]
        return predicted_ratings(train_recommender, tft_layer, ranker, ids,
                                 state.movie_ids[candidates])  # fmt: skip

    weighting = choose_rating_weight(judged, judged_scores, eval_ratings, config)
    recommender.rating_weight.assign(weighting["rating_weight"])
    record["seconds"] = {**seconds, "rating_weight": time.monotonic() - started - sum(seconds.values())}
    return recommender, record, {**choice, "bytes": neighbours.nbytes(), **prior, **weighting}


def steps_per_epoch(rows: int, batch: int) -> int:
    """The retrieval model's steps in one epoch over `rows` training ratings: a batch stream of point-in-time
    examples and one of profile examples, each of every rating."""
    return 2 * math.ceil(rows / batch)


def retrieval_epochs(rows: int, batch: int, config: TrainerConfig) -> int:
    """The retrieval model's epochs: config.retrieval_steps' worth, at least 1, at most config.retrieval_epochs."""
    return max(1, min(config.retrieval_epochs, math.ceil(config.retrieval_steps / steps_per_epoch(rows, batch))))


def split_indices(state: snapshot.Snapshot, split_rows: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each row's user and movie index in `state` (which holds them all)."""
    users = np.searchsorted(state.user_ids, snapshot.text(split_rows[f.USER_ID]))
    return users, np.searchsorted(state.movie_ids, snapshot.text(split_rows[f.MOVIE_ID]))


@dataclasses.dataclass(frozen=True)
class EvalUsers:
    """The eval users the Trainer's choices are scored on: `users` (snapshot indices, a seeded sample of at most
    EVAL_USERS who rated in train), `held_out` (each one's eval movies not rated in train, snapshot movie
    indices), `rated` (the train split's users × movies matrix: their profiles, excluded from their lists)."""

    rated: sparse.csr_matrix
    users: np.ndarray
    held_out: list[set[int]]

    @property
    def excluded(self) -> np.ndarray:
        return self.rated[self.users].toarray() > 0


def eval_users(state: snapshot.Snapshot, train_rows: dict, eval_rows: dict, seed: int) -> EvalUsers:
    """The EvalUsers of the train and eval rows (nothing else is read), sampled with `seed`."""
    shape = (len(state.user_ids), len(state.movie_ids))
    rated = item_item.rated_matrix(*split_indices(state, train_rows), shape)
    users, movies = split_indices(state, eval_rows)
    fresh = np.asarray(rated[users, movies]).reshape(-1) == 0
    relevant: dict[int, set[int]] = {}
    for user, movie in zip(users[fresh], movies[fresh], strict=True):
        relevant.setdefault(int(user), set()).add(int(movie))
    known = np.asarray(rated.sum(axis=1)).reshape(-1) > 0
    candidates = np.array(sorted(u for u in relevant if known[u]), np.int64)
    sample = np.random.default_rng(seed).choice(candidates, size=min(EVAL_USERS, len(candidates)), replace=False)
    sample = np.sort(sample)
    return EvalUsers(rated, sample, [relevant[int(u)] for u in sample])


class EvalNdcg(tf.keras.callbacks.Callback):
    """After every epoch, the towers' NDCG@10 on the eval users (logs[EVAL_NDCG], for EarlyStopping): their
    query vectors from `queries` (their train profiles, transformed) against every movie of `catalogue`."""

    def __init__(self, judged: EvalUsers, queries: dict[str, np.ndarray], catalogue: dict[str, np.ndarray]):
        super().__init__()
        self._judged, self._queries, self._catalogue = judged, queries, catalogue
        self._excluded = judged.excluded

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        queries = self.model.query_tower(self._queries).numpy()
        scores = queries @ self.model.candidate_tower(self._catalogue).numpy().T
        logs[EVAL_NDCG] = item_item.ndcg(scores, self._excluded, self._judged.held_out)


def choose_item_item(
    judged: EvalUsers, query_vectors: np.ndarray, movie_vectors: np.ndarray, config: TrainerConfig
) -> tuple[dict, np.ndarray, item_item.Neighbours]:
    """The item-item scorer's λ and share of the candidate score with the best NDCG@10 on the eval users: the
    item-item scorer fitted on train alone; the retrieval scores their `query_vectors` × `movie_vectors` (the
    snapshot's order). Also each eval user's candidate score of every movie with those choices (as `recommend`
    computes it; -inf for the movies they rated in train), and the train-only item-item fit with the chosen λ.
    Reads the train and eval rows only (via `judged`)."""
    if not len(judged.users):
        regularization = item_item.REGULARIZATIONS[0]
        fitted = item_item.fit(judged.rated, regularization, config.item_item_neighbours, config.item_item_movies)
        return {"regularization": regularization, "share": 0.0, "eval_users": 0}, np.zeros((0, 0)), fitted
    regularization, by_regularization, fitted = item_item.choose_regularization(
        judged.rated, judged.users, judged.held_out, config.item_item_neighbours, config.item_item_movies
    )
    item_scores = item_item.scores(judged.rated[judged.users], fitted)
    retrieval_scores = query_vectors @ movie_vectors.T
    share, by_share = item_item.choose_blend(item_scores, retrieval_scores, judged.excluded, judged.held_out)
    choice = {
        "regularization": regularization,
        "share": share,
        "eval_users": len(judged.users),
        "eval_ndcg_by_regularization": {str(k): v for k, v in by_regularization.items()},
        "eval_ndcg_by_share": {str(k): v for k, v in by_share.items()},
    }
    return choice, item_item.candidate_scores(item_scores, retrieval_scores, judged.excluded, share), fitted


def choose_rating_weight(
    judged: EvalUsers,
    scores: np.ndarray,
    ratings: Callable[[np.ndarray, np.ndarray], np.ndarray],
    config: TrainerConfig,
) -> dict:
    """The weight of the predicted rating in `recommend`'s ordering score with the best NDCG@10 on the eval
    users, over each one's top `config.candidates` movies by candidate score (`scores`, from choose_item_item).
    `ratings(users, candidates)` predicts the users' (snapshot indices) ratings of the candidates (snapshot
    movie indices, [users, n]) from train alone; at most RATING_WEIGHT_USERS of the eval users are scored.
    config.rating_weight, when set, is kept (nothing is scored); with fewer than config.rating_weight_min_users
    eval users, DEFAULT_RATING_WEIGHT."""
    if config.rating_weight is not None or len(judged.users) < max(config.rating_weight_min_users, 1):
        fixed = DEFAULT_RATING_WEIGHT if config.rating_weight is None else config.rating_weight
        return {"rating_weight": float(fixed), "rating_weight_chosen_on_eval": False}
    rows = np.sort(np.random.default_rng(config.seed).permutation(len(judged.users))[:RATING_WEIGHT_USERS])
    sampled = scores[rows]
    candidates = np.argsort(-sampled, axis=1, kind="stable")[:, : min(config.candidates, scores.shape[1])]
    predicted = ratings(judged.users[rows], candidates)
    weight, by_weight = item_item.choose_rating_weight(
        candidates, np.take_along_axis(sampled, candidates, axis=1), predicted, [judged.held_out[i] for i in rows]
    )
    return {
        "rating_weight": weight,
        "rating_weight_chosen_on_eval": True,
        "rating_weight_eval_users": len(rows),
        "eval_ndcg_by_rating_weight": {str(k): v for k, v in by_weight.items()},
    }


def predicted_ratings(
    recommender: recommend.Recommender, tft_layer, ranker: tf.keras.Model, user_ids: np.ndarray, movie_ids: np.ndarray
) -> np.ndarray:
    """`ranker`'s predicted rating of each user's movies ([users, n] ids), computed as `recommend` does from
    `recommender`'s snapshot (a movie it does not hold is an unknown movie), clipped to its rating range."""
    low, high = recommender.rating_range
    # Eagerly: as one tf.function its trace alone took 24 s; eagerly 943 users took 21 s (2.4-2.9 s a batch of
    # 128), 238 users 3 s (ML-100k beside two other runs; 1M).
    parts = []
    for start in range(0, len(user_ids), RATING_USERS_PER_BATCH):
        ids = tf.constant([str(u).encode() for u in user_ids[start : start + RATING_USERS_PER_BATCH]])
        movies = tf.constant([[str(m).encode() for m in row] for row in movie_ids[start : start + len(ids)]])
        empty = tf.zeros([len(ids), 0], tf.string)
        state = recommender.user_state(ids, empty, tf.zeros([len(ids), 0], tf.float32))
        pairs = recommender.pair_features(state, recommender.movie_table.lookup(movies))
        predicted = tf.reshape(ranker(tft_layer(pairs)), tf.shape(movies))
        parts.append(tf.clip_by_value(predicted, low, high).numpy())
    return np.concatenate(parts) if parts else np.zeros(movie_ids.shape, np.float32)
