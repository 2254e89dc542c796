"""Every feature, label and vocabulary name of the recommender, defined once.

ExampleGen writes the raw names, Transform reads them and writes the transformed
names, and the Trainer, Evaluator config and serving signatures import them from
here. No other module spells a feature name as a string literal.
"""

from __future__ import annotations

# ---- Raw features written by the MovieLens ExampleGen ------------------------
USER_ID = "user_id"
MOVIE_ID = "movie_id"
RATING = "rating"  # The label. Absent in the SERVING environment.
TIMESTAMP = "timestamp"
USER_AGE = "user_age"
USER_GENDER = "user_gender"
USER_OCCUPATION = "user_occupation"
USER_ZIP = "user_zip"
MOVIE_TITLE = "movie_title"
MOVIE_GENRES = "movie_genres"
MOVIE_RELEASE_YEAR = "movie_release_year"

LABEL_KEY = RATING
# What a user file gives (ml-100k, ml-1m). Releases without one (ml-10m and later) have none of these features: the
# schema, Transform, the models and the serving signatures then leave them out (never filled with stand-ins).
USER_ATTRIBUTES = (USER_AGE, USER_GENDER, USER_OCCUPATION, USER_ZIP)

# Point-in-time history, computed by ExampleGen for each rating from strictly earlier events only
# (earlier timestamp; ratings in the same second do not see each other). Serving requests must
# carry them too: the client knows the user's and the movie's past (see README "Serving contract").
USER_PRIOR_COUNT = "user_prior_count"  # the user's earlier ratings
USER_PRIOR_RATING_SUM = "user_prior_rating_sum"
USER_PRIOR_RATING_SQ_SUM = "user_prior_rating_sq_sum"
USER_PRIOR_GENRE_COUNT = "user_prior_genre_count"  # ... of movies sharing a genre with this one (per genre)
USER_PRIOR_GENRE_RATING_SUM = "user_prior_genre_rating_sum"
USER_RECENT_COUNT = "user_recent_count"  # the last few (RECENT_RATINGS) earlier ratings
USER_RECENT_RATING_SUM = "user_recent_rating_sum"
USER_SECONDS_SINCE_LAST = "user_seconds_since_last"  # -1: no earlier rating
# Earlier ratings whose movie had earlier ratings itself, and the sum of (rating - that movie's mean then).
USER_PRIOR_OFFSET_COUNT = "user_prior_offset_count"
USER_PRIOR_OFFSET_SUM = "user_prior_offset_sum"  # may be negative
MOVIE_PRIOR_COUNT = "movie_prior_count"  # the movie's earlier ratings (any user)
MOVIE_PRIOR_RATING_SUM = "movie_prior_rating_sum"
# The user's last MAX_PRIOR_MOVIES earlier ratings one by one, oldest first (lists of equal length,
# empty for a first rating): which movies, and the ratings given. The model learns factors per movie.
USER_PRIOR_MOVIES = "user_prior_movies"
USER_PRIOR_MOVIE_RATINGS = "user_prior_movie_ratings"
MAX_PRIOR_MOVIES = 50  # longer lists (serving requests) keep their latest MAX_PRIOR_MOVIES
# The movie's last MAX_PRIOR_RATERS earlier ratings one by one, oldest first (lists of equal length, empty for
# its first rating): which users, and the ratings they gave. The mirror of the two lists above: the model
# describes a movie by its earlier raters' factors.
MOVIE_PRIOR_RATERS = "movie_prior_raters"
MOVIE_PRIOR_RATER_RATINGS = "movie_prior_rater_ratings"
MAX_PRIOR_RATERS = 50
# The lists of earlier ratings as (ids, ratings given) pairs: the user's movies, the movie's raters.
HISTORY_LISTS = ((USER_PRIOR_MOVIES, USER_PRIOR_MOVIE_RATINGS), (MOVIE_PRIOR_RATERS, MOVIE_PRIOR_RATER_RATINGS))
HISTORY_LIST_FEATURES = tuple(name for pair in HISTORY_LISTS for name in pair)
RECENT_RATINGS = 5  # how many of the user's latest earlier ratings make up "recent"
HISTORY_INT_FEATURES = (
    USER_PRIOR_COUNT,
    USER_PRIOR_GENRE_COUNT,
    USER_RECENT_COUNT,
    USER_SECONDS_SINCE_LAST,
    USER_PRIOR_OFFSET_COUNT,
    MOVIE_PRIOR_COUNT,
)
HISTORY_FLOAT_FEATURES = (
    USER_PRIOR_RATING_SUM,
    USER_PRIOR_RATING_SQ_SUM,
    USER_PRIOR_GENRE_RATING_SUM,
    USER_RECENT_RATING_SUM,
    USER_PRIOR_OFFSET_SUM,
    MOVIE_PRIOR_RATING_SUM,
)

