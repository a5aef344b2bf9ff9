"""The default, offline dataset: keywords spoken by espeak-ng and flite voices.

Every clip is planned up front (voice, label, word, take, split) and rendered
by its own numpy Generator, seeded from a hash of (seed, voice, label, word,
take). The bytes of a clip therefore depend on nothing else: not on the worker
count, not on the order in which the workers finish.

Splits are by voice, so a model is always tested on voices it never heard.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from keyspot import audio
from keyspot.data import tts
from keyspot.data.manifest import SPLITS, Row, write_manifest
from keyspot.params import ParamsError
from keyspot.params import SyntheticDataset as Dataset

SILENCE = "_silence_"
UNKNOWN = "_unknown_"

TRIM_DB = -40.0                    # below the word's peak counts as silence
TRIM_MARGIN_S = 0.01               # kept either side of the trimmed word
PEAK_DBFS = -1.0                   # words are normalised here before the gain
SILENCE_DBFS = (-60.0, -30.0)      # RMS level of the background-only clips
NOISE_EXPONENTS = (0.0, 1.0, 2.0)  # white, pink, brown: power ~ 1/f^a

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9'_-]*$")


class FetchError(RuntimeError):
    """Generation finished but left a label or split without clips."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One planned clip; `word` is empty for background noise."""
    voice: str
    label: str
    word: str
    take: int
    split: str

    @property
    def path(self) -> str:
        word = "silence" if self.label == SILENCE else _slug(self.word)
        return f"clips/{self.label}/{_slug(self.voice)}_{word}_{self.take}.wav"


@dataclasses.dataclass
class Summary:
    out: Path
    voices: int
    counts: dict[str, dict[str, int]]   # split -> label -> clips
    skipped: int
    truncated: int
    seconds: float

    @property
    def clips(self) -> int:
        return sum(sum(by_label.values()) for by_label in self.counts.values())

    def line(self) -> str:
        per_split = ", ".join(f"{sum(self.counts[s].values())} {s}" for s in SPLITS)
        return (f"fetch: {self.clips} clips ({per_split}) from {self.voices} voices "
                f"in {self.out} in {self.seconds:.1f} s; {self.skipped} skipped, "
                f"{self.truncated} truncated to the clip length")

    def table(self) -> str:
        labels = list(next(iter(self.counts.values())))
        width = max(len(label) for label in labels)
        lines = [f"  {'label':<{width}} " + " ".join(f"{s:>5}" for s in SPLITS)]
        for label in labels:
            lines.append(f"  {label:<{width}} "
                         + " ".join(f"{self.counts[s][label]:>5}" for s in SPLITS))
        return "\n".join(lines)


def labels(dataset: Dataset) -> list[str]:
    """Class names, index = class id."""
    return [SILENCE, UNKNOWN, *dataset.keywords]


def split_voices(voices, fractions: dict[str, float], seed: int) -> dict[str, str]:
    """voice -> split: a seeded shuffle, at least one voice each in val and test."""
    order = list(voices)
    _rng(seed, "voice-split").shuffle(order)
    n = len(order)
    n_test = max(1, round(fractions["test"] * n))
    n_val = max(1, round(fractions["val"] * n))
    if n_test + n_val >= n:
        raise ParamsError(f"dataset.split_fractions: {n} voices leave none for train "
                          f"after {n_val} val and {n_test} test; add voices")
    return {voice: ("test" if i < n_test else "val" if i < n_test + n_val else "train")
            for i, voice in enumerate(order)}


def plan(dataset: Dataset, seed: int) -> list[Clip]:
    """Every clip to render, in a fixed order."""
    splits = split_voices(dataset.voices, dataset.split_fractions, seed)
    clips = []
    for voice in dataset.voices:
        split = splits[voice]
        for keyword in dataset.keywords:
            clips += [Clip(voice, keyword, keyword, t, split)
                      for t in range(dataset.takes_per_keyword)]
        for t, word in enumerate(_unknown_words(dataset, seed, voice)):
            clips.append(Clip(voice, UNKNOWN, word, t, split))
        clips += [Clip(voice, SILENCE, "", t, split) for t in range(dataset.silence_per_voice)]
    return clips


