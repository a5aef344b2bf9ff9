"""The page at `/` in headless Chromium: upload a WAV and read the label it shows;
record from Chromium's fake microphone (fed a WAV file) and read that label too;
listen to that microphone as a stream and read the detections as they come.

Debian's chromium and chromium-driver (scripts/setup.sh); selenium is given
the driver's path, so nothing is downloaded.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_serve import PITCHES, Server, build_workdir, tone, wav_bytes
from test_serve_listen import tone_stream, write_firmware

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not (CHROMEDRIVER.is_file() and CHROMIUM.is_file()),
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)")


@pytest.fixture(scope="module")
def page_server(tmp_path_factory):
    work = build_workdir(tmp_path_factory.mktemp("page"))
    root = work["root"]
    srv = Server(root, "--model", str(root / "float.tflite"), "--spec", str(root / "data/features/spec.json"),
                 "--firmware", str(write_firmware(root / "generated")), workers=1)
    yield srv
    srv.stop()


def browser(tmp_path: Path, microphone_wav: Path | None = None):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking",
                 f"--user-data-dir={tmp_path / 'profile'}",
                 # Grant the microphone without a prompt and feed it from a file.
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    if microphone_wav is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={microphone_wav}")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


def result(driver) -> tuple[str, dict[str, float]]:
    """Wait until the page shows an answer or an error; return (label, probabilities)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    state = WebDriverWait(driver, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error")
        and d.find_element(By.TAG_NAME, "body").get_attribute("data-state"))
    error = driver.find_element(By.ID, "error").text
    assert state == "done", f"the page shows an error: {error!r}"
    rows = driver.find_elements(By.CSS_SELECTOR, "#probabilities tr")
    probabilities = {row.get_attribute("data-label"): float(row.find_elements(By.TAG_NAME, "td")[2].text)
                     for row in rows}
    return driver.find_element(By.ID, "label").text, probabilities


def open_page(driver, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"http://127.0.0.1:{server.port}/")
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert "4 labels" in driver.find_element(By.ID, "model").text


def test_upload_a_wav_shows_its_label(page_server, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser(tmp_path)
    try:
        open_page(driver, page_server)
        for label, rate, channels in (("yes", 44100, 2), ("_silence_", 16000, 1)):
            clip = tmp_path / f"{label}.wav"
            clip.write_bytes(wav_bytes(tone(rate, 1.0, PITCHES[label], 3, channels), rate))
            driver.find_element(By.ID, "file").send_keys(str(clip))
            shown, probabilities = result(driver)
            assert shown == label
            assert sorted(probabilities) == sorted(PITCHES)
            assert max(probabilities, key=probabilities.get) == label
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=0.01)
            driver.execute_script("document.body.dataset.state = ''")

        # A file the server refuses: the page says why instead of a label.
        junk = tmp_path / "junk.wav"
        junk.write_bytes(b"RIFF this is not a wav file")
        driver.find_element(By.ID, "file").send_keys(str(junk))
        with pytest.raises(AssertionError, match="not audio"):
            result(driver)
    finally:
        driver.quit()


def test_record_from_the_microphone_shows_its_label(page_server, tmp_path):
    from selenium.webdriver.common.by import By

    # Chromium loops this file as the microphone; a tone fills the whole recording.
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes(wav_bytes(tone(48000, 4.0, PITCHES["no"], 8, 2), 48000))
    driver = browser(tmp_path, microphone)
    try:
        open_page(driver, page_server)
        driver.find_element(By.ID, "record").click()
        shown, probabilities = result(driver)
        assert shown == "no", probabilities
        assert np.isclose(sum(probabilities.values()), 1.0, atol=0.01)
    finally:
        driver.quit()


def test_listen_to_the_microphone_shows_each_keyword_as_it_is_heard(page_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # Chromium loops this stream as the microphone: "yes", "no", "yes", 2 s apart, at 48 kHz stereo.
    stream = audio_resampled(tone_stream(), 16000, 48000)
    microphone = tmp_path / "stream.wav"
    microphone.write_bytes(wav_bytes(np.stack([stream, stream], axis=1), 48000))
    driver = browser(tmp_path, microphone)
    try:
        open_page(driver, page_server)
        driver.find_element(By.ID, "listen").click()

        def heard(d):
            labels = {item.get_attribute("data-label") for item in d.find_elements(By.CSS_SELECTOR, "#detections li")}
            return labels if {"yes", "no"} <= labels else False

        labels = WebDriverWait(driver, 60).until(heard)
        assert labels == {"yes", "no"}   # never _silence_ or _unknown_: the recognizer ignores them
        body = driver.find_element(By.TAG_NAME, "body")
        assert body.get_attribute("data-listening") == "on" and driver.find_element(By.ID, "error").text == ""
        first = driver.find_elements(By.CSS_SELECTOR, "#detections li")[-1].text.split()
        assert first[1] == "s" and first[2] in ("yes", "no") and 0.5 < float(first[3]) <= 1.0
        # The score view was drawn: the canvas is not blank.
        drawn = driver.execute_script(
            "const c = document.getElementById('scores');"
            "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v) => v !== 0);")
        assert drawn

        # Stop while a piece is on its way: its late answer must not turn listening back on.
        driver.execute_script(
            "window.inFlight = 0; const send = window.fetch;"
            "window.fetch = async (...args) => { window.inFlight++; try {"
            "  const r = await send(...args); await new Promise((ok) => setTimeout(ok, 1500)); return r;"
            "} finally { window.inFlight--; } };")
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.inFlight") > 0)
        shown = len(driver.find_elements(By.CSS_SELECTOR, "#detections li"))
        driver.find_element(By.ID, "listen").click()
        assert body.get_attribute("data-listening") == "off"
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("return window.inFlight") == 0)
        time.sleep(1.0)   # the answer's own handlers run after the fetch settles
        assert body.get_attribute("data-listening") == "off"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#detections li")) == shown
        assert driver.find_element(By.ID, "listen").text == "Listen" and driver.find_element(By.ID, "error").text == ""
    finally:
        driver.quit()


def audio_resampled(pcm: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    from keyspot import audio

    return audio.to_int16(audio.resample(pcm.astype(np.float32) / 32768, rate, to_rate))
