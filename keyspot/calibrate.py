"""The calibrate stage: the recognizer's parameters from the validation stream.

The int8 model runs once over data/streams/val.flac; every parameter set of
`calibrate` (keyspot.schema.Calibrate) is tried on its scores, and the one
with the fewest false rejects at no more than the target false accepts per
hour is written to reports/calibration.json, which c-export puts in the
firmware. Only the validation stream is used: the test streams, and the
unseen engine's above all, stay unseen by every choice.
"""

from __future__ import annotations

from pathlib import Path

from keyspot import artifacts, streaming
from keyspot.calibration import FIELDS, CalibrationError
from keyspot.recognizer import from_settings

SPLIT = "val"


def run(params, model_path: Path, spec_path: Path, streams_dir: Path, out_path: Path, table_path: Path) -> dict:
    from keyspot.features import FeatureSpec
    from keyspot.listen import load_model

    c = params.calibrate
    spec = FeatureSpec.load(spec_path)
    base = from_settings(params.export.recognizer, spec.labels)
    result = {"enabled": c.enabled, "target_false_accepts_per_hour": c.target_false_accepts_per_hour}
    rows = []
    if c.enabled:
        streams = streaming.score_streams(spec, load_model(model_path, spec), base, streams_dir, [SPLIT])
        if not streams:
            raise CalibrationError(f"{streams_dir}/{SPLIT}.flac: missing; run `dvc repro streams`")
        choice, rows = streaming.calibrate(
            streams, spec.labels, base, c.target_false_accepts_per_hour, c.average_window_ms, c.minimum_count,
            c.suppression_ms, range(0, 256, c.threshold_step))
        chosen = choice.params
        result.update({"met": choice.meets_target, "tried": len(rows),
                       "val": {"minutes": round(streams[0].seconds / 60, 2),
                               "false_reject_rate": choice.false_reject_rate,
                               "false_accepts_per_hour": choice.false_accepts_per_hour}})
    else:
        chosen = base
    result["recognizer"] = {k: getattr(chosen, k) for k in FIELDS}
    artifacts.write_json(out_path, result)
    artifacts.write_text(table_path, streaming.csv_text(rows))
    return result