def render(clip: Clip, dataset: Dataset, seed: int, workdir: Path) -> tuple[np.ndarray, bool]:
    """int16 PCM of one clip, and whether the word was longer than the clip."""
    rng = _rng(seed, clip.voice, clip.label, clip.word, clip.take)
    n = round(dataset.sample_rate * dataset.clip_seconds)
    if clip.label == SILENCE:
        return background(rng, n), False
    speed = rng.uniform(*dataset.speed_range)
    pitch = rng.uniform(*dataset.pitch_range)
    gain_db = rng.uniform(*dataset.gain_db_range)
    snr_db = rng.uniform(*dataset.noise_snr_db_range)
    samples, rate = tts.synthesize(tts.parse_voice(clip.voice), clip.word, speed, pitch, workdir)
    word = _trim(audio.resample(samples, rate, dataset.sample_rate), dataset.sample_rate)
    word = word / np.abs(word).max() * 10.0 ** ((PEAK_DBFS + gain_db) / 20.0)
    truncated = word.shape[0] > n
    word = word[:n]
    offset = int(rng.integers(0, n - word.shape[0] + 1))
    out = np.zeros(n)
    out[offset:offset + word.shape[0]] = word
    noise_rms = np.sqrt(np.mean(word ** 2) / 10.0 ** (snr_db / 10.0))
    out += rng.standard_normal(n) * noise_rms
    return audio.to_int16(out), truncated


def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """int16 noise only: a random mix of white, pink and brown at a low level."""
    weights = rng.dirichlet(np.ones(len(NOISE_EXPONENTS)))
    mix = sum(w * _colored_noise(rng, n, a) for w, a in zip(weights, NOISE_EXPONENTS, strict=True))
    level = 10.0 ** (rng.uniform(*SILENCE_DBFS) / 20.0)
    return audio.to_int16(mix / _rms(mix) * level)


