"""Point-in-time history features: only strictly earlier events, ties deterministic, no leakage.

Unit tests on the pure functions, then ExampleGen's Beam output checked against a brute-force
recomputation from the raw files, and a change in the future that must not move the past.
"""

import random
import shutil

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from components.example_gen import history, movielens, splits
from components.example_gen.executor import LINE_COUNTS, REJECTED, ReadMovieLens
from components.example_gen.history import MovieHistory, UserHistory
from components.example_gen.movielens import Rating
from transform import features as f

SPLIT = movielens.TimeSplit(("train", "eval", "test"), (0.6, 0.2, 0.2))


def test_a_users_history_counts_only_strictly_earlier_ratings():
    events = [  # (rating, genres, the movie's own history at that rating)
        (Rating("u", "a", 5.0, 100), ("Drama",), MovieHistory()),
        (Rating("u", "b", 1.0, 200), ("Comedy", "Drama"), MovieHistory(2, 6.0)),  # movie mean then: 3
        (Rating("u", "c", 3.0, 200), ("Comedy",), MovieHistory(1, 4.0)),  # same second as b: unseen by b
        (Rating("u", "d", 4.0, 300), ("Drama", "Comedy"), MovieHistory()),
    ]
    histories = dict((r.movie_id, h) for r, h in history.user_histories(events))
    assert histories["a"] == UserHistory()  # the first rating has no history
    only_a = {"movies": ("a",), "movie_ratings": (5.0,)}
    expected_b = UserHistory(1, 5.0, 25.0, 1, 5.0, 1, 5.0, 100, **only_a)
    assert histories["b"] == expected_b
    assert histories["c"] == UserHistory(1, 5.0, 25.0, 0, 0.0, 1, 5.0, 100, **only_a)  # no earlier Comedy
    # d (Drama, Comedy): Drama a, b (2 ratings, 6.0) + Comedy b, c (2 ratings, 4.0), counted per shared genre.
    # Offsets: a's movie had no earlier rating (skipped); b: 1 - 3; c: 3 - 4. Same-second b, c: by movie id.
    assert histories["d"] == UserHistory(
        3, 9.0, 35.0, 4, 10.0, 3, 9.0, 100, 2, -3.0, movies=("a", "b", "c"), movie_ratings=(5.0, 1.0, 3.0)
    )


def test_histories_do_not_depend_on_input_order():
    rng = random.Random(7)
    events = [
        (
            Rating("u", str(m), float(rng.randint(1, 5)), rng.choice([10, 20, 20, 20, 30, 40])),
            ("Drama",),
            MovieHistory(1, m % 5),
        )
        for m in range(30)
    ]
    reference = sorted(history.user_histories(events), key=lambda pair: pair[0].movie_id)
    movies = sorted(history.movie_histories([r for r, *_ in events]), key=lambda pair: pair[0].movie_id)
    for _ in range(5):
        rng.shuffle(events)
        assert sorted(history.user_histories(events), key=lambda pair: pair[0].movie_id) == reference
        shuffled = history.movie_histories([r for r, *_ in events])
        assert sorted(shuffled, key=lambda pair: pair[0].movie_id) == movies


def test_recent_ratings_are_the_last_few_earlier_ones():
    n = f.MAX_PRIOR_MOVIES + 10
    events = [(Rating("u", str(t), float(1 + t % 5), t), ("Drama",), MovieHistory()) for t in range(1, n + 1)]
    last = history.user_histories(events)[-1][1]
    earlier = [1.0 + t % 5 for t in range(1, n)]
    assert last.recent_count == history.RECENT_RATINGS
    assert last.recent_rating_sum == sum(earlier[-history.RECENT_RATINGS :])
    assert last.seconds_since_last == 1
    # The movie list keeps the latest MAX_PRIOR_MOVIES, oldest first.
    assert last.movies == tuple(str(t) for t in range(n - f.MAX_PRIOR_MOVIES, n))
    assert last.movie_ratings == tuple(earlier[-f.MAX_PRIOR_MOVIES :])


def test_a_movies_history_excludes_same_second_ratings():
    ratings = [Rating("a", "m", 4.0, 10), Rating("b", "m", 2.0, 10), Rating("c", "m", 5.0, 11)]
    histories = {r.user_id: h for r, h in history.movie_histories(ratings)}
    assert histories == {"a": MovieHistory(), "b": MovieHistory(), "c": MovieHistory(2, 6.0, ("a", "b"), (4.0, 2.0))}


