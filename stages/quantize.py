"""quantize stage: models/saved_model -> models/model_int8.tflite, reports/quantize.json."""

from pathlib import Path

from keyspot import params, quantize, stage


def run():
    report = quantize.run(params.load(), Path("models/model.keras"), Path("models/saved_model"),
                          Path("data/features"), Path("models/model_int8.tflite"),
                          Path("reports/quantize.json"))
    print(f"quantize: int8 accuracy {report['int8_accuracy_tflm']:.4f} (TFLM), "
          f"float {report['float_accuracy']:.4f}; {report['model_bytes']} bytes, "
          f"arena {report['tflm_arena_bytes']} bytes")


if __name__ == "__main__":
    stage.main("quantize", run)
