"""The arithmetic of `recommend`'s scores in TensorFlow: per-user standardization, the candidate score (the
blend of the retrieval and item-item scores, plus the new-user popularity prior) and the MMR order.

item_item.py holds the numpy twins the Trainer chooses the blend and the priors with; a test checks they agree.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

NEG_INF = float("-inf")


def moments(values: tf.Tensor, excluded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each row's mean and standard deviation ([batch, 1]) over the entries not `excluded`."""
    valid = tf.cast(~excluded, tf.float32)
    count = tf.maximum(tf.reduce_sum(valid, 1, keepdims=True), 1.0)
    mean = tf.reduce_sum(values * valid, 1, keepdims=True) / count
    centred = (values - mean) * valid
    return mean, tf.sqrt(tf.reduce_sum(centred * centred, 1, keepdims=True) / count)


def standardized(values: tf.Tensor, excluded: tf.Tensor) -> tf.Tensor:
    """Each row minus its mean, over its standard deviation (0 where flat and where excluded), both over the
    entries not `excluded`: what item_item.standardized computes in numpy when the Trainer chooses the blend."""
    mean, std = moments(values, excluded)
    return tf.where(~excluded & (std > 1e-9), (values - mean) / tf.maximum(std, 1e-9), 0.0)


def candidate_scores(
    retrieved: tf.Tensor,
    item_scores: tf.Tensor,
    excluded: tf.Tensor,
    share: tf.Tensor,
    popularity: tf.Tensor | None = None,
    popularity_weight: tf.Tensor | float = 0.0,
) -> tf.Tensor:
    """The blend of the two standardized scores on the retrieval score's scale (what rating_weight is relative
    to): the item-item score is given the retrieval score's per-user mean and spread, share 0 leaves the
    retrieval score as it is; plus `popularity_weight` ([batch] or a scalar: the new-user prior, 0 for known
    users) × the standardized `popularity` ([movies]) on the same scale; -inf where `excluded`
    (item_item.candidate_scores in numpy)."""
    mean, std = moments(retrieved, excluded)
    item_item = mean + std * standardized(item_scores, excluded)
    blend = (1.0 - share) * retrieved + share * item_item
    if popularity is not None:
        popular = standardized(tf.broadcast_to(popularity[None, :], tf.shape(retrieved)), excluded)
        weight = tf.reshape(tf.cast(popularity_weight, tf.float32), [-1, 1])
        blend += weight * std * popular
    return tf.where(excluded, NEG_INF, blend)


def step_index(values: tf.Tensor, steps: tuple[int, ...]) -> tf.Tensor:
    """Each value's index in the sorted `steps` (steps[0] <= every value): the largest i with steps[i] <= value
    (which new-user popularity weight a request with that many ratings uses: cold_start.GIVEN)."""
    bounds = tf.constant(steps[1:], tf.int64)
    return tf.reduce_sum(tf.cast(tf.cast(values, tf.int64)[:, None] >= bounds[None, :], tf.int64), axis=1)


def mmr_order(relevance: tf.Tensor, similarity: tf.Tensor, diversity: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Maximal marginal relevance: [batch, k] indices into the n candidates, picked greedily by
    (1 - diversity) × relevance - diversity × (highest similarity to a movie already picked).

    relevance: [batch, n], -inf for candidates that must come last; normalised here to [0, 1] per row.
    similarity: [batch, n, n] in [0, 1]. diversity 0 gives the relevance order; k <= n.
    """
    valid = tf.math.is_finite(relevance)
    low = tf.reduce_min(tf.where(valid, relevance, np.inf), axis=1, keepdims=True)
    high = tf.reduce_max(tf.where(valid, relevance, -np.inf), axis=1, keepdims=True)
    scaled = tf.where(valid, (relevance - low) / tf.maximum(high - low, 1e-9), 0.0)
    batch, n = tf.shape(relevance)[0], tf.shape(relevance)[1]

    def step(i, picked, closest, taken):
        value = (1.0 - diversity) * scaled - diversity * closest
        # Invalid candidates rank below every valid one; taken ones are never picked again.
        value = tf.where(valid, value, value - 10.0)
        value = tf.where(taken, -np.inf, value)
        choice = tf.argmax(value, axis=1, output_type=tf.int32)
        picked = tf.concat([picked, choice[:, None]], axis=1)
        closest = tf.maximum(closest, tf.gather(similarity, choice, axis=1, batch_dims=1))
        taken = taken | tf.one_hot(choice, n, on_value=True, off_value=False)
        return i + 1, picked, closest, taken

    matrix = tf.TensorShape([None, None])
    _, picked, _, _ = tf.while_loop(
        lambda i, *_: i < k,
        step,
        (tf.constant(0), tf.zeros([batch, 0], tf.int32), tf.zeros([batch, n]), tf.zeros([batch, n], tf.bool)),
        shape_invariants=(tf.TensorShape([]), matrix, matrix, matrix),
    )
    return picked