def test_a_movies_raters_are_its_last_50_earlier_ones_oldest_first_hidden_ones_excepted():
    ratings = [Rating(f"u{i:02d}", "m", 1.0 + i % 5, 100 + i) for i in range(60)]
    histories = dict(history.movie_histories(ratings, hidden={ratings[59].key, ratings[30].key}))
    last = histories[ratings[59]]
    assert last.count == 58 and len(last.raters) == f.MAX_PRIOR_RATERS
    assert last.raters == tuple(f"u{i:02d}" for i in range(8, 59) if i != 30)
    assert last.rater_ratings == tuple(1.0 + i % 5 for i in range(8, 59) if i != 30)


# ---- ExampleGen (real Beam) against a brute-force recomputation from the raw files ------------


def _data_with_ties(source, target):
    """The synthetic data with timestamps rounded to 6 hours: many same-second ratings per user."""
    shutil.copytree(source, target)
    lines = (target / "u.data").read_text().splitlines()
    rounded = []
    for line in lines:
        user, movie, rating, timestamp = line.split("\t")
        rounded.append(f"{user}\t{movie}\t{rating}\t{int(timestamp) // 21_600 * 21_600}")
    (target / "u.data").write_text("\n".join(rounded) + "\n")
    return target


def _examples(data, protocol: str = splits.TIME, seed: int = 0) -> dict[tuple, dict]:
    """ExampleGen's examples (all splits) keyed by (user, movie, timestamp), as plain dicts with their split."""
    return _decode(records(data, protocol, seed))


def records(data, protocol: str = splits.TIME, seed: int = 0) -> list[tuple[str, tf.Tensor]]:
    """ExampleGen's serialized examples of every split, as (split, record) pairs."""
    collected = []
    out = data / f"out-{protocol}-{seed}"
    with beam.Pipeline() as pipeline:
        read = pipeline | ReadMovieLens(str(data), SPLIT, max_timestamp=2_000_000_000, protocol=protocol, seed=seed)
        del read[REJECTED], read[LINE_COUNTS]
        for name, examples in read.items():
            _ = examples | f"Write[{name}]" >> beam.io.WriteToTFRecord(str(out / name), num_shards=1)
    for name in SPLIT.names:
        collected += [(name, record) for record in tf.data.TFRecordDataset(str(out / name) + "-00000-of-00001")]
    return collected


def _decode(records) -> dict[tuple, dict]:
    collected = []
    for split, record in records:
        feature = tf.train.Example.FromString(record.numpy()).features.feature

        def value(name, feature=feature):
            kind = feature[name].WhichOneof("kind")
            values = list(getattr(feature[name], kind).value)
            return values[0].decode() if kind == "bytes_list" and len(values) == 1 else values[0]

        def values(name, feature=feature):
            listed = getattr(feature[name], feature[name].WhichOneof("kind")).value
            return [v.decode() if isinstance(v, bytes) else v for v in listed]

        example = {name: value(name) for name in (*f.STRING_FEATURES, *f.INT_FEATURES, *f.FLOAT_FEATURES)}
        lists = {name: values(name) for name in f.HISTORY_LIST_FEATURES}
        collected.append(example | lists | {"split": split})
    return {(e[f.USER_ID], e[f.MOVIE_ID], e[f.TIMESTAMP]): e for e in collected}


