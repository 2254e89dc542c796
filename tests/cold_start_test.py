"""The new-user popularity prior (components/trainer/cold_start.py): which eval users it is chosen on, and that
the choice follows what eval rewards. numpy only; the pushed model's use of it is in recommend_e2e_test.py."""

import numpy as np
import pytest
import tensorflow as tf

from components.trainer import cold_start, item_item, scoring
from transform import features as f


def rows(triples: list[tuple[str, str, int, float]]) -> dict[str, np.ndarray]:
    """Trainer rows (as data.collect gives them) of (user, movie, timestamp, rating)."""
    return {
        f.USER_ID: np.array([u.encode() for u, _, _, _ in triples], object),
        f.MOVIE_ID: np.array([m.encode() for _, m, _, _ in triples], object),
        f.TIMESTAMP: np.array([t for _, _, t, _ in triples], np.int64),
        f.RATING: np.array([r for _, _, _, r in triples], np.float32),
    }


MOVIES = np.array([f"m{m:02d}" for m in range(20)], object)
TRAIN = rows([(f"old{u}", f"m{m:02d}", 0, 4.0) for u in range(5) for m in range(18)])  # m18, m19: eval only


def test_new_users_are_the_eval_users_without_train_ratings_their_train_movies_by_time():
    needed = max(cold_start.GIVEN) + cold_start.LATER
    late = [(f"new{u}", f"m{m:02d}", 100 - m, 3.0 + u) for u in range(4) for m in range(needed)]  # newest first
    too_few = [("new9", f"m{m:02d}", 1, 5.0) for m in range(needed - 1)]
    unknown_movies = [("new8", f"m{m:02d}", 1, 5.0) for m in (*range(needed - 1), 18, 19)]  # m18/m19: not in train
    known = [("old0", f"m{m:02d}", 1, 5.0) for m in range(needed)]  # rated in train: not new
    eval_rows = rows(late + too_few + unknown_movies + known)
    users = cold_start.new_users(MOVIES, TRAIN, eval_rows, seed=0, limit=10)
    assert users.user_ids.tolist() == ["new0", "new1", "new2", "new3"]
    assert users.movies[0].tolist() == list(range(needed - 1, -1, -1))  # by time, oldest first
    assert users.ratings[2].tolist() == [5.0] * needed
    sampled = [cold_start.new_users(MOVIES, TRAIN, eval_rows, seed, limit=2).user_ids for seed in (0, 1)]
    assert all(len(s) == 2 and set(s) <= {"new0", "new1", "new2", "new3"} for s in sampled)
    again = cold_start.new_users(MOVIES, TRAIN, eval_rows, seed=0, limit=2).user_ids
    assert again.tolist() == sampled[0].tolist()  # seeded


@pytest.mark.parametrize("popular_later", [True, False])
def test_the_prior_follows_what_the_new_users_rate_next(popular_later):
    """New users whose later ratings are the popular movies: a positive weight wins on eval at every n; new users
    whose later ratings are the least popular movies (which random retrieval scores rank as well as any): 0."""
    movies, users, needed = 30, 12, max(cold_start.GIVEN) + cold_start.LATER
    popularity = np.log1p(np.arange(movies, 0, -1) * 10.0)  # movie 0 the most rated
    later = np.arange(needed) if popular_later else np.arange(movies - needed, movies)
    histories = [np.random.default_rng(u).permutation(later) for u in range(users)]
    new = cold_start.NewUsers(
        np.array([f"n{u}" for u in range(users)], object), histories, [np.full(needed, 4.0)] * users
    )
    rng = np.random.default_rng(5)
    movie_vectors = rng.normal(size=(movies, 4))
    asked = []

    def query_vectors(n: int) -> np.ndarray:
        asked.append(n)
        return rng.normal(size=(users, 4))

    empty = item_item.fit(item_item.rated_matrix(np.array([0]), np.array([0]), (1, movies)), 10.0, 5, 100)
    choice = cold_start.choose_popularity_weights(new, query_vectors, movie_vectors, empty, popularity, 0.3)
    assert asked == list(cold_start.GIVEN) and choice["new_user_eval_users"] == users
    figures = choice["eval_ndcg_by_given_and_new_user_popularity"]
    assert set(figures) == {str(n) for n in cold_start.GIVEN}
    for n, weight in zip(cold_start.GIVEN, choice["new_user_popularity"], strict=True):
        by_weight = figures[str(n)]
        assert set(by_weight) == {str(w) for w in cold_start.POPULARITY_WEIGHTS}
        best = max(by_weight, key=by_weight.get)
        assert weight <= float(best) and by_weight[str(weight)] <= by_weight[best]  # the one-standard-error rule
        if popular_later:
            assert weight > 0 and by_weight[str(weight)] > by_weight["0.0"]
        else:
            assert weight == 0.0


def test_without_new_users_in_eval_the_prior_is_off():
    nobody = cold_start.NewUsers(np.array([], object), [], [])
    choice = cold_start.choose_popularity_weights(nobody, None, np.zeros((3, 2)), None, np.zeros(3), 0.5)
    assert choice == {"new_user_popularity": [0.0] * len(cold_start.GIVEN), "new_user_eval_users": 0}


def test_the_smallest_weight_within_one_standard_error_of_the_best_is_chosen():
    rng = np.random.default_rng(0)
    base = rng.random(400)
    noise = {0.0: base, 1.0: base + rng.normal(0.002, 0.05, 400), 2.0: base + 0.1}  # 1: noise; 2: clearly better
    assert cold_start.within_one_standard_error(noise) == 2.0
    assert cold_start.within_one_standard_error({w: v for w, v in noise.items() if w < 2}) == 0.0
    assert cold_start.within_one_standard_error({0.0: base, 4.0: base + 0.01}) == 4.0  # no noise: any gain counts
    assert cold_start.within_one_standard_error({0.0: base + 0.01, 4.0: base}) == 0.0


def test_a_request_uses_the_weight_of_the_largest_given_count_not_above_its_own():
    counts = tf.constant([0, 1, 2, 3, 4, 5, 6, 40])
    index = scoring.step_index(counts, cold_start.GIVEN).numpy()
    expected = [max(i for i, n in enumerate(cold_start.GIVEN) if n <= c) for c in counts.numpy()]
    assert index.tolist() == expected and expected[0] == 0 and expected[-1] == len(cold_start.GIVEN) - 1
