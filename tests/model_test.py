"""The TFRS ranking model: a training step lowers the loss; OOV ids are scored."""

import dataclasses

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from components.trainer.model import (
    EnsembleModel,
    Hyperparameters,
    Vocabularies,
    _asymmetric,
    build_model,
    unread_lists,
)
from components.trainer.task import best_epoch, hyperparameters, hyperparameters_from_values, refit_ranker, train_ranker
from components.tuner.tuner import OBJECTIVE, DefaultsFirstOracle, search_space
from pipeline.config import TrainerConfig
from transform import features as f

VOCAB = Vocabularies(sizes={name: 10 for name in f.VOCAB_FEATURES}, genres=5, label_mean=3.5)
HP = Hyperparameters(learning_rate=0.05, embedding_dim=8, layer_sizes=(16,), l2=0.0)


def batch(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = {name: rng.integers(0, 11, n) for name in f.VOCAB_FEATURES}  # 10 = the OOV bucket
    features[f.MOVIE_GENRES_XF] = np.where(
        rng.random((n, f.MAX_GENRES)) < 0.4, rng.integers(0, 6, (n, f.MAX_GENRES)), -1
    )
    for name in f.DENSE_FLOAT_FEATURES:
        features[name] = rng.normal(size=n).astype("float32")
    for ids, deviations, length in (
        (f.USER_PRIOR_MOVIES_XF, f.USER_PRIOR_DEVIATIONS_XF, f.MAX_PRIOR_MOVIES),
        (f.MOVIE_PRIOR_RATERS_XF, f.MOVIE_PRIOR_DEVIATIONS_XF, f.MAX_PRIOR_RATERS),
    ):
        padding = np.arange(length)[None, :] >= rng.integers(0, length + 1, n)[:, None]
        features[ids] = np.where(padding, -1, rng.integers(0, 11, (n, length)))
        features[deviations] = np.where(padding, 0, rng.normal(size=(n, length))).astype("float32")
    # A learnable target: depends on the movie id.
    labels = (1 + features[f.MOVIE_ID_XF] % 5).astype("float32")
    return {k: tf.constant(v) for k, v in features.items()}, tf.constant(labels)


def test_one_training_step_lowers_the_loss():
    tf.keras.utils.set_random_seed(0)
    model = build_model(HP, VOCAB)
    features, labels = batch()
    before = float(model.compute_loss((features, labels)))
    model.train_on_batch(features, labels)
    after = float(model.compute_loss((features, labels)))
    assert after < before


def test_the_reported_loss_is_the_epochs_mean_squared_error_like_its_rmse():
    """Keras reports whatever train_step returns at the epoch's end: the model must return epoch means,
    so loss (MSE) equals RMSE² over the same examples, on an epoch whose last batch is smaller."""
    tf.keras.utils.set_random_seed(0)
    model = build_model(dataclasses.replace(HP, l2=1e-3), VOCAB)
    features, labels = batch(100)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(32)  # 32, 32, 32, 4
    history = model.fit(data, validation_data=data, epochs=2, verbose=0).history
    for prefix in ("", "val_"):
        losses, rmses = np.array(history[prefix + "loss"]), np.array(history[prefix + "root_mean_squared_error"])
        np.testing.assert_allclose(losses, rmses**2, rtol=1e-4)
        regularization = np.array(history[prefix + "regularization_loss"])
        assert (regularization > 0).all()
        np.testing.assert_allclose(history[prefix + "total_loss"], losses + regularization, rtol=1e-4)


def test_predictions_start_at_the_label_mean_and_handle_oov():
    tf.keras.utils.set_random_seed(0)
    model = build_model(HP, VOCAB)
    features, _ = batch()
    predictions = model(features).numpy()
    assert predictions.shape == (64, 1)
    assert np.isfinite(predictions).all()
    # The label mean is the output's starting point: the same initial weights with another label mean shift every
    # prediction by exactly the difference (a model that ignored it, or added it twice, would not).
    tf.keras.utils.set_random_seed(0)
    shifted = build_model(HP, dataclasses.replace(VOCAB, label_mean=VOCAB.label_mean - 1.3))(features).numpy()
    np.testing.assert_allclose(predictions - shifted, 1.3, atol=1e-5)


def test_ids_matter_only_with_id_embeddings():
    """Without history factors (the movie id also indexes those: see the next test)."""
    features, _ = batch()
    other_ids = {**features, f.USER_ID_XF: features[f.USER_ID_XF][::-1], f.MOVIE_ID_XF: features[f.MOVIE_ID_XF][::-1]}
    for id_embeddings in (False, True):
        tf.keras.utils.set_random_seed(0)
        model = build_model(dataclasses.replace(HP, id_embeddings=id_embeddings, history_factors=0), VOCAB)
        model.fit(features, batch()[1], epochs=2, verbose=0)
        same = np.allclose(model(features).numpy(), model(other_ids).numpy())
        assert same is (not id_embeddings)


def test_earlier_movies_matter_only_with_history_factors():
    features, labels = batch()
    other = {**features, f.USER_PRIOR_MOVIES_XF: features[f.USER_PRIOR_MOVIES_XF][::-1]}
    no_history = {**features, f.USER_PRIOR_MOVIES_XF: -tf.ones_like(features[f.USER_PRIOR_MOVIES_XF])}
    for factors in (0, 8):
        tf.keras.utils.set_random_seed(0)
        model = build_model(dataclasses.replace(HP, history_factors=factors), VOCAB)
        model.fit(features, labels, epochs=2, verbose=0)
        assert np.allclose(model(features).numpy(), model(other).numpy()) is (factors == 0)
    # Padding (-1) contributes nothing, whatever its deviation: an empty history adds exactly 0.
    empty = _asymmetric(
        no_history[f.USER_PRIOR_MOVIES_XF], features[f.USER_PRIOR_DEVIATIONS_XF], model._prior_factors,
        model._prior_rating_factors,
    )  # fmt: skip
    assert not empty.numpy().any()


def test_earlier_raters_matter_only_with_id_embeddings_and_history_factors():
    features, labels = batch()
    other = {**features, f.MOVIE_PRIOR_RATERS_XF: features[f.MOVIE_PRIOR_RATERS_XF][::-1]}
    for id_embeddings, factors in ((False, 8), (True, 0), (True, 8)):
        tf.keras.utils.set_random_seed(0)
        model = build_model(dataclasses.replace(HP, id_embeddings=id_embeddings, history_factors=factors), VOCAB)
        model.fit(features, labels, epochs=2, verbose=0)
        used = f.MOVIE_PRIOR_RATERS_XF in model.ranker_inputs
        assert used is (id_embeddings and factors > 0)
        assert np.allclose(model(features).numpy(), model(other).numpy()) is not used


@pytest.mark.parametrize("id_embeddings", [False, True])
@pytest.mark.parametrize("factors", [0, 4])
def test_the_lists_left_out_of_the_trainers_cache_are_the_ones_the_model_never_reads(id_embeddings, factors):
    hp = dataclasses.replace(HP, id_embeddings=id_embeddings, history_factors=factors)
    features, labels = batch()
    unread = unread_lists(hp)
    tf.keras.utils.set_random_seed(0)
    model = build_model(hp, VOCAB)
    kept = {name: value for name, value in features.items() if name not in unread}
    model.fit(kept, labels, epochs=1, verbose=0)  # trains without them
    assert not set(unread) & set(model.ranker_inputs)
    lists = {f.USER_PRIOR_MOVIES_XF, f.USER_PRIOR_DEVIATIONS_XF, f.MOVIE_PRIOR_RATERS_XF, f.MOVIE_PRIOR_DEVIATIONS_XF}
    assert lists == set(unread) | (lists & set(model.ranker_inputs))
    np.testing.assert_allclose(model(kept).numpy(), model(features).numpy())


def test_a_cross_layer_changes_the_model_and_trains():
    features, labels = batch()
    tf.keras.utils.set_random_seed(0)
    plain = build_model(HP, VOCAB)
    tf.keras.utils.set_random_seed(0)
    crossed = build_model(dataclasses.replace(HP, cross_layers=1), VOCAB)
    plain(features)
    before = float(crossed.compute_loss((features, labels)))  # builds it
    assert len(crossed.trainable_variables) == len(plain.trainable_variables) + 2  # the cross layer's W and b
    assert not np.allclose(crossed(features).numpy(), plain(features).numpy())
    crossed.fit(features, labels, epochs=3, verbose=0)
    assert float(crossed.compute_loss((features, labels))) < before


def test_an_ensemble_predicts_its_members_mean():
    features, _ = batch()
    members = []
    for seed in (0, 1):
        tf.keras.utils.set_random_seed(seed)
        members.append(build_model(HP, VOCAB))
    ensemble = EnsembleModel(members)
    expected = (members[0](features).numpy() + members[1](features).numpy()) / 2
    np.testing.assert_allclose(ensemble(features).numpy(), expected, rtol=1e-6)
    assert ensemble.ranker_inputs == members[0].ranker_inputs


def test_the_refit_model_trains_for_the_best_epoch_on_train_and_eval_and_so_knows_what_only_eval_shows():
    """run_fn's refit: early stopping on eval picks the epoch; a fresh model then trains that long on both splits
    (shuffled together). Here eval's ratings are two stars above train's: only a model that saw eval knows."""
    train_features, train_labels = batch(512, seed=1)
    val_features, val_labels = batch(512, seed=2)
    val_labels += 2.0
    config = TrainerConfig(epochs=4, batch_size=64, early_stopping_patience=1)
    train = tf.data.Dataset.from_tensor_slices((train_features, train_labels)).shuffle(512, seed=0).batch(64)
    val = tf.data.Dataset.from_tensor_slices((val_features, val_labels)).batch(64)
    both = train.unbatch().concatenate(val.unbatch()).shuffle(1024, seed=0).batch(64)
    stopped, history = train_ranker(config, HP, VOCAB, train, val, seed=7)
    epochs = best_epoch(history)
    assert history["val_root_mean_squared_error"][epochs - 1] == min(history["val_root_mean_squared_error"])
    refit, refit_history = refit_ranker(HP, VOCAB, both, seed=7, epochs=epochs)
    assert len(refit_history["loss"]) == epochs and "val_loss" not in refit_history
    errors = {name: model(val_features).numpy().reshape(-1) - val_labels.numpy()
              for name, model in (("stopped", stopped), ("refit", refit))}  # fmt: skip
    assert errors["stopped"].mean() < -1.2 and errors["refit"].mean() > errors["stopped"].mean() + 0.3
    assert np.sqrt(np.mean(errors["refit"] ** 2)) < np.sqrt(np.mean(errors["stopped"] ** 2)) - 0.2


def test_hyperparameters_default_and_tuned():
    config = TrainerConfig(learning_rate=0.02, embedding_dim=16, layer_sizes=(64, 32), l2=1e-5)
    assert hyperparameters(config, None) == Hyperparameters(0.02, 16, (64, 32), 1e-5, False)
    values = {"learning_rate": 0.003, "embedding_dim": 32, "layer_sizes": "128-64", "l2": 0.0, "id_embeddings": True}
    tuned = hyperparameters_from_values(values, hyperparameters(config, None))
    assert tuned == Hyperparameters(0.003, 32, (128, 64), 0.0, True)


@pytest.mark.parametrize("field", ["epochs", "batch_size", "ensemble_size"])
def test_trainer_config_rejects_nonsense(field):
    with pytest.raises(ValueError):
        TrainerConfig(**{field: 0})


def test_the_tuners_first_trials_are_the_defaults_without_and_with_ids_and_the_next_ones_are_drawn(tmp_path):
    config = TrainerConfig(learning_rate=0.002, embedding_dim=8, layer_sizes=(32,), l2=1e-6, history_factors=8)
    defaults = hyperparameters(config, None)
    tuner = keras_tuner.Tuner(
        oracle=DefaultsFirstOracle(objective=OBJECTIVE, max_trials=4, seed=0),
        hypermodel=lambda hp: build_model(search_space(hp, defaults), VOCAB),
        directory=str(tmp_path),
        project_name="t",
    )
    features, labels = batch()
    tuner.search(features, labels, validation_data=(features, labels), epochs=1, verbose=0)
    trials = sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id)
    assert len(trials) == 4
    values = [hyperparameters_from_values(t.hyperparameters.values, defaults) for t in trials]
    assert values[0] == defaults and defaults.id_embeddings is False
    assert values[1] == dataclasses.replace(defaults, id_embeddings=True)  # the per-protocol choice, measured
    assert all(v not in (values[0], values[1]) for v in values[2:])
    assert all(3e-4 <= v.learning_rate <= 3e-3 for v in values)