def _brute_force(data, user: str, movie: str, timestamp: int) -> dict:
    """The history of one rating recomputed from the raw files: every rating strictly before it."""
    genres = {}
    for line in (data / "u.item").read_text("latin-1").splitlines():
        fields = line.split("|")
        genres[fields[0]] = {g for g, flag in zip(movielens.GENRES, fields[5:], strict=True) if flag == "1"}
    ratings = [line.split("\t") for line in (data / "u.data").read_text().splitlines()]
    earlier = sorted(
        ((int(t), m, float(r)) for u, m, r, t in ratings if u == user and int(t) < timestamp),
        key=lambda x: (x[0], x[1]),
    )
    shared = [(len(genres[m] & genres[movie]), r) for _, m, r in earlier]
    offsets = []
    for t_j, m_j, r_j in earlier:  # each earlier rating vs its movie's mean strictly before it
        before = [float(r) for _, m, r, t in ratings if m == m_j and int(t) < t_j]
        if before:
            offsets.append(r_j - sum(before) / len(before))
    recent = [r for _, _, r in earlier][-history.RECENT_RATINGS :]
    movie_earlier = sorted((int(t), u, float(r)) for u, m, r, t in ratings if m == movie and int(t) < timestamp)
    return {
        f.USER_PRIOR_COUNT: len(earlier),
        f.USER_PRIOR_RATING_SUM: sum(r for _, _, r in earlier),
        f.USER_PRIOR_RATING_SQ_SUM: sum(r * r for _, _, r in earlier),
        f.USER_PRIOR_GENRE_COUNT: sum(n for n, _ in shared),
        f.USER_PRIOR_GENRE_RATING_SUM: sum(n * r for n, r in shared),
        f.USER_RECENT_COUNT: len(recent),
        f.USER_RECENT_RATING_SUM: sum(recent),
        f.USER_SECONDS_SINCE_LAST: timestamp - earlier[-1][0] if earlier else -1,
        f.USER_PRIOR_OFFSET_COUNT: len(offsets),
        f.USER_PRIOR_OFFSET_SUM: sum(offsets),
        f.MOVIE_PRIOR_COUNT: len(movie_earlier),
        f.MOVIE_PRIOR_RATING_SUM: sum(r for _, _, r in movie_earlier),
        f.USER_PRIOR_MOVIES: [m for _, m, _ in earlier][-f.MAX_PRIOR_MOVIES :],
        f.USER_PRIOR_MOVIE_RATINGS: [r for _, _, r in earlier][-f.MAX_PRIOR_MOVIES :],
        f.MOVIE_PRIOR_RATERS: [u for _, u, _ in movie_earlier][-f.MAX_PRIOR_RATERS :],
        f.MOVIE_PRIOR_RATER_RATINGS: [r for _, _, r in movie_earlier][-f.MAX_PRIOR_RATERS :],
    }


HISTORY = (*f.HISTORY_INT_FEATURES, *f.HISTORY_FLOAT_FEATURES, *f.HISTORY_LIST_FEATURES)


@pytest.fixture(scope="module")
def tied(synthetic_dir, tmp_path_factory):
    data = _data_with_ties(synthetic_dir, tmp_path_factory.mktemp("history") / "data")
    return data, _examples(data)


@pytest.mark.slow
def test_examplegen_history_equals_a_brute_force_recomputation(tied):
    data, examples = tied
    keys = sorted(examples)
    ties = sum(1 for k in keys if sum(1 for j in keys if j[0] == k[0] and j[2] == k[2]) > 1)
    assert ties > 100  # the data really has same-second ratings of one user
    for key in random.Random(0).sample(keys, 150):
        expected = _brute_force(data, *key)
        actual = {name: examples[key][name] for name in HISTORY}
        for name in f.HISTORY_LIST_FEATURES:  # lists: exact, in order
            assert actual.pop(name) == expected.pop(name), key
        assert actual == pytest.approx(expected), key


