"""Traffic from a split: each rating of ExampleGen's examples becomes a `predict` request scored by the pushed
model (its raw serving features, the prediction), with the true rating kept aside as the "later" rating.

benchmarks/monitor_replay.py replays MovieLens' test period month by month this way; the tests make undrifted
and drifted traffic from it.
"""

from __future__ import annotations

import numpy as np

from transform import features as f


def read_examples(examples_uri: str, split: str) -> list[dict]:
    """Every example of `split` as {feature: scalar or list} (strings decoded), in file order."""
    import tensorflow as tf

    from recommender.inspection import split_examples

    rows = []
    for record in split_examples(examples_uri, split):
        example = tf.train.Example.FromString(record.numpy())
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value)
            if kind == "bytes_list":
                values = [v.decode("utf-8") for v in values]
            row[name] = values if name in (*f.MULTI_STRING_FEATURES, *f.MULTI_FLOAT_FEATURES) else values[0]
        rows.append(row)
    return rows


def _example(row: dict) -> bytes:
    import tensorflow as tf

    from components.example_gen.history import set_feature

    example = tf.train.Example()
    for name, value in row.items():
        set_feature(example.features.feature, name, value)
    return example.SerializeToString()


def predict(model_path: str, rows: list[dict], batch: int = 1024) -> np.ndarray:
    """The pushed model's `serving_default` predictions for raw feature rows (labels ignored)."""
    import tensorflow as tf

    serve = tf.saved_model.load(model_path).signatures[f.SERVING_SIGNATURE]
    out = []
    for start in range(0, len(rows), batch):
        serialized = [_example({k: v for k, v in r.items() if k != f.LABEL_KEY}) for r in rows[start : start + batch]]
        out.append(serve(examples=tf.constant(serialized))[f.PREDICTION_KEY].numpy().reshape(-1))
    return np.concatenate(out) if out else np.zeros(0)


def records(rows: list[dict], predictions, model_version: str) -> list[dict]:
    """`predict` log records (recommender/monitoring/requests.py) of scored rows, timed at each rating's timestamp."""
    return [
        {
            "kind": "predict",
            "time": int(row[f.TIMESTAMP]),
            "model_version": model_version,
            "features": {k: v for k, v in row.items() if k != f.LABEL_KEY},
            "predicted_rating": float(p),
        }
        for row, p in zip(rows, predictions, strict=True)
    ]


def true_ratings(rows: list[dict]) -> dict[tuple[str, str], float]:
    """(user, movie) → the rating given: what arrives later in production."""
    return {(str(r[f.USER_ID]), str(r[f.MOVIE_ID])): float(r[f.LABEL_KEY]) for r in rows}
