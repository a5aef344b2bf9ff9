"""This checkout's trained model on quiet: no keyword from an empty room.

Runs where the pipeline's outputs are present (`make run`, or `dvc pull`):
every kind of quiet a microphone hears (keyspot.data.quiet), rendered with
the evaluate stage's seed, through the float and the int8 model.
"""

from pathlib import Path

import numpy as np
import pytest

from keyspot import features
from keyspot.evaluate import quiet_clips
from keyspot.features import FeatureSpec
from keyspot.labels import SILENCE, UNKNOWN

REPO = Path(__file__).resolve().parents[1]
REAL = [REPO / p for p in ("models/model.keras", "models/model_int8.tflite", "data/features/spec.json")]


@pytest.mark.skipif(not all(p.is_file() for p in REAL),
                    reason="needs this checkout's pipeline outputs (`make run`): " + ", ".join(
                        str(p.relative_to(REPO)) for p in REAL if not p.is_file()))
def test_no_kind_of_quiet_is_labelled_a_keyword(smoke_params):
    import keras

    from keyspot.tflite_runner import TFLiteRunner

    spec = FeatureSpec.load(REAL[2])
    pcm, kinds = quiet_clips(spec, smoke_params.seed)
    x = features.compute(pcm, spec)[..., None]
    floats = keras.models.load_model(REAL[0]).predict(x, verbose=0).argmax(1)
    int8 = TFLiteRunner.reference(REAL[1].read_bytes()).outputs(x).argmax(1)
    keyword = np.array([label not in (SILENCE, UNKNOWN) for label in spec.labels])
    for name, predicted in (("float", floats), ("int8", int8)):
        fired = sorted({f"{kind} -> {spec.labels[p]}" for kind, p in zip(kinds, predicted, strict=True)
                        if keyword[p]})
        assert not fired, f"{name}: {fired}"
