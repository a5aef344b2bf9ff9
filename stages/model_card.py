"""model-card stage: the reports, the int8 model and the generated firmware
-> reports/model_card.md and reports/summary.json (the headline DVC
metrics); the card goes to MLflow, as an artifact of the model's run and as
its registered version's description, with fetch's data report beside it."""

from pathlib import Path

from keyspot import model_card, params, stage, tracking


def run():
    p = params.load()
    int8 = Path("models/model_int8.tflite")
    card, headline = model_card.run(p, Path("reports"), Path(p.export.out_dir), int8,
                                    Path("reports/model_card.md"), Path("reports/summary.json"),
                                    tracking.registered_model_name(p))
    version = tracking.log_model_card(p, int8, Path("reports/model_card.md"), Path("reports/summary.json"),
                                      Path("reports/data.json"), Path("reports/data"))
    print("model-card: wrote reports/model_card.md and reports/summary.json"
          + (f"; {tracking.registered_model_name(p)} version {version} carries the card" if version else ""))


if __name__ == "__main__":
    stage.main("model-card", run)
