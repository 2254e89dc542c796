"""Traffic from a split: each rating of ExampleGen's examples becomes a `predict` request scored by the pushed
model (its raw serving features, the prediction), with the true rating kept aside as the "later" rating.

benchmarks/monitor_replay.py replays MovieLens' test period month by month this way; the tests make undrifted
and drifted traffic from it.
"""

from __future__ import annotations

import os

import numpy as np

from transform import features as f


def read_examples(examples_uri: str, split: str) -> list[dict]:
    """Every example of `split` as {feature: scalar or list} (strings decoded), in file order."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
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

    feature = {}
    for name, value in row.items():
        values = value if isinstance(value, list) else [value]
        if name in f.STRING_FEATURES or name in f.MULTI_STRING_FEATURES:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in values]))
        elif name in f.INT_FEATURES:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


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
    """`predict` log records (pipeline/monitoring/requests.py) of scored rows, timed at each rating's timestamp."""
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