# Raw value written for a movie whose release date is missing (ml-100k movie 267).
# Transform imputes it and exposes MOVIE_YEAR_MISSING so the model can tell.
RELEASE_YEAR_UNKNOWN = 0

# Raw string features and their Python/TF dtypes, in ExampleGen's output order.
STRING_FEATURES = (USER_ID, MOVIE_ID, USER_GENDER, USER_OCCUPATION, USER_ZIP, MOVIE_TITLE)
INT_FEATURES = (TIMESTAMP, USER_AGE, MOVIE_RELEASE_YEAR, *HISTORY_INT_FEATURES)
FLOAT_FEATURES = (RATING, *HISTORY_FLOAT_FEATURES)
MULTI_STRING_FEATURES = (MOVIE_GENRES, USER_PRIOR_MOVIES, MOVIE_PRIOR_RATERS)  # Variable-length lists.
MULTI_FLOAT_FEATURES = (USER_PRIOR_MOVIE_RATINGS, MOVIE_PRIOR_RATER_RATINGS)
RAW_FEATURES = STRING_FEATURES + INT_FEATURES + FLOAT_FEATURES + MULTI_STRING_FEATURES + MULTI_FLOAT_FEATURES
SERVING_FEATURES = tuple(name for name in RAW_FEATURES if name != LABEL_KEY)

RATING_MIN = 1.0
RATING_MAX = 5.0


# ---- Transformed features written by transform/preprocessing.py -------------
def transformed_name(key: str) -> str:
    """Name of the transformed counterpart of a raw feature."""
    return f"{key}_xf"


