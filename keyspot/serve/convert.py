"""SavedModel -> float TensorFlow Lite, for the local server.

Run as `python -m keyspot.serve.convert SAVED_MODEL OUT.tflite` by
`keyspot serve`, in a process of its own, so that TensorFlow (seconds to
import, hundreds of MB) never enters the server's processes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from keyspot import artifacts


def float_tflite(saved_model: Path) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    return converter.convert()


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved_model, out = map(Path, argv)
    if not (saved_model / "saved_model.pb").is_file():
        print(f"{saved_model}: no saved_model.pb; run `dvc repro train` (or `dvc pull`)", file=sys.stderr)
        return 2
    artifacts.write_bytes(out, float_tflite(saved_model))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
