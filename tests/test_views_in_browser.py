"""What a user sees of the smoke pipeline's results, in headless Chromium:
MLflow's run page and registered model version (on the real `mlflow server`
the pipeline logged to), and `dvc plots show` with the network unreachable.

Debian's chromium and chromium-driver (scripts/setup.sh), as in
test_web_page.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from scratch_repo import run as _run
from test_web_page import CHROMEDRIVER, CHROMIUM, browser

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMEDRIVER.is_file() and CHROMIUM.is_file()),
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)")]

MODEL = "keyspot-synthetic-ds_cnn_s"
# The README's link to an experiment: MLflow 3 opens its GenAI view unless asked for training.
TRAINING_VIEW = "workflowType=machine_learning"


def page_text(driver, url: str, *expected: str, timeout: float = 60.0) -> str:
    """Open url and wait until the page's text holds every expected string."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    deadline = time.monotonic() + timeout
    while True:
        text = driver.find_element(By.TAG_NAME, "body").text
        if all(e in text for e in expected) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    driver = browser(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def logged(pipeline):
    """The client, and the registered version the smoke model's export made the candidate."""
    import mlflow

    uri = pipeline["env"]["MLFLOW_TRACKING_URI"]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    return uri, client, client.get_model_version_by_alias(MODEL, "candidate")


def test_the_experiment_opens_on_its_training_runs(chromium, logged):
    uri, client, version = logged
    run = client.get_run(version.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    text = page_text(chromium, f"{uri}/#/experiments/{experiment.experiment_id}?{TRAINING_VIEW}",
                     run.info.run_name, "Run Name")
    assert run.info.run_name in text and "No data available for the selected time range" not in text, text


def test_the_run_page_shows_name_metrics_params_and_model(chromium, logged):
    uri, client, version = logged
    run = client.get_run(version.run_id)
    # The DVC experiment's name (the candidate may come from another test's
    # `dvc exp run`), else model and dataset: never a random name of MLflow's.
    name = run.data.tags.get("dvc.exp_name", "ds_cnn_s-synthetic")
    assert run.info.run_name == name
    assert "" not in run.data.params.values() and "tracking.experiment" not in run.data.params
    epochs = int(run.data.params["train.epochs"])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "learning_rate")] == list(range(1, epochs + 1))
    assert run.data.metrics["data_clips_total"] > 0   # the data report
    text = page_text(chromium, f"{uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?{TRAINING_VIEW}",
                     name, "test_accuracy", "learning_rate", "train.epochs", "Model card")
    for expected in (name, "test_accuracy", "learning_rate", "train.epochs", "Model card"):
        assert expected in text, f"{expected!r} is not on the run page:\n{text[:3000]}"


def test_the_model_version_has_its_signature_and_the_model_card(chromium, logged):
    uri, client, version = logged
    assert version.description.startswith(f"# Model card: {MODEL}")
    # The version is the run's LoggedModel, with the int8 model and the feature spec beside the Keras one.
    assert version.source.startswith("models:/m-"), version.source
    logged_model = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged_model.source_run_id == version.run_id
    assert {"model.keras", "model_int8.tflite", "spec.json"} <= {
        Path(a.path).name for a in client.list_logged_model_artifacts(logged_model.model_id, "artifacts")}
    text = page_text(chromium, f"{uri}/#/models/{MODEL}/versions/{version.version}",
                     "Inputs (1)", "Outputs (1)", f"Model card: {MODEL}")
    for expected in ("Inputs (1)", "Outputs (1)", f"Model card: {MODEL}", "Known weaknesses"):
        assert expected in text, f"{expected!r} is not on the model version page:\n{text[:3000]}"


def test_dvc_plots_show_draws_every_chart_offline(pipeline, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    root, env = pipeline["root"], pipeline["env"]
    out = tmp_path / "plots"
    _run(["dvc", "plots", "show", "-o", str(out)], root, env)
    html = (out / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in html and "<script src=" not in html
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 # No name resolves: a page that needs the network draws nothing.
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        charts = html.count("vegaEmbed('#")   # one call per Vega chart
        assert charts >= 6, "fewer Vega charts than dvc.yaml declares"
        driver.get((out / "index.html").as_uri())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            drawn = driver.execute_script("return window.keyspotCharts || null")
            if drawn is not None and len(drawn) == charts:
                break
            time.sleep(0.5)
        assert drawn is not None, "vegaEmbed is not defined: the libraries did not load"
        assert len(drawn) == charts and all(c["ok"] for c in drawn), drawn
        svgs = driver.find_elements(By.CSS_SELECTOR, "div[id] svg.marks")
        assert len(svgs) == charts
        # The confusion matrix: actual down, predicted across, every count written in its cell.
        confusion = next(s for s in svgs if "Confusion matrix" in s.get_attribute("textContent"))
        text = confusion.get_attribute("textContent")
        assert "actual" in text and "predicted" in text
        counts = [int(t.text) for t in confusion.find_elements(By.CSS_SELECTOR, "g.mark-text.role-mark text")
                  if t.text.isdigit()]
        test_clips = sum(1 for _ in open(root / "reports/eval/predictions.csv")) - 1
        assert sum(counts) == test_clips
    finally:
        driver.quit()
