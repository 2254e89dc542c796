"""The `recommend` signature: user id (+ recent ratings) → top-K movies, from one SavedModel.

    user_id ─► snapshot row (snapshot.py) ─┐ + the request's recent (movie, rating) pairs
                                           ▼
    raw user features ─► Transform ─► query tower ─► exact scores over every movie vector (computed at
    export) ─┐
    rated movies ─► item-item scores (item_item.py: EASE neighbours) ─┴► blend of the two, each standardized
    per user (+ popularity for a user the snapshot does not know: cold_start.py) ─► mask movies the user
    rated ─► top N ─► raw (user, candidate) features ─► Transform ─► ranker ─► score = blend + rating_weight
    × predicted rating ─► MMR (diversity) ─► top K (the scores' arithmetic: scoring.py)

Only stock TensorFlow ops, so stock TF Serving loads it. The exact index is a matrix product with every
movie vector (what tfrs BruteForce does) because rated movies must be masked before the top-N cut.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from components.trainer.cold_start import GIVEN
from components.trainer.item_item import Neighbours
from components.trainer.scoring import NEG_INF, candidate_scores, mmr_order, step_index
from components.trainer.snapshot import Snapshot
from transform import features as f


def _padded(values: np.ndarray, fill) -> np.ndarray:
    """`values` with one more row (the unknown user / movie) of `fill`."""
    pad = np.full((1, *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, pad])


def _strings(values) -> np.ndarray:
    return np.array([str(v).encode("utf-8") for v in values], dtype=object)


def _variable(values: np.ndarray, dtype, name: str) -> tf.Variable:
    return tf.Variable(tf.constant(values, dtype), trainable=False, name=name)


class Recommender(tf.Module):
    """The snapshot, movie table and movie vectors as untrainable variables and lookup tables.

    Row `users` / `movies` of each array is the unknown user / movie (all zero, empty strings).
    """

    def __init__(self, snapshot: Snapshot, movie_vectors: np.ndarray, vocab_index: np.ndarray,
                 query_tower: tf.keras.Model, candidates: int, rating_weight: float,
                 rating_range: tuple[float, float] = (f.RATING_MIN, f.RATING_MAX)):  # fmt: skip
        """`vocab_index`: each snapshot movie's index in Transform's movie vocabulary (its MOVIE_ID_XF);
        `rating_range`: the release's (predictions are clipped to it, request ratings must lie in it).
        No movie has item-item neighbours until `set_item_item`."""
        super().__init__(name="recommender")
        s = snapshot
        self.users, self.movies = len(s.user_ids), len(s.movie_ids)
        self.candidates = candidates
        self.rating_range = tuple(float(x) for x in rating_range)
        # A variable, so an experiment can move it on a loaded model (benchmarks/rating_weight_sweep.py).
        self.rating_weight = tf.Variable(float(rating_weight), trainable=False, name="rating_weight")
        self.item_share = tf.Variable(0.0, trainable=False, name="item_share")
        # The weight of popularity in the candidate score of a user the snapshot does not know, by how many ratings
        # the request gives: weight i for cold_start.GIVEN[i] up to the next (cold_start.py).
        self.new_user_popularity = tf.Variable(tf.zeros([len(GIVEN)]), trainable=False, name="new_user_popularity")
        self.request_time = s.request_time
        self.query_tower = query_tower
        self.user_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(_strings(s.user_ids)), tf.range(self.users, dtype=tf.int64)
            ),
            default_value=self.users,
        )
        self.movie_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(_strings(s.movie_ids)), tf.range(self.movies, dtype=tf.int64)
            ),
            default_value=self.movies,
        )
        genre_names = np.array(s.genres, dtype=object)
        genre_lists = [_strings(genre_names[row > 0]) for row in s.movie_genres]
        v = _variable
        self.movie_ids = v(_strings([*s.movie_ids, ""]), tf.string, "movie_ids")
        self.user_ids = v(_strings(s.user_ids), tf.string, "user_ids")
        self.titles = v(_strings([*s.titles, ""]), tf.string, "titles")
        self.genre_text = v(
            _strings([*("|".join(g.decode() for g in gs) for gs in genre_lists), ""]), tf.string, "genres"
        )
        self.genre_values = v(np.concatenate([*genre_lists, np.array([], object)]), tf.string, "genre_values")
        self.genre_splits = v(np.cumsum([0, *(len(gs) for gs in genre_lists), 0]), tf.int64, "genre_splits")
        self.release_years = v(_padded(s.release_years, f.RELEASE_YEAR_UNKNOWN), tf.int64, "release_years")
        self.movie_genres = v(_padded(s.movie_genres, 0.0), tf.float32, "movie_genres")
        self.movie_counts = v(_padded(s.movie_counts, 0), tf.int64, "movie_counts")
        self.movie_sums = v(_padded(s.movie_sums, 0.0), tf.float32, "movie_sums")
        self.recent_raters = v(_padded(s.recent_raters, -1), tf.int64, "recent_raters")
        self.recent_rater_ratings = v(_padded(s.recent_rater_ratings, 0.0), tf.float32, "recent_rater_ratings")
        self.movie_vectors = v(movie_vectors.astype(np.float32), tf.float32, "movie_vectors")
        self.user_attributes = s.ages is not None  # releases without a users file have none
        if self.user_attributes:
            mean_age = int(round(float(np.mean(s.ages)))) if len(s.ages) else 30
            self.ages = v(_padded(s.ages, mean_age), tf.int64, "ages")
            for name in ("genders", "occupations", "zips"):
                setattr(self, name, v(_strings([*getattr(s, name), ""]), tf.string, name))
        for name in ("counts", "sums", "squares", "offset_counts", "offset_sums"):
            setattr(self, name, v(_padded(getattr(s, name), 0.0), tf.float32, name))
        self.genre_counts = v(_padded(s.genre_counts, 0.0), tf.float32, "genre_counts")
        self.genre_sums = v(_padded(s.genre_sums, 0.0), tf.float32, "genre_sums")
        self.last_timestamps = v(_padded(s.last_timestamps, -1), tf.int64, "last_timestamps")
        self.recent_movies = v(_padded(s.recent_movies, -1), tf.int64, "recent_movies")
        self.recent_ratings = v(_padded(s.recent_ratings, 0.0), tf.float32, "recent_ratings")
        self.rated_values = v(s.rated_values, tf.int64, "rated_values")
        self.rated_ratings = v(s.rated_ratings, tf.float32, "rated_ratings")
        self.vocab_index = v(_padded(np.asarray(vocab_index, np.int64).reshape(-1), -1), tf.int64, "vocab_index")
        self.rated_splits = v(np.concatenate([s.rated_splits, s.rated_splits[-1:]]), tf.int64, "rated_splits")
        self.set_item_item(None, 0.0)

    def set_item_item(self, neighbours: Neighbours | None, item_share: float) -> None:
        """Attaches the item-item scorer (before export): its neighbours, in the snapshot's movie order, and
        its share of the candidate score (the rest is the retrieval model's). None: no movie has neighbours."""
        if neighbours is None:
            neighbours = Neighbours(
                np.zeros(self.movies, np.int64), np.full((0, 1), self.movies, np.int32), np.zeros((0, 1), np.float32)
            )
        if neighbours.movies != self.movies:
            raise ValueError(f"item-item neighbours for {neighbours.movies} movies, the snapshot has {self.movies}")
        self.item_share.assign(float(item_share))
        # A last row of padding (column `movies`, weight 0) for the movies without neighbours and the unknown movie.
        padding = len(neighbours.indices)
        self.neighbour_rows = _variable(_padded(neighbours.rows, padding), tf.int64, "neighbour_rows")
        self.neighbour_indices = _variable(_padded(neighbours.indices, self.movies), tf.int32, "neighbour_indices")
        self.neighbour_weights = _variable(_padded(neighbours.weights, 0.0), tf.float32, "neighbour_weights")

    def item_item_scores(self, rated: tf.RaggedTensor) -> tf.Tensor:
        """[batch, movies]: Σ over each row's rated movie indices i of their neighbours' weights B[i, j]."""
        sources = tf.gather(self.neighbour_rows, rated.flat_values)
        targets = tf.cast(tf.gather(self.neighbour_indices, sources), tf.int64)  # [ratings, n]
        weights = tf.gather(self.neighbour_weights, sources)
        rows = tf.broadcast_to(tf.cast(rated.value_rowids(), tf.int64)[:, None], tf.shape(targets, out_type=tf.int64))
        positions = tf.stack([tf.reshape(rows, [-1]), tf.reshape(targets, [-1])], axis=1)
        batch = tf.cast(rated.nrows(), tf.int64)
        summed = tf.scatter_nd(positions, tf.reshape(weights, [-1]), tf.stack([batch, self.movies + 1]))
        return summed[:, : self.movies]

    def user_state(self, user_id: tf.Tensor, movies: tf.Tensor, ratings: tf.Tensor) -> dict:
        """Each user's raw features (as in a request for a rating now), their rated movie indices and whether
        the snapshot knows them: the snapshot's state plus the request's (movie, rating) pairs."""
        row = self.user_table.lookup(user_id)
        given = tf.not_equal(movies, "")
        ratings = tf.where(given, ratings, 0.0)
        index = tf.where(given, self.movie_table.lookup(movies), self.movies)  # unknown movies → empty row
        genres = tf.gather(self.movie_genres, index)  # [b, n, g]
        movie_count = tf.cast(tf.gather(self.movie_counts, index), tf.float32)
        has_mean = given & (movie_count > 0)
        offsets = tf.where(has_mean, ratings - tf.gather(self.movie_sums, index) / tf.maximum(movie_count, 1.0), 0.0)
        count = tf.gather(self.counts, row) + tf.reduce_sum(tf.cast(given, tf.float32), 1)
        fresh = tf.reduce_any(given, 1)
        last = tf.where(fresh, tf.constant(self.request_time, tf.int64), tf.gather(self.last_timestamps, row))
        known_recent = tf.gather(self.recent_movies, row)
        snapshot_movies = tf.ragged.boolean_mask(
            tf.gather(self.movie_ids, tf.where(known_recent >= 0, known_recent, self.movies)), known_recent >= 0
        )
        snapshot_ratings = tf.ragged.boolean_mask(tf.gather(self.recent_ratings, row), known_recent >= 0)
        listed = tf.concat([snapshot_movies, tf.ragged.boolean_mask(movies, given)], axis=1)[:, -f.MAX_PRIOR_MOVIES :]
        listed_ratings = tf.concat([snapshot_ratings, tf.ragged.boolean_mask(ratings, given)], axis=1)
        listed_ratings = listed_ratings[:, -f.MAX_PRIOR_MOVIES :]
        recent = listed_ratings[:, -f.RECENT_RATINGS :]
        rated = tf.gather(tf.RaggedTensor.from_row_splits(self.rated_values, self.rated_splits), row)
        rated_ratings = tf.gather(tf.RaggedTensor.from_row_splits(self.rated_ratings, self.rated_splits), row)
        in_catalogue = given & (index < self.movies)
        rated = tf.concat([rated, tf.ragged.boolean_mask(index, in_catalogue)], axis=1)
        rated_ratings = tf.concat([rated_ratings, tf.ragged.boolean_mask(ratings, in_catalogue)], axis=1)
        total = tf.gather(self.sums, row) + tf.reduce_sum(ratings, 1)
        return {
            "row": row,
            "known": row < self.users,
            "rated": rated,
            "profile": {
                f.PROFILE_MOVIES: tf.gather(self.vocab_index, rated[:, -f.MAX_PROFILE_MOVIES :]).to_tensor(
                    default_value=-1, shape=[None, f.MAX_PROFILE_MOVIES]
                ),
                f.PROFILE_DEVIATIONS: (
                    rated_ratings[:, -f.MAX_PROFILE_MOVIES :] - tf.expand_dims(total / tf.maximum(count, 1.0), 1)
                ).to_tensor(default_value=0.0, shape=[None, f.MAX_PROFILE_MOVIES]),
            },
            "genre_counts": tf.gather(self.genre_counts, row) + tf.reduce_sum(genres, 1),
            "genre_sums": tf.gather(self.genre_sums, row) + tf.reduce_sum(genres * ratings[..., None], 1),
            "raw": {
                f.USER_ID: user_id,
                f.TIMESTAMP: tf.fill(tf.shape(user_id), tf.constant(self.request_time, tf.int64)),
                f.USER_PRIOR_COUNT: tf.cast(count, tf.int64),
                f.USER_PRIOR_RATING_SUM: total,
                f.USER_PRIOR_RATING_SQ_SUM: tf.gather(self.squares, row) + tf.reduce_sum(ratings * ratings, 1),
                f.USER_RECENT_COUNT: tf.cast(recent.row_lengths(), tf.int64),
                f.USER_RECENT_RATING_SUM: tf.reduce_sum(recent, 1),
                f.USER_SECONDS_SINCE_LAST: tf.where(count > 0, self.request_time - last, tf.constant(-1, tf.int64)),
                f.USER_PRIOR_OFFSET_COUNT: tf.cast(
                    tf.gather(self.offset_counts, row) + tf.reduce_sum(tf.cast(has_mean, tf.float32), 1), tf.int64
                ),
                f.USER_PRIOR_OFFSET_SUM: tf.gather(self.offset_sums, row) + tf.reduce_sum(offsets, 1),
                f.USER_PRIOR_MOVIES: listed,
                f.USER_PRIOR_MOVIE_RATINGS: listed_ratings,
                **self._attributes(row),
            },
        }

    def _attributes(self, row: tf.Tensor) -> dict:
        """The users' attributes (none in releases without a users file)."""
        if not self.user_attributes:
            return {}
        return {
            f.USER_AGE: tf.gather(self.ages, row),
            f.USER_GENDER: tf.gather(self.genders, row),
            f.USER_OCCUPATION: tf.gather(self.occupations, row),
            f.USER_ZIP: tf.gather(self.zips, row),
        }

    def pair_features(self, state: dict, movie: tf.Tensor) -> dict:
        """Raw features of each (user, movie) pair for the Transform layer: `movie` is [b, n] movie indices;
        the result has b × n rows, user-major."""
        n = tf.shape(movie)[1]
        rows = tf.repeat(tf.range(tf.shape(movie)[0]), n)
        flat = tf.reshape(movie, [-1])
        raw = {name: tf.gather(value, rows) for name, value in state["raw"].items()}
        movie_genres = tf.gather(self.movie_genres, flat)
        raters = tf.gather(self.recent_raters, flat)
        listed = raters >= 0
        raw.update({
            f.MOVIE_PRIOR_RATERS: tf.ragged.boolean_mask(tf.gather(self.user_ids, tf.maximum(raters, 0)), listed),
            f.MOVIE_PRIOR_RATER_RATINGS: tf.ragged.boolean_mask(tf.gather(self.recent_rater_ratings, flat), listed),
            f.MOVIE_ID: tf.gather(self.movie_ids, flat),
            f.MOVIE_TITLE: tf.gather(self.titles, flat),
            f.MOVIE_RELEASE_YEAR: tf.gather(self.release_years, flat),
            f.MOVIE_GENRES: tf.gather(tf.RaggedTensor.from_row_splits(self.genre_values, self.genre_splits), flat),
            f.MOVIE_PRIOR_COUNT: tf.gather(self.movie_counts, flat),
            f.MOVIE_PRIOR_RATING_SUM: tf.gather(self.movie_sums, flat),
            f.USER_PRIOR_GENRE_COUNT: tf.cast(
                tf.round(tf.reduce_sum(movie_genres * tf.gather(state["genre_counts"], rows), 1)), tf.int64
            ),
            f.USER_PRIOR_GENRE_RATING_SUM: tf.reduce_sum(movie_genres * tf.gather(state["genre_sums"], rows), 1),
        })  # fmt: skip
        return {
            name: value.to_sparse() if isinstance(value, tf.RaggedTensor) else tf.reshape(value, [-1, 1])
            for name, value in raw.items()
        }


def make_signatures(model: tf.keras.Model, recommender: Recommender) -> dict:
    """`recommend` and `catalogue` concrete functions. `model` has its Transform layer attached (tft_layer)."""
    r = recommender
    low, high = r.rating_range

    def rank(transformed: dict) -> tf.Tensor:
        return tf.clip_by_value(tf.reshape(model(transformed), [-1]), low, high)

    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string, name=f.REQUEST_USER_ID),
            tf.TensorSpec([None, None], tf.string, name=f.REQUEST_MOVIES),
            tf.TensorSpec([None, None], tf.float32, name=f.REQUEST_RATINGS),
            tf.TensorSpec([], tf.int32, name=f.REQUEST_K),
            tf.TensorSpec([], tf.float32, name=f.REQUEST_DIVERSITY),
        ],
    )
    def recommend(user_id, recent_movies, recent_ratings, k, diversity):
        given = tf.not_equal(recent_movies, "")
        checks = [
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(tf.shape(recent_movies), tf.shape(recent_ratings))),
                [f"{f.RECOMMEND_SIGNATURE}: {f.REQUEST_RATINGS} must have the shape of {f.REQUEST_MOVIES}"],
            ),
            tf.debugging.Assert(
                tf.equal(tf.shape(recent_movies)[0], tf.shape(user_id)[0]),
                [f"{f.RECOMMEND_SIGNATURE}: {f.REQUEST_MOVIES} has another batch size than {f.REQUEST_USER_ID}"],
            ),
            tf.debugging.Assert(
                tf.reduce_all(~given | ((recent_ratings >= low) & (recent_ratings <= high))),
                [f"{f.RECOMMEND_SIGNATURE}: {f.REQUEST_RATINGS} must lie within {low:g}..{high:g}"],
            ),
            tf.debugging.Assert(
                tf.reduce_all(~given | tf.not_equal(r.movie_table.lookup(recent_movies), r.movies)),
                [f"{f.RECOMMEND_SIGNATURE}: a movie of {f.REQUEST_MOVIES} is not in the catalogue"],
            ),
            tf.debugging.Assert(
                (diversity >= 0.0) & (diversity <= 1.0),
                [f"{f.RECOMMEND_SIGNATURE}: {f.REQUEST_DIVERSITY} must lie within 0..1"],
            ),
        ]
        with tf.control_dependencies(checks):
            user_id = tf.identity(user_id)
        batch = tf.shape(user_id)[0]
        state = r.user_state(user_id, recent_movies, recent_ratings)
        # Query: the user's transformed features (any movie fills the movie side; the tower ignores it).
        user_rows = r.pair_features(state, tf.zeros([batch, 1], tf.int64))
        query = r.query_tower({**model.tft_layer(user_rows), **state["profile"]})
        rated = state["rated"]
        positions = tf.stack([tf.cast(rated.value_rowids(), tf.int64), rated.flat_values], axis=1)
        mask = tf.scatter_nd(
            positions, tf.ones_like(rated.flat_values, tf.float32), tf.cast([batch, r.movies], tf.int64)
        )
        excluded = mask > 0
        retrieved = tf.matmul(query, r.movie_vectors, transpose_b=True)  # [b, movies]
        popularity = tf.math.log1p(tf.cast(r.movie_counts[: r.movies], tf.float32))
        given_count = tf.reduce_sum(tf.cast(given, tf.int64), axis=1)
        prior = tf.where(state["known"], 0.0, tf.gather(r.new_user_popularity, step_index(given_count, GIVEN)))
        scores = candidate_scores(retrieved, r.item_item_scores(rated), excluded, r.item_share, popularity, prior)
        n = tf.minimum(r.candidates, r.movies)
        retrieval, candidates = tf.math.top_k(scores, k=n)
        candidates = tf.cast(candidates, tf.int64)
        ratings = tf.reshape(rank(model.tft_layer(r.pair_features(state, candidates))), [batch, n])
        relevance = tf.where(tf.math.is_finite(retrieval), retrieval + r.rating_weight * ratings, NEG_INF)
        genres = tf.math.l2_normalize(tf.gather(r.movie_genres, candidates), axis=-1)
        similarity = tf.matmul(genres, genres, transpose_b=True)
        k = tf.clip_by_value(k, 0, n)
        order = mmr_order(relevance, similarity, diversity, k)
        picked = tf.gather(candidates, order, batch_dims=1)
        score = tf.gather(relevance, order, batch_dims=1)
        valid = tf.math.is_finite(score)
        picked = tf.where(valid, picked, r.movies)  # the empty movie row
        return {
            f.OUT_MOVIE_IDS: tf.gather(r.movie_ids, picked),
            f.OUT_TITLES: tf.gather(r.titles, picked),
            f.OUT_GENRES: tf.gather(r.genre_text, picked),
            f.OUT_SCORES: score,
            f.OUT_RATINGS: tf.where(valid, tf.gather(ratings, order, batch_dims=1), np.nan),
            f.OUT_KNOWN_USER: state["known"],
            f.OUT_QUERY_VECTORS: query,
        }

    @tf.function(autograph=False, input_signature=[])
    def catalogue():
        return {
            f.OUT_MOVIE_IDS: r.movie_ids[: r.movies],
            f.OUT_TITLES: r.titles[: r.movies],
            f.OUT_GENRES: r.genre_text[: r.movies],
            f.OUT_RATING_COUNTS: r.movie_counts[: r.movies],
            f.OUT_USER_COUNT: tf.constant(r.users, tf.int64),
            f.OUT_USER_IDS: tf.identity(r.user_ids),
            f.OUT_RATING_RANGE: tf.constant(r.rating_range, tf.float32),
            f.OUT_MOVIE_VECTORS: tf.identity(r.movie_vectors),
        }

    return {
        f.RECOMMEND_SIGNATURE: recommend.get_concrete_function(),
        f.CATALOGUE_SIGNATURE: catalogue.get_concrete_function(),
    }