USER_ID_XF = transformed_name(USER_ID)
MOVIE_ID_XF = transformed_name(MOVIE_ID)
USER_GENDER_XF = transformed_name(USER_GENDER)
USER_OCCUPATION_XF = transformed_name(USER_OCCUPATION)
USER_ZIP_PREFIX_XF = transformed_name("user_zip_prefix")
MOVIE_GENRES_XF = transformed_name(MOVIE_GENRES)  # Dense [batch, MAX_GENRES], -1 = padding.
USER_AGE_XF = transformed_name(USER_AGE)  # z-score
USER_AGE_BUCKET_XF = transformed_name("user_age_bucket")  # string, used for slicing
# The one definition of a seen user: "seen" if the user id is in the train vocabulary (has a rating in the train
# split), else "unseen" (cold start). Slicing only: the Evaluator's slices (this feature) and the RankingEvaluator's
# (the same vocabulary, read from the transform graph) carry this name.
USER_SEEN_IN_TRAIN = "user_seen_in_train"
USER_SEEN_XF = transformed_name(USER_SEEN_IN_TRAIN)
USER_SEEN_VALUES = ("seen", "unseen")
MOVIE_YEAR_XF = transformed_name(MOVIE_RELEASE_YEAR)  # z-score, unknown imputed
MOVIE_YEAR_MISSING_XF = transformed_name("movie_year_missing")  # 0/1
MOVIE_AGE_XF = transformed_name("movie_age_at_rating")  # z-score of years
HOUR_XF = transformed_name("hour_of_day")  # int 0..23
DAY_OF_WEEK_XF = transformed_name("day_of_week")  # int 0..6, Monday = 0
HOUR_SIN_XF = transformed_name("hour_sin")
HOUR_COS_XF = transformed_name("hour_cos")
DOW_SIN_XF = transformed_name("day_of_week_sin")
DOW_COS_XF = transformed_name("day_of_week_cos")
LABEL_XF = transformed_name(LABEL_KEY)
# History: rating means shrunk towards the prior mean (so a first rating is not noise), centred on it.
USER_MEAN_XF = transformed_name("user_prior_mean")
USER_STD_XF = transformed_name("user_prior_std")
USER_COUNT_XF = transformed_name("user_prior_count_log")  # z-score of log1p(count)
USER_GENRE_MEAN_XF = transformed_name("user_prior_genre_mean")
USER_GENRE_COUNT_XF = transformed_name("user_prior_genre_count_log")
USER_RECENT_MEAN_XF = transformed_name("user_recent_mean")
USER_SINCE_LAST_XF = transformed_name("user_since_last_log")  # z-score of log1p(seconds), 0 when none
USER_HAS_HISTORY_XF = transformed_name("user_has_history")  # 0/1
USER_OFFSET_XF = transformed_name("user_prior_offset")  # mean offset vs movie means, shrunk to 0
# Dense [batch, MAX_PRIOR_MOVIES]: movie vocabulary indices (-1 = padding) and each rating minus
# the user's shrunk mean at this rating (0 at padding).
USER_PRIOR_MOVIES_XF = transformed_name(USER_PRIOR_MOVIES)
USER_PRIOR_DEVIATIONS_XF = transformed_name("user_prior_movie_deviations")
# Dense [batch, MAX_PRIOR_RATERS]: user vocabulary indices (-1 = padding) and each rating minus the movie's
# shrunk mean at this rating (0 at padding).
MOVIE_PRIOR_RATERS_XF = transformed_name(MOVIE_PRIOR_RATERS)
MOVIE_PRIOR_DEVIATIONS_XF = transformed_name("movie_prior_rater_deviations")
MOVIE_TITLE_TOKENS_XF = transformed_name(
    "movie_title_tokens"
)  # Dense [batch, MAX_TITLE_TOKENS] hashed words, -1 = padding
MAX_TITLE_TOKENS = 8
TITLE_HASH_BUCKETS = 4096
MOVIE_MEAN_XF = transformed_name("movie_prior_mean")
MOVIE_COUNT_XF = transformed_name("movie_prior_count_log")
# Pseudo-counts of the shrinkage: how many prior-mean ratings each mean starts with.
USER_MEAN_PSEUDO_COUNT = 5.0
USER_GENRE_PSEUDO_COUNT = 3.0
USER_RECENT_PSEUDO_COUNT = 2.0
MOVIE_MEAN_PSEUDO_COUNT = 10.0
USER_OFFSET_PSEUDO_COUNT = 3.0

# Categorical features embedded by the model: transformed name -> vocabulary name.
VOCAB_FEATURES = {
    USER_ID_XF: "user_id_vocab",
    MOVIE_ID_XF: "movie_id_vocab",
    USER_GENDER_XF: "user_gender_vocab",
    USER_OCCUPATION_XF: "user_occupation_vocab",
    USER_ZIP_PREFIX_XF: "user_zip_prefix_vocab",
}
# Identity-like features: the model embeds them (and has user/movie biases) only with
# Hyperparameters.id_embeddings. Off by default: 90% of test ratings are by users unseen in
# training, and with ids the model memorises train users instead of learning from their history.
# (The movie id also indexes the movie factors matched against the user's earlier movies, with
# Hyperparameters.history_factors: those work for unseen users.)
ID_FEATURES = (USER_ID_XF, MOVIE_ID_XF, USER_ZIP_PREFIX_XF)
GENRES_VOCAB = "movie_genres_vocab"
NUM_OOV_BUCKETS = 1  # Unknown ids all map to index vocab_size.
MAX_GENRES = 6  # Genres kept per movie (ml-100k has at most 6).
ZIP_PREFIX_LENGTH = 3

