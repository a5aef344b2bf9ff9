"""Saved models are byte-identical whatever the process's memory layout."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

SAVE = """
import sys
from pathlib import Path
from keyspot import keras_files, models
from keyspot.models.ds_cnn import DsCnn
from keyspot.train import make_deterministic

make_deterministic(7)
ballast = [object() for _ in range(int(sys.argv[2]))]  # shifts every later address
p = DsCnn(filters=8, blocks=2, dropout=0.1)
model = models.build(p, (49, 10), 5)
out = Path(sys.argv[1])
keras_files.save_keras(model, out / "model.keras")
keras_files.export_saved_model(model, out / "saved_model")
"""


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_model_same_bytes_across_processes(tmp_path):
    for name, ballast in (("a", "1"), ("b", "54321")):
        subprocess.run([sys.executable, "-c", SAVE, str(tmp_path / name), ballast], check=True,
                       capture_output=True)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert set(first) >= {"model.keras", "saved_model/saved_model.pb", "saved_model/variables/variables.index"}
    assert first == second


def test_rewritten_keras_file_loads_and_predicts_the_same(tmp_path):
    import keras

    from keyspot import keras_files, models
    from keyspot.models.tiny_conv import TinyConv

    p = TinyConv(filters=4, dropout=0.1)
    model = models.build(p, (49, 10), 3)
    keras_files.save_keras(model, tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((2, 49, 10, 1)).astype(np.float32)
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"
