"""Rooms and microphones: what happens to a word between a mouth and the ADC.

- Rooms: impulse responses of simulated rectangular rooms, the early
  reflections by pyroomacoustics' image-source model and the late
  reverberation as noise decaying at the room's RT60 (the image-source
  model alone would need thousands of images per response for a reverberant
  room). Drawn sizes, reverberation times and source-microphone distances.
- Microphones and channels: band limits (a high-pass for small capsules and
  DC-blocking filters, a low-pass for telephone-like channels and PDM
  decimation filters), the low-frequency roll-off and presence rise of a
  MEMS capsule, gain, and clipping when the gain drives it past full scale.

Every draw comes from the generator it is given; the filters are fixed
formulas, so a clip's bytes depend on its draws alone. Impulse responses
are rounded to a 2^-24 grid: a last-bit difference in a library's sin or exp
on another CPU then almost never reaches a sample.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal

from keyspot.schema import FRACTION, NOT_NEGATIVE, POSITIVE, setting

SPEED_OF_SOUND = 343.0
EARLY_ORDER = 6          # image-source order: the first few tens of milliseconds
GRID = 2.0 ** -24


@dataclasses.dataclass
class Rooms:
    """Reverberation of spoken clips (dataset.rooms)."""
    prob: float = setting(0.5, allowed=FRACTION)           # of spoken clips heard in a room
    count: int = setting(48, allowed=POSITIVE)             # simulated impulse responses to draw from
    rt60_s_range: tuple[float, float] = setting((0.15, 0.9), allowed=POSITIVE, ordered=True)
    size_m_range: tuple[float, float] = setting((2.5, 12.0), allowed=POSITIVE, ordered=True)  # length and width
    distance_m_range: tuple[float, float] = setting((0.3, 4.0), allowed=POSITIVE, ordered=True)


@dataclasses.dataclass
class Microphone:
    """The capsule and channel every clip goes through (dataset.microphone)."""
    prob: float = setting(0.6, allowed=FRACTION)           # of clips given a drawn response
    highpass_hz_range: tuple[float, float] = setting((40.0, 300.0), allowed=POSITIVE, ordered=True)
    lowpass_hz_range: tuple[float, float] = setting((3400.0, 7800.0), allowed=POSITIVE, ordered=True)
    lowpass_prob: float = setting(0.5, allowed=FRACTION)   # of those, also band-limited above
    mems_prob: float = setting(0.5, allowed=FRACTION)      # a MEMS capsule's presence rise
    clip_prob: float = setting(0.1, allowed=FRACTION)      # driven into clipping
    clip_drive_db_range: tuple[float, float] = setting((1.0, 12.0), allowed=NOT_NEGATIVE, ordered=True)


@dataclasses.dataclass(frozen=True)
class Room:
    rt60_s: float
    size_m: tuple[float, float, float]
    distance_m: float
    rir: np.ndarray = dataclasses.field(repr=False, compare=False)

    def describe(self) -> str:
        return f"room={self.size_m[0]:.1f}x{self.size_m[1]:.1f}x{self.size_m[2]:.1f}m/rt60={self.rt60_s:.2f}s/d={self.distance_m:.1f}m"


def simulate_room(rng: np.random.Generator, settings: Rooms, sample_rate: int) -> Room:
    """One drawn room and its impulse response, direct sound at index 0, peak 1."""
    import pyroomacoustics as pra

    length, width = (float(v) for v in rng.uniform(*settings.size_m_range, 2))
    height = float(rng.uniform(2.4, 4.0))
    size = np.array([length, width, height])
    rt60 = float(rng.uniform(*settings.rt60_s_range))
    # Sabine's formula cannot reach a short RT60 in a large room: take the room's shortest.
    absorption, _ = pra.inverse_sabine(rt60, size) if _reachable(rt60, size) else (0.99, 0)
    mic = size * rng.uniform(0.15, 0.85, 3)
    mic[2] = rng.uniform(0.7, 1.8)
    direction = rng.standard_normal(3)
    direction[2] *= 0.2
    direction /= np.linalg.norm(direction)
    wanted = float(rng.uniform(*settings.distance_m_range))
    source = np.clip(mic + direction * wanted, 0.1, size - 0.1)
    distance = float(np.linalg.norm(source - mic))
    room = pra.ShoeBox(size, fs=sample_rate, materials=pra.Material(float(absorption)),
                       max_order=EARLY_ORDER, air_absorption=False)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    early = np.asarray(room.rir[0][0], np.float64)
    start = int(np.argmax(np.abs(early) > 0.5 * np.abs(early).max()))
    early = early[max(start - 8, 0):]
    tail_length = round(rt60 * sample_rate)
    t = np.arange(tail_length) / sample_rate
    # Late reverberation: its energy follows the RT60 decay (-60 dB at rt60),
    # its level set so that the direct-to-reverberant ratio falls with distance.
    tail = rng.standard_normal(tail_length) * 10.0 ** (-3.0 * t / rt60)
    critical = 0.057 * np.sqrt(size.prod() / rt60)   # where direct and reverberant energy are equal
    tail *= np.sqrt(np.sum(early[:16] ** 2) * (distance / critical) ** 2 / np.sum(tail ** 2))
    onset = round(2.0 * distance / SPEED_OF_SOUND * sample_rate) + 16
    rir = np.zeros(max(len(early), onset + tail_length))
    rir[:len(early)] += early
    rir[onset:onset + tail_length] += tail[:len(rir) - onset]
    rir /= np.abs(rir).max()
    return Room(rt60, (length, width, height), distance, np.round(rir / GRID) * GRID)


def _reachable(rt60: float, size: np.ndarray) -> bool:
    volume = size.prod()
    surface = 2 * (size[0] * size[1] + size[0] * size[2] + size[1] * size[2])
    return 0.161 * volume / surface < rt60   # RT60 with every wall absorbing all


def reverberate(x: np.ndarray, room: Room) -> np.ndarray:
    """`x` heard in `room`, the same length and the same peak."""
    wet = signal.oaconvolve(x, room.rir)[:len(x)]
    peak = np.abs(wet).max()
    return wet * (np.abs(x).max() / peak) if peak > 0 else wet


@dataclasses.dataclass(frozen=True)
class Response:
    highpass_hz: float
    lowpass_hz: float | None
    mems: bool
    drive_db: float | None    # clipping: the gain past full scale

    def describe(self) -> str:
        parts = [f"mic=hp{self.highpass_hz:.0f}"]
        if self.lowpass_hz:
            parts.append(f"lp{self.lowpass_hz:.0f}")
        if self.mems:
            parts.append("mems")
        if self.drive_db is not None:
            parts.append(f"clip+{self.drive_db:.1f}dB")
        return "/".join(parts)


def draw_response(rng: np.random.Generator, settings: Microphone, sample_rate: int) -> Response | None:
    """A drawn microphone and channel, or None (the clip stays as it is).
    Every draw happens whatever the outcome, so later draws line up."""
    used, lowpassed, mems, clipped = rng.random(4)
    highpass = float(rng.uniform(*settings.highpass_hz_range))
    lowpass = float(min(rng.uniform(*settings.lowpass_hz_range), 0.45 * sample_rate))
    drive = float(rng.uniform(*settings.clip_drive_db_range))
    if used >= settings.prob:
        return None
    return Response(highpass, lowpass if lowpassed < settings.lowpass_prob else None,
                    bool(mems < settings.mems_prob), drive if clipped < settings.clip_prob else None)


def apply_response(x: np.ndarray, response: Response, sample_rate: int) -> np.ndarray:
    """Float samples (full scale 1) through the microphone and channel."""
    y = signal.sosfilt(signal.butter(2, response.highpass_hz, "highpass", fs=sample_rate, output="sos"), x)
    if response.mems:
        # The Helmholtz resonance of a MEMS port rises towards the top of the band.
        y = signal.sosfilt(_peaking(0.42 * sample_rate, 6.0, 1.2, sample_rate), y)
    if response.lowpass_hz:
        y = signal.sosfilt(signal.butter(6, response.lowpass_hz, "lowpass", fs=sample_rate, output="sos"), y)
    if response.drive_db is not None:
        peak = np.abs(y).max()
        if peak > 0:
            y = np.clip(y / peak * 10.0 ** (response.drive_db / 20.0), -1.0, 1.0) * peak
    return y


def _peaking(freq: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """An RBJ peaking equaliser as one second-order section."""
    a = 10.0 ** (gain_db / 40.0)
    w = 2.0 * np.pi * freq / sample_rate
    alpha = np.sin(w) / (2.0 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return np.concatenate([b / den[0], den / den[0]])[None, :]