def generate(dataset: Dataset, seed: int, out: Path = Path("data/raw"),
             progress: bool = True) -> Summary:
    """Write clips/, manifest.csv and labels.json to `out`, all or nothing.

    Raises ParamsError for a bad dataset config, tts.MissingToolError when an
    engine is not installed, FetchError when a label or split ends up empty.
    A clip the engine fails on is reported on stderr, skipped and counted.
    """
    start = time.perf_counter()
    check(dataset)
    clips = plan(dataset, seed)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for label in labels(dataset):
            (tmp / "clips" / label).mkdir(parents=True)
        done, skipped, truncated = _render_all(clips, dataset, seed, tmp, progress)
        counts = {s: {label: 0 for label in labels(dataset)} for s in SPLITS}
        for clip in done:
            counts[clip.split][clip.label] += 1
        _check_counts(counts, {c.label for c in clips if c.split == "train"}, skipped)
        write_manifest(tmp / "manifest.csv",
                       [Row(c.path, c.label, c.split, c.voice) for c in done])
        (tmp / "labels.json").write_text(json.dumps(labels(dataset)) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Summary(out, len(dataset.voices), counts, skipped, truncated,
                   time.perf_counter() - start)


def check(dataset: Dataset) -> None:
    """Validate what params.py cannot know: voices, label names, ranges."""
    voices = []
    slugs: dict[str, str] = {}
    for i, spec in enumerate(dataset.voices):
        try:
            voices.append(tts.parse_voice(spec))
        except ValueError as err:
            raise ParamsError(f"dataset.voices[{i}]: {err}") from None
        if _slug(spec) in slugs:
            raise ParamsError(f"dataset.voices[{i}]: {spec!r} repeats {slugs[_slug(spec)]!r}")
        slugs[_slug(spec)] = spec
    tts.check_tools(voices)
    for i, voice in enumerate(voices):
        try:
            tts.check_voice(voice)
        except ValueError as err:
            raise ParamsError(f"dataset.voices[{i}]: {voice}: {err}") from None
    for key, words in (("keywords", dataset.keywords), ("unknown_words", dataset.unknown_words)):
        for i, word in enumerate(words):
            if not _LABEL_RE.match(word):
                raise ParamsError(f"dataset.{key}[{i}]: {word!r} must be one word of letters, "
                                  "digits, ' _ or -, not starting with _ (it names a folder)")
        if len(set(words)) != len(words):
            raise ParamsError(f"dataset.{key}: lists a word twice")
    both = sorted(set(dataset.keywords) & set(dataset.unknown_words))
    if both:
        raise ParamsError(f"dataset.unknown_words: {', '.join(both)} also a keyword")
    if dataset.unknown_per_voice and not dataset.unknown_words:
        raise ParamsError("dataset.unknown_words: empty, but unknown_per_voice is above 0")
    for key in ("takes_per_keyword", "unknown_per_voice", "silence_per_voice", "workers"):
        if getattr(dataset, key) < 0:
            raise ParamsError(f"dataset.{key}: must not be negative")
    if dataset.takes_per_keyword < 1:
        raise ParamsError("dataset.takes_per_keyword: must be at least 1")
    if dataset.sample_rate < 8000 or dataset.clip_seconds <= 0:
        raise ParamsError("dataset.sample_rate / clip_seconds: need >= 8000 Hz and > 0 s")
    for key in ("speed_range", "pitch_range", "gain_db_range", "noise_snr_db_range"):
        lo, hi = getattr(dataset, key)
        if lo > hi:
            raise ParamsError(f"dataset.{key}: [{lo}, {hi}] is not [low, high]")
    if dataset.speed_range[0] <= 0:
        raise ParamsError("dataset.speed_range: must be above 0")


# --- rendering across processes -------------------------------------------

_state: dict = {}


def _init_worker(dataset: Dataset, seed: int, root: Path, scratch: Path) -> None:
    workdir = Path(scratch) / str(os.getpid())
    workdir.mkdir(exist_ok=True)
    _state.update(dataset=dataset, seed=seed, root=Path(root), workdir=workdir)


def _render_one(clip: Clip) -> tuple[Clip, bool, str | None]:
    """Render and write one clip; an engine failure comes back as a message."""
    try:
        pcm, truncated = render(clip, _state["dataset"], _state["seed"], _state["workdir"])
    except tts.TTSError as err:
        return clip, False, str(err)
    audio.write_wav(_state["root"] / clip.path, pcm, _state["dataset"].sample_rate)
    return clip, truncated, None


def _render_all(clips, dataset, seed, root, progress):
    workers = dataset.workers or os.cpu_count() or 1
    done, skipped, truncated = [], 0, 0
    with tempfile.TemporaryDirectory(prefix="keyspot-tts-") as scratch, \
            tqdm(total=len(clips), desc="fetch", unit="clip", file=sys.stderr,
                 disable=not progress) as bar:
        args = (dataset, seed, root, Path(scratch))
        if workers == 1:
            _init_worker(*args)
            results = map(_render_one, clips)
            pool = None
        else:
            pool = multiprocessing.Pool(workers, initializer=_init_worker, initargs=args)
            results = pool.imap_unordered(_render_one, clips, chunksize=4)
        try:
            for clip, was_truncated, error in results:
                bar.update()
                if error is not None:
                    skipped += 1
                    tqdm.write(f"fetch: skipped {clip.voice} {clip.word!r} "
                               f"(take {clip.take}): {error}", file=sys.stderr)
                    continue
                done.append(clip)
                truncated += was_truncated
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return done, skipped, truncated


# --- helpers -----------------------------------------------------------------

def _check_counts(counts, planned_train_labels: set[str], skipped: int) -> None:
    for split in SPLITS:
        if not sum(counts[split].values()):
            raise FetchError(f"no {split} clips were written ({skipped} skipped); "
                             "see the errors above")
    empty = [label for label, n in counts["train"].items()
             if n == 0 and label in planned_train_labels]
    if empty:
        raise FetchError(f"no train clips for {', '.join(empty)} ({skipped} skipped); "
                         "see the errors above")


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; the old one goes only after."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _unknown_words(dataset: Dataset, seed: int, voice: str) -> list[str]:
    """unknown_per_voice words for this voice: whole shuffled passes, so balanced."""
    rng = _rng(seed, "unknown-words", voice)
    words: list[str] = []
    while len(words) < dataset.unknown_per_voice:
        words += [dataset.unknown_words[i] for i in rng.permutation(len(dataset.unknown_words))]
    return words[:dataset.unknown_per_voice]


def _rng(*parts) -> np.random.Generator:
    key = "\x1f".join(str(p) for p in parts).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key).digest()[:16], "little"))


def _trim(x: np.ndarray, sample_rate: int) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > np.abs(x).max() * 10.0 ** (TRIM_DB / 20.0))
    margin = round(TRIM_MARGIN_S * sample_rate)
    return x[max(loud[0] - margin, 0):loud[-1] + margin + 1]


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = 1.0
    x = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n)
    x -= x.mean()
    return x / _rms(x)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) or 1.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
