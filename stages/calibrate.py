"""calibrate stage: models/model_int8.tflite + data/streams/val.flac
-> reports/calibration.json (the recognizer's parameters, for c-export)."""

from pathlib import Path

from keyspot import calibrate, params, stage


def run():
    p = params.load()
    result = calibrate.run(p, Path("models/model_int8.tflite"), Path("data/features/spec.json"),
                           Path("data/streams"), Path("reports/calibration.json"),
                           Path("reports/calibration/tried.csv"))
    r = result["recognizer"]
    chosen = (f"window {r['average_window_ms']} ms, threshold {r['detection_threshold']}/255, "
              f"minimum count {r['minimum_count']}, suppression {r['suppression_ms']} ms")
    if not result["enabled"]:
        print(f"calibrate: disabled; export.recognizer as it is: {chosen}")
        return
    val = result["val"]
    print(f"calibrate: {chosen}: on the {val['minutes']:.0f}-minute validation stream "
          f"{val['false_reject_rate']:.1%} false rejects, {val['false_accepts_per_hour']:.1f} false accepts "
          f"per hour (target {result['target_false_accepts_per_hour']:g}"
          f"{'' if result['met'] else ', not met by any of the ' + str(result['tried']) + ' sets tried'})")


if __name__ == "__main__":
    stage.main("calibrate", run)
