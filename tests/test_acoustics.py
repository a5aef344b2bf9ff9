"""Rooms, microphones and quiet: the synthetic dataset's acoustic realism."""

import dataclasses

import numpy as np
import pytest

from keyspot.data import acoustics, quiet, synthetic
from keyspot.data.manifest import HELD_OUT_ENGINE
from keyspot.data.source import seeded_rng

RATE = 16000


def _dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-30)


@pytest.mark.parametrize("kind", quiet.KINDS)
def test_every_kind_of_quiet_stays_quiet(kind):
    clips = [quiet.render(kind, seeded_rng(1, kind, i), RATE, RATE, (-75.0, -25.0)) for i in range(20)]
    for x in clips:
        assert x.shape == (RATE,) and np.isfinite(x).all()
        assert np.abs(x).max() < 1.0
    levels = [_dbfs(x) for x in clips]
    if kind == "zero":
        assert all(not x.any() for x in clips)
    elif kind in ("floor", "clicks"):
        assert max(levels) < -20.0
    else:
        assert -80.0 < min(levels) and max(levels) < -20.0
    assert len({x.tobytes() for x in clips}) == (1 if kind == "zero" else 20)


def test_hum_is_at_the_mains_frequency():
    x = quiet.render("hum", seeded_rng(3, "hum"), RATE, RATE, (-40.0, -40.0))
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum[:1000]) in (50, 60, 100, 120, 150, 180)


def test_slope_noise_tilts_its_spectrum():
    def low_to_high(exponent):
        spectrum = np.abs(np.fft.rfft(quiet.slope_noise(np.random.default_rng(0), RATE, exponent))) ** 2
        return spectrum[20:500].mean() / spectrum[4000:7900].mean()
    assert low_to_high(-1.0) < 1.0 < low_to_high(2.0)


def test_a_room_reverberates_for_about_its_rt60():
    settings = acoustics.Rooms(rt60_s_range=(0.6, 0.6), size_m_range=(6.0, 6.0), distance_m_range=(2.0, 2.0))
    room = acoustics.simulate_room(np.random.default_rng(0), settings, RATE)
    assert room.rt60_s == 0.6 and np.abs(room.rir).max() == 1.0
    energy = np.cumsum(room.rir[::-1] ** 2)[::-1]   # Schroeder's backward integral
    decay_db = 10 * np.log10(energy / energy[0])
    t20 = (np.argmax(decay_db < -25) - np.argmax(decay_db < -5)) / RATE * 3   # T20, extrapolated to 60 dB
    assert 0.4 < t20 < 0.8
    word = np.zeros(RATE)
    word[1000:1400] = np.sin(np.arange(400) / 3.0)
    wet = acoustics.reverberate(word, room)
    assert np.abs(wet).max() == pytest.approx(np.abs(word).max())
    assert np.abs(wet[3000:]).max() > 0.01          # the tail rings on after the word


def test_a_microphone_band_limits_and_clips():
    response = acoustics.Response(highpass_hz=300.0, lowpass_hz=3400.0, mems=False, drive_db=12.0)
    t = np.arange(RATE) / RATE
    for freq, kept in ((50.0, False), (1000.0, True), (6000.0, False)):
        y = acoustics.apply_response(0.1 * np.sin(2 * np.pi * freq * t), dataclasses.replace(response, drive_db=None),
                                     RATE)
        assert (np.abs(y[4000:]).max() > 0.05) == kept, freq
    clipped = acoustics.apply_response(0.5 * np.sin(2 * np.pi * 1000.0 * t), response, RATE)
    top = np.abs(clipped).max()
    assert 0.45 < top < 0.6                            # the level stays where it was
    assert np.mean(np.abs(clipped[4000:]) > 0.99 * top) > 0.3   # the tops are cut off


def test_the_held_out_engine_is_its_own_split(smoke_params):
    dataset = dataclasses.replace(smoke_params.dataset, pico_voices=("en-US", "en-GB"), held_out_engine="pico",
                                  held_out_takes_per_keyword=3)
    clips = synthetic.plan(dataset, smoke_params.seed)
    pico = [c for c in clips if c.voice.startswith("pico:")]
    assert {c.split for c in pico} == {HELD_OUT_ENGINE}
    assert not [c for c in clips if c.split == HELD_OUT_ENGINE and not c.voice.startswith("pico:")]
    assert len([c for c in pico if c.label == "yes"]) == 2 * 3
    assert {c.split for c in clips if not c.voice.startswith("pico:")} == {"train", "val", "test"}
    everyone = synthetic.plan(dataclasses.replace(dataset, held_out_engine=""), smoke_params.seed)
    assert HELD_OUT_ENGINE not in {c.split for c in everyone}
