"""Latency of `serving_default` of pushed models, side by side (e.g. one ranking model vs an ensemble).

    python benchmarks/serving_latency.py --examples artifacts/benchmark/ours/time/pipeline/ExampleGen/examples/1 \
        --models single=SERVING_DIR/movielens_ranker/V1 ensemble3=SERVING_DIR2/movielens_ranker/V2 [--repeats 200]

Each model is loaded in this process and called on the first test examples of the ExampleGen output, in
batches of 1 and 100 (warmed up first); the table gives the median and 90th percentile milliseconds a call.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from transform import features as f  # noqa: E402

BATCHES = (1, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=Path, required=True, help="an ExampleGen output (its Split-test)")
    parser.add_argument("--models", nargs="+", required=True, help="NAME=SAVED_MODEL_DIR ...")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    files = glob.glob(str(args.examples / "Split-test" / "*"))
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP").take(max(BATCHES))]
    print(f"{'model':<12}" + "".join(f"  batch {b}: median / p90 ms" for b in BATCHES))
    for spec in args.models:
        name, path = spec.split("=", 1)
        serve = tf.saved_model.load(path).signatures[f.SERVING_SIGNATURE]
        cells = []
        for batch in BATCHES:
            examples = tf.constant(records[:batch])
            for _ in range(10):
                serve(examples=examples)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                serve(examples=examples)
                times.append((time.perf_counter() - start) * 1000)
            cells.append(f"{np.median(times):14.2f} / {np.percentile(times, 90):6.2f}")
        print(f"{name:<12}" + "".join(f"  {cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