DENSE_FLOAT_FEATURES = (
    USER_AGE_XF,
    MOVIE_YEAR_XF,
    MOVIE_YEAR_MISSING_XF,
    MOVIE_AGE_XF,
    HOUR_SIN_XF,
    HOUR_COS_XF,
    DOW_SIN_XF,
    DOW_COS_XF,
    USER_MEAN_XF,
    USER_STD_XF,
    USER_COUNT_XF,
    USER_GENRE_MEAN_XF,
    USER_GENRE_COUNT_XF,
    USER_RECENT_MEAN_XF,
    USER_SINCE_LAST_XF,
    USER_HAS_HISTORY_XF,
    USER_OFFSET_XF,
    MOVIE_MEAN_XF,
    MOVIE_COUNT_XF,
)

# Raw features Transform passes through unchanged (under their raw names), so the Trainer can build the
# recommender's snapshot of every user and movie (components/trainer/snapshot.py) from the examples it reads.
PASSTHROUGH_FEATURES = (
    USER_ID,
    MOVIE_ID,
    TIMESTAMP,
    USER_AGE,
    USER_GENDER,
    USER_OCCUPATION,
    USER_ZIP,
    MOVIE_TITLE,
    MOVIE_RELEASE_YEAR,
    MOVIE_PRIOR_COUNT,
    MOVIE_PRIOR_RATING_SUM,
)

# Retrieval query inputs (components/trainer/retrieval.py), not Transform outputs: the user's rated movies as
# Transform vocabulary indices (-1 = padding) and each rating minus the user's mean, oldest first. At serving and
# in profile examples they list the latest MAX_PROFILE_MOVIES ratings in the snapshot; in point-in-time
# examples, the user's earlier movies (USER_PRIOR_MOVIES_XF).
PROFILE_MOVIES = "profile_movies"
PROFILE_DEVIATIONS = "profile_deviations"
MAX_PROFILE_MOVIES = MAX_PRIOR_MOVIES  # measured: the latest 1,000 scored NDCG@10 0.368 vs 0.431 (stratified)

# Age groups used for slicing (the MovieLens-1M demographic bands).
AGE_BUCKET_BOUNDARIES = (18, 25, 35, 45, 50, 56)
AGE_BUCKET_NAMES = ("under_18", "18-24", "25-34", "35-44", "45-49", "50-55", "56_plus")

# Transformed features made from USER_ATTRIBUTES only (absent with them).
USER_ATTRIBUTE_XF = (USER_GENDER_XF, USER_OCCUPATION_XF, USER_ZIP_PREFIX_XF, USER_AGE_XF, USER_AGE_BUCKET_XF)


def present(names: tuple[str, ...], available) -> tuple[str, ...]:
    """The `names` found in `available` (a feature spec, the inputs of a batch...), in `names`' order."""
    return tuple(name for name in names if name in available)


# ---- Serving -----------------------------------------------------------------
SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
# The Evaluator's slices besides the overall one (components/evaluator/eval_config.py), which it gets from the model's
# SLICE_SIGNATURE: the Transform graph's outputs of these names only (gender and occupation pass through as they are).
SLICE_FEATURES = (USER_GENDER, USER_AGE_BUCKET_XF, USER_OCCUPATION, USER_SEEN_XF)
SLICE_SIGNATURE = "slice_features"
RAW_SIGNATURE = "predict_raw"
PREDICTION_KEY = "predicted_rating"
# `recommend`: top-K movies for users (components/trainer/recommend.py).
RECOMMEND_SIGNATURE = "recommend"
REQUEST_USER_ID = "user_id"  # [batch] string
REQUEST_MOVIES = "recent_movies"  # [batch, n] string, "" = padding
REQUEST_RATINGS = "recent_ratings"  # [batch, n] float, read where recent_movies is not ""
REQUEST_K = "k"  # int32 scalar
REQUEST_DIVERSITY = "diversity"  # float32 scalar in [0, 1]; 0 = pure relevance
OUT_MOVIE_IDS = "movie_ids"  # [batch, k] string, "" where fewer than k movies are left
OUT_TITLES = "titles"
OUT_GENRES = "genres"  # "|"-joined
OUT_SCORES = "scores"  # [batch, k] float32, the ordering score (-inf where movie_ids is "")
OUT_RATINGS = "predicted_ratings"  # [batch, k] the ranker's predicted rating
OUT_KNOWN_USER = "known_user"  # [batch] bool: the user is in the model's snapshot
OUT_QUERY_VECTORS = "query_vectors"  # [batch, d] the users' retrieval query vectors (for offline ANN search)
CATALOGUE_SIGNATURE = "catalogue"  # no inputs: every movie the model can recommend
OUT_RATING_COUNTS = "rating_counts"  # [movies] int64: ratings in the data the model was trained on
OUT_USER_COUNT = "users"  # int64 scalar: users in the model's snapshot
OUT_USER_IDS = "user_ids"  # [users] string: the users in the model's snapshot
OUT_RATING_RANGE = "rating_range"  # [2] float32: the release's lowest and highest rating
OUT_MOVIE_VECTORS = "movie_vectors"  # [movies, d] the retrieval candidate vectors