@pytest.mark.slow
def test_changing_a_future_rating_changes_no_earlier_example(tied, tmp_path):
    data, before = tied
    changed = tmp_path / "changed"
    shutil.copytree(data, changed, ignore=shutil.ignore_patterns("out*"))
    lines = (changed / "u.data").read_text().splitlines()
    timestamps = sorted({int(line.split("\t")[3]) for line in lines})
    cutoff = timestamps[len(timestamps) // 2]
    flipped = []
    for i, line in enumerate(lines):  # every rating at the cutoff second and after: r → 6 - r
        user, movie, rating, timestamp = line.split("\t")
        if int(timestamp) >= cutoff:
            lines[i] = f"{user}\t{movie}\t{6 - int(rating)}\t{timestamp}"
            flipped.append((user, movie, int(timestamp)))
    (changed / "u.data").write_text("\n".join(lines) + "\n")
    after = _examples(changed)

    assert before.keys() == after.keys()
    for key, example in before.items():
        if key[2] <= cutoff:  # before the change, and the changed second itself (ties see nothing)
            assert {n: after[key][n] for n in HISTORY} == {n: example[n] for n in HISTORY}, key
    later = [k for k in before if k[2] > cutoff]
    moved = [k for k in later if after[k][f.USER_PRIOR_RATING_SUM] != before[k][f.USER_PRIOR_RATING_SUM]]
    assert len(flipped) > 100 and len(moved) > len(later) / 4  # the future did change (the test can fail)
    assert np.mean([after[k][f.RATING] != before[k][f.RATING] for k in flipped]) > 0.5


# ---- Random protocols: test ratings never feed a history ----------------------------------------


def _flip(source, target, keys: set):
    """A copy of `source` where the ratings of `keys` are r → 6 - r."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("out*"))
    lines = []
    for line in (target / "u.data").read_text().splitlines():
        user, movie, rating, timestamp = line.split("\t")
        if (user, movie, int(timestamp)) in keys:
            rating = str(6 - int(rating))
        lines.append(f"{user}\t{movie}\t{rating}\t{timestamp}")
    (target / "u.data").write_text("\n".join(lines) + "\n")
    return target


def _histories(example: dict) -> dict:
    return {name: example[name] for name in HISTORY}


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [splits.STRATIFIED, "u1"])
def test_random_protocols_split_as_published_and_hide_test_ratings_from_every_history(
    synthetic_dir, tmp_path, protocol
):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dir, data)
    lines = (data / "u.data").read_text().splitlines()
    fold_test = sorted(random.Random(0).sample(lines, len(lines) // 5))
    (data / "u1.test").write_text("\n".join(fold_test) + "\n")

    before = _examples(data, protocol, seed=3)
    assert len(before) == len(lines)
    test = {key for key, e in before.items() if e["split"] == "test"}
    if protocol == splits.STRATIFIED:  # per user: round(25%) test, round(10%) eval, the rest train
        for user in {key[0] for key in before}:
            mine = [e["split"] for key, e in before.items() if key[0] == user]
            assert mine.count("test") == round(0.25 * len(mine)) and mine.count("eval") == round(0.10 * len(mine))
    else:  # test = exactly u1.test; eval about FOLD_EVAL_FRACTION of the rest
        assert test == {(u, m, int(t)) for u, m, _, t in (line.split("\t") for line in fold_test)}
        evals = sum(e["split"] == "eval" for e in before.values())
        assert abs(evals / (len(lines) - len(test)) - splits.FOLD_EVAL_FRACTION) < 0.03
    again = _examples(data, protocol, seed=3)
    assert {k: e["split"] for k, e in again.items()} == {k: e["split"] for k, e in before.items()}  # deterministic
    other_seed = {k for k, e in _examples(data, protocol, seed=4).items() if e["split"] == "test"}
    assert (other_seed == test) is (protocol != splits.STRATIFIED)  # a fold's test split is fixed

    after = _examples(_flip(data, tmp_path / "flipped", test), protocol, seed=3)
    assert {k: e["split"] for k, e in after.items()} == {k: e["split"] for k, e in before.items()}
    assert all(_histories(after[key]) == _histories(e) for key, e in before.items())
    assert all(after[key][f.RATING] == 6 - before[key][f.RATING] for key in test)
    # Control: in the time protocol the same change does reach later histories (so this test can fail).
    timed = _examples(data), _examples(tmp_path / "flipped")
    assert sum(_histories(timed[0][key]) != _histories(timed[1][key]) for key in timed[0]) > len(lines) / 4


@pytest.mark.slow
def test_the_frozen_time_split_is_the_time_split_with_test_ratings_in_no_history(tied, tmp_path):
    """time-frozen: the same rows in each split as `time`, but flipping every test rating moves no history
    (in `time` the same flip does: the control above)."""
    data, timed = tied
    frozen = _examples(data, splits.TIME_FROZEN)
    assert {k: e["split"] for k, e in frozen.items()} == {k: e["split"] for k, e in timed.items()}
    test = {key for key, e in frozen.items() if e["split"] == "test"}
    assert len(test) > 100
    for key, e in frozen.items():  # train and eval ratings know exactly what they knew in `time`
        if e["split"] != "test":
            assert _histories(e) == _histories(timed[key]), key
    after = _examples(_flip(data, tmp_path / "flipped", test), splits.TIME_FROZEN)
    assert all(_histories(after[key]) == _histories(e) for key, e in frozen.items())
    assert sum(_histories(frozen[k]) != _histories(timed[k]) for k in test) > len(test) / 4  # test knows less
