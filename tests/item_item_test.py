"""The item-item scorer (components/trainer/item_item.py), its TensorFlow twin in `recommend`, and the eval
choices of its λ and share (retrieval_training.choose_item_item) and of the predicted rating's weight
(retrieval_training.choose_rating_weight)."""

import types

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import item_item, recommend, retrieval_training, scoring
from pipeline.config import TrainerConfig
from transform import features as f


def planted(users: int = 80, seed: int = 0, movies: int = 12) -> list[set[int]]:
    """Each user's movies: 3 of movies 2..`movies`-1 at random (with 12, each more popular than the pair); a
    quarter of the users also rate movies 0 and 1, which are rated together and never alone."""
    rng = np.random.default_rng(seed)
    profiles = []
    for user in range(users):
        drawn = set(rng.choice(np.arange(2, movies), 3, replace=False).tolist())
        profiles.append(drawn | ({0, 1} if user < users // 4 else set()))
    return profiles


def matrix(profiles: list[set[int]], movies: int = 12):
    users = np.concatenate([[u] * len(p) for u, p in enumerate(profiles)]).astype(np.int64)
    items = np.concatenate([sorted(p) for p in profiles]).astype(np.int64)
    return item_item.rated_matrix(users, items, (len(profiles), movies))


def test_a_user_holding_one_movie_of_a_planted_pair_gets_the_other_in_the_top_3():
    profiles = planted()
    profiles[0] = profiles[0] - {1}  # holds movie 0 of the pair, not movie 1
    rated = matrix(profiles)
    scores = item_item.scores(rated[:1], item_item.fit(rated, 10.0, neighbours=5, max_movies=100))[0]
    excluded = rated[:1].toarray()[0] > 0
    top = [int(m) for m in np.argsort(-np.where(excluded, -np.inf, scores), kind="stable")[:3]]
    assert 1 in top
    assert not set(top) & profiles[0]  # movies already rated never appear
    counts = np.asarray(rated.sum(axis=0)).reshape(-1)
    assert counts[1] < np.sort(counts)[-3]  # not there by popularity


def test_only_the_most_rated_movies_get_neighbours_and_each_keeps_at_most_n():
    rated = matrix(planted())
    fitted = item_item.fit(rated, 10.0, neighbours=4, max_movies=6)
    counts = np.asarray(rated.sum(axis=0)).reshape(-1)
    with_neighbours = np.flatnonzero(fitted.rows < len(fitted.indices))
    assert len(with_neighbours) == 6 and set(with_neighbours) == set(np.argsort(-counts, kind="stable")[:6])
    assert fitted.indices.shape == (6, 4)  # rows for the kept movies only: the size does not grow with the catalogue
    assert fitted.nbytes() == 12 * 8 + 6 * 4 * (4 + 4)
    assert set(fitted.indices.ravel().tolist()) <= set(with_neighbours.tolist())  # neighbours are kept movies too
    assert not (fitted.indices == with_neighbours[:, None]).any()  # no movie is its own neighbour


def test_the_neighbours_are_the_largest_weights_of_the_dense_solution():
    rated = matrix(planted())
    dense_fit = item_item.fit(rated, 50.0, neighbours=11, max_movies=100)  # every other movie kept: exact
    sparse_fit = item_item.fit(rated, 50.0, neighbours=3, max_movies=100)
    dense = item_item.scores(rated, dense_fit)
    gram = (rated.T @ rated).toarray() + 50.0 * np.eye(12)
    inverse = np.linalg.inv(gram)
    exact = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(exact, 0.0)
    np.testing.assert_allclose(dense, rated.toarray() @ exact, atol=1e-5)
    for movie in range(12):
        largest = np.sort(np.abs(exact[movie]))[-3:]
        row = sparse_fit.rows[movie]
        np.testing.assert_allclose(np.sort(np.abs(sparse_fit.weights[row])), largest, rtol=1e-5)


def test_recommend_sums_the_same_neighbour_weights_as_numpy():
    rated = matrix(planted())
    fitted = item_item.fit(rated, 10.0, neighbours=4, max_movies=8)
    pad = lambda values, fill: np.concatenate([values, np.full((1, values.shape[1]), fill, values.dtype)])  # noqa: E731
    module = types.SimpleNamespace(
        movies=12,
        neighbour_rows=tf.constant(np.append(fitted.rows, len(fitted.indices))),
        neighbour_indices=tf.constant(pad(fitted.indices, 12)),
        neighbour_weights=tf.constant(pad(fitted.weights, 0.0)),
    )
    rows = rated[:5].tolil().rows
    ragged = tf.ragged.constant([list(r) for r in rows], dtype=tf.int64)
    in_tf = recommend.Recommender.item_item_scores(module, ragged).numpy()
    np.testing.assert_allclose(in_tf, item_item.scores(rated[:5], fitted), atol=1e-5)


def test_standardized_is_the_same_in_numpy_and_tensorflow_and_ignores_excluded_entries():
    values = np.array([[1.0, 2.0, 3.0, 100.0], [5.0, 5.0, 5.0, 5.0]], np.float32)
    excluded = np.array([[False, False, False, True], [False, True, False, False]])
    numpy_result = item_item.standardized(values, excluded)
    np.testing.assert_allclose(
        scoring.standardized(tf.constant(values), tf.constant(excluded)), numpy_result, atol=1e-6
    )
    np.testing.assert_allclose(numpy_result[0, :3], [-1.2247449, 0.0, 1.2247449], atol=1e-6)
    assert (numpy_result[1] == 0).all()  # a flat row: no preference, not NaN


@pytest.mark.parametrize("oracle", [False, True])
def test_the_blend_is_chosen_by_what_eval_rewards(oracle):
    """The eval users hold the planted pair's other movie: the item-item scorer finds it. A retrieval score that
    already ranks it first (an oracle) needs no item-item share; a random one gets the largest share."""
    profiles = planted(movies=40)
    rows = np.arange(10)  # ten of the twenty users given the pair: eval holds their movie 1 back
    rated = matrix([p - {1} if u in rows else p for u, p in enumerate(profiles)], movies=40)
    relevant = [{1} for _ in rows]
    excluded = rated[rows].toarray() > 0
    item = item_item.scores(rated[rows], item_item.fit(rated, 10.0, 5, 100))
    rng = np.random.default_rng(1)
    retrieval = rng.normal(size=item.shape)
    if oracle:
        retrieval[:, 1] = 100.0
    share, figures = item_item.choose_blend(item, retrieval, excluded, relevant)
    assert set(figures) == set(item_item.BLENDS) and figures[share] == max(figures.values())
    assert (share == 0.0) if oracle else (share > 0.0 and figures[share] > figures[0.0] + 0.3)


def test_the_candidate_score_is_the_same_in_numpy_and_in_recommend():
    rng = np.random.default_rng(3)
    retrieved, item = rng.normal(2.0, 3.0, size=(4, 9)), rng.exponential(size=(4, 9))
    excluded = rng.random((4, 9)) < 0.3
    popularity = np.log1p(rng.permutation(9) * 50.0).astype(np.float32)  # distinct counts
    for share, prior in ((0.0, 0.0), (0.4, 0.0), (1.0, 0.0), (0.4, 2.0)):
        numpy_result = item_item.candidate_scores(item, retrieved, excluded, share, popularity, prior)
        in_tf = scoring.candidate_scores(
            tf.constant(retrieved, tf.float32), tf.constant(item, tf.float32), tf.constant(excluded), share,
            tf.constant(popularity), tf.fill([4], prior),
        )  # fmt: skip
        np.testing.assert_allclose(in_tf, numpy_result, rtol=1e-5, atol=1e-5)
        assert np.isneginf(numpy_result[excluded]).all() and np.isfinite(numpy_result[~excluded]).all()
    np.testing.assert_allclose(item_item.candidate_scores(item, retrieved, excluded, 0.0)[~excluded],
                               retrieved[~excluded])  # fmt: skip
    # The prior moves each user's order toward popularity; per user (a known user's weight is 0).
    users = tf.constant([0.0, 1000.0])
    mixed = scoring.candidate_scores(
        tf.constant(retrieved[:2], tf.float32), tf.constant(item[:2], tf.float32), tf.constant(excluded[:2]), 0.4,
        tf.constant(popularity), users,
    ).numpy()  # fmt: skip
    np.testing.assert_allclose(mixed[0], item_item.candidate_scores(item, retrieved, excluded, 0.4)[0], rtol=1e-5)
    valid = ~excluded[1]
    assert (np.argsort(-mixed[1][valid], kind="stable") == np.argsort(-popularity[valid], kind="stable")).all()


@pytest.mark.parametrize("helpful", [False, True])
def test_the_rating_weight_is_chosen_by_what_eval_rewards(helpful):
    """Ten eval users, twenty candidates each in candidate-score order; each holds one movie back. A ranker that
    rates it 5 and the rest 1 lifts it from 13th into the top 10 with a large enough weight; one that rates it
    lowest, when the candidate score already lists it first, is given no weight."""
    users, n = 10, 20
    candidates = np.arange(users * n).reshape(users, n)
    scores = np.tile(np.linspace(10.0, 0.0, n), (users, 1))
    position = 12 if helpful else 0
    relevant = [{int(candidates[u, position])} for u in range(users)]
    ratings = np.where(np.arange(n) == position, 5.0, 1.0) if helpful else np.where(np.arange(n) == position, 1.0, 5.0)
    weight, figures = item_item.choose_rating_weight(candidates, scores, np.tile(ratings, (users, 1)), relevant)
    assert set(figures) == set(item_item.RATING_WEIGHTS) and figures[weight] == max(figures.values())
    if helpful:
        assert weight > 0.0 and figures[weight] > 0.25 and figures[0.0] == 0.0
    else:
        assert weight == 0.0 and figures[0.0] == 1.0 and figures[max(item_item.RATING_WEIGHTS)] < 1.0


def test_the_regularization_is_the_one_with_the_best_eval_ndcg():
    profiles = planted(movies=40)
    rows = np.arange(10)
    rated = matrix([p - {1} if u in rows else p for u, p in enumerate(profiles)], movies=40)
    chosen, figures, _ = item_item.choose_regularization(rated, rows, [{1}] * 10, 5, 100)
    assert set(figures) == set(item_item.REGULARIZATIONS) and figures[chosen] == max(figures.values())
    excluded = rated[rows].toarray() > 0
    again = item_item.ndcg(item_item.scores(rated[rows], item_item.fit(rated, chosen, 5, 100)), excluded, [{1}] * 10)
    assert again == pytest.approx(figures[chosen])


def test_ndcg_by_hand():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    excluded = np.array([[True, False, False, False]])  # movie 0 is never listed
    # Top 3: movies 1, 2, 3; movie 2 relevant at rank 2: 1/log2(3); ideal (one relevant) 1.
    assert item_item.ndcg(scores, excluded, [{2}], k=3) == pytest.approx(1 / np.log2(3))
    assert item_item.ndcg(scores, excluded, [{0}], k=3) == 0.0


def rows_of(profiles: list[set[int]], users: range | np.ndarray) -> dict[str, np.ndarray]:
    pairs = [(f"u{u}", f"m{m:02d}") for u in users for m in sorted(profiles[u])]
    return {f.USER_ID: np.array([u for u, _ in pairs], object), f.MOVIE_ID: np.array([m for _, m in pairs], object)}


@pytest.mark.parametrize("oracle", [False, True])
def test_the_trainer_chooses_on_the_eval_users_held_out_movies_from_train_profiles(oracle):
    """eval_users and choose_item_item read the train and eval rows they are given and nothing else: eval holds
    movie 1 back from ten pair holders; they are scored (profiles from train alone) against movie 1."""
    profiles = planted(movies=40)
    train = [p - {1} if u < 10 else p for u, p in enumerate(profiles)]
    train_rows = rows_of(train, range(len(train)))
    eval_rows = rows_of([{1}] * 10, range(10))
    state = types.SimpleNamespace(
        user_ids=np.array(sorted(f"u{u}" for u in range(len(profiles))), object),
        movie_ids=np.array([f"m{m:02d}" for m in range(40)], object),
    )
    asked = []

    def query_vectors(users: np.ndarray) -> np.ndarray:
        asked.extend(users.tolist())
        return np.random.default_rng(len(users)).normal(size=(len(users), 4))

    movie_vectors = np.random.default_rng(7).normal(size=(40, 4))
    if oracle:  # a retrieval model that already ranks movie 1 first for everybody
        movie_vectors = np.concatenate([movie_vectors, np.zeros((40, 1))], axis=1)
        movie_vectors[1] = [0.0, 0.0, 0.0, 0.0, 1000.0]
        query_vectors_used = lambda users: np.concatenate([query_vectors(users), np.ones((len(users), 1))], 1)  # noqa: E731
    else:
        query_vectors_used = query_vectors
    config = TrainerConfig(item_item_neighbours=5)
    judged = retrieval_training.eval_users(state, train_rows, eval_rows, config.seed)
    assert judged.held_out == [{1}] * 10  # movie 1's index in the snapshot, for each of them
    assert (judged.rated.toarray() > 0).tolist() == [
        [m in train[int(u[1:])] for m in range(40)] for u in state.user_ids
    ]
    choice, scores, fitted = retrieval_training.choose_item_item(
        judged, query_vectors_used(state.user_ids[judged.users]), movie_vectors, config
    )
    assert sorted(asked) == sorted(f"u{u}" for u in range(10))  # the eval users, and only they
    assert choice["eval_users"] == 10
    assert (choice["share"] == 0.0) if oracle else (choice["share"] > 0.0)
    by_share = choice["eval_ndcg_by_share"]
    assert by_share[str(choice["share"])] == max(by_share.values())
    assert scores.shape == (10, 40) and np.isneginf(scores[judged.excluded]).all()
    again = item_item.fit(judged.rated, choice["regularization"], 5, config.item_item_movies)
    assert np.array_equal(fitted.indices, again.indices) and np.array_equal(fitted.weights, again.weights)

    # The rating weight: the ranker is asked about these users' candidates only, and never about their profiles.
    rated_by = []

    def ratings(users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        rated_by.extend(state.user_ids[users].tolist())
        assert not judged.excluded[np.arange(len(users))[:, None], candidates].any()
        return np.where(candidates == 1, 5.0, 1.0)  # a ranker that knows movie 1

    too_few = retrieval_training.choose_rating_weight(judged, scores, ratings, TrainerConfig(candidates=15))
    assert too_few == {"rating_weight": 0.2, "rating_weight_chosen_on_eval": False} and not rated_by  # 10 < 500
    enough = TrainerConfig(candidates=15, rating_weight_min_users=10)
    weighting = retrieval_training.choose_rating_weight(judged, scores, ratings, enough)
    assert sorted(rated_by) == sorted(f"u{u}" for u in range(10)) and weighting["rating_weight_chosen_on_eval"]
    by_weight = weighting["eval_ndcg_by_rating_weight"]
    assert weighting["rating_weight"] in item_item.RATING_WEIGHTS
    assert by_weight[str(weighting["rating_weight"])] == max(by_weight.values()) == 1.0  # movie 1 first for all
    fixed = retrieval_training.choose_rating_weight(judged, scores, ratings, TrainerConfig(rating_weight=0.7))
    assert fixed == {"rating_weight": 0.7, "rating_weight_chosen_on_eval": False} and len(rated_by) == 10


def test_the_rating_weight_is_chosen_on_a_seeded_sample_of_at_most_rating_weight_users(monkeypatch):
    profiles = planted(movies=40)
    train = [p - {1} if u < 10 else p for u, p in enumerate(profiles)]
    state = types.SimpleNamespace(
        user_ids=np.array(sorted(f"u{u}" for u in range(len(profiles))), object),
        movie_ids=np.array([f"m{m:02d}" for m in range(40)], object),
    )
    judged = retrieval_training.eval_users(state, rows_of(train, range(80)), rows_of([{1}] * 10, range(10)), 42)
    scores = np.random.default_rng(0).normal(size=(10, 40))
    monkeypatch.setattr(retrieval_training, "RATING_WEIGHT_USERS", 4)
    asked = []

    def ratings(users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        asked.append(sorted(users.tolist()))
        return np.ones(candidates.shape)

    for seed in (42, 42, 7):
        config = TrainerConfig(seed=seed, rating_weight_min_users=4)
        choice = retrieval_training.choose_rating_weight(judged, scores, ratings, config)
        assert choice["rating_weight_eval_users"] == 4
    assert asked[0] == asked[1] != asked[2] and all(len(set(a)) == 4 and set(a) <= set(judged.users) for a in asked)


@pytest.mark.parametrize(
    ("rows", "epochs"),
    [
        (65_336, 8),  # ML-100k's time split: 128 steps an epoch, the budget is its 8 epochs
        (70_000, 8),  # a u-fold: 138 steps an epoch, the budget rounds up
        (300_000, 2),  # 586 steps an epoch
        (600_000, 1),  # 1M ratings' time split: about 1,170 steps an epoch
        (6_000_000, 1),  # at least one epoch
    ],
)
def test_the_retrieval_model_trains_its_budget_of_steps_in_whole_epochs(rows, epochs):
    config = TrainerConfig()
    assert retrieval_training.steps_per_epoch(rows, config.retrieval_batch_size) == 2 * -(-rows // 1024)
    assert retrieval_training.retrieval_epochs(rows, config.retrieval_batch_size, config) == epochs
    small = TrainerConfig(retrieval_epochs=3)  # never more than retrieval_epochs
    assert retrieval_training.retrieval_epochs(1_000, 32, small) == 3