# Explanations (recommender/explanations.py): a (user, movie) pair's ranker inputs, read from the snapshot as the
# `recommend` path builds them, and the ranker run on any such inputs (the Transform outputs it reads, unclipped).
PAIR_INPUTS_SIGNATURE = "pair_inputs"  # user_id [b], movie_id [b] (+ recent_movies/ratings) → ranker inputs
RANK_INPUTS_SIGNATURE = "rank_inputs"  # ranker inputs → OUT_RAW_RATING [b]
OUT_RAW_RATING = "raw_rating"  # the ranker's output before clipping to the rating range
USER_RATINGS_SIGNATURE = "user_ratings"  # user_id (scalar) → the movies they rated in the snapshot, oldest first
OUT_RATED = "ratings"  # [n] float32, beside OUT_MOVIE_IDS / OUT_TITLES / OUT_GENRES
REQUEST_MOVIE_ID = "movie_id"  # [b] string (pair_inputs)

# The terms an explanation is told in: every ranker input belongs to exactly one (tests/explanations_test.py).
# Each term names the raw features its inputs are computed from.
EXPLANATION_TERMS = {
    "rating habits": (USER_MEAN_XF, USER_STD_XF, USER_COUNT_XF, USER_RECENT_MEAN_XF, USER_OFFSET_XF,
                      USER_HAS_HISTORY_XF, USER_ID_XF),
    "movie popularity and quality": (MOVIE_MEAN_XF, MOVIE_COUNT_XF, MOVIE_ID_XF, MOVIE_PRIOR_RATERS_XF,
                                     MOVIE_PRIOR_DEVIATIONS_XF),
    "genre match": (MOVIE_GENRES_XF, USER_GENRE_MEAN_XF, USER_GENRE_COUNT_XF),
    "movies rated before": (USER_PRIOR_MOVIES_XF, USER_PRIOR_DEVIATIONS_XF),
    "movie age": (MOVIE_YEAR_XF, MOVIE_YEAR_MISSING_XF, MOVIE_AGE_XF),
    "time of day and recency": (HOUR_SIN_XF, HOUR_COS_XF, DOW_SIN_XF, DOW_COS_XF, USER_SINCE_LAST_XF),
    "demographics": (USER_AGE_XF, USER_GENDER_XF, USER_OCCUPATION_XF, USER_ZIP_PREFIX_XF),
}  # fmt: skip
EXPLANATION_SOURCES = {
    "rating habits": "the user's earlier ratings: count, mean, spread, last 5, offset from each movie's mean; id",
    "movie popularity and quality": "the movie's earlier ratings: count, mean, its last 50 raters; id",
    "genre match": "the movie's genres and the user's earlier ratings of movies of those genres",
    "movies rated before": "the user's last 50 movies and how far each rating was from their mean",
    "movie age": "the release year and the movie's age when rated",
    "time of day and recency": "the request's time (hour, weekday) and the time since the user's last rating",
    "demographics": "age, gender, occupation, zip-code prefix (releases with a users file)",
}
