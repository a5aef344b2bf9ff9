"""Continuous streams to measure the device on: data/raw -> data/streams.

A board never hears a one-second clip; it hears a stream. For each split a
stream is held out for (val, test and the unseen engine's test_engine) this
module lays the split's own clips, keywords and `_unknown_` words alike, one
after another on a bed of quiet, with a quiet gap between them, as
TensorFlow's `generate_streaming_test_wav` lays Speech Commands clips over its
background noise. Where the source read sentences for the split
(data/sentences/: the synthetic source's held-out voices), they go between
the words too, as the talk a device overhears. The bed is the split's
`_silence_` clips (what a quiet room and a microphone sound like), each
held for a while and crossfaded into the next; a dataset without a silence
class gets keyspot.data.quiet's kinds instead. The clips bring their own
rooms, microphones and noise.

Where in its clip a word is spoken is found from the clip's loudness, so the
ground truth (data/streams/manifest.csv) gives each word's start and end in
the stream. Any source's data/raw works: nothing here knows how the clips
were made.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import soundfile

from keyspot import audio
from keyspot.data import quiet
from keyspot.data.manifest import HELD_OUT_ENGINE, Row, read_manifest
from keyspot.data.sentences import SentenceRow, read_sentences
from keyspot.labels import SILENCE, UNKNOWN

STREAM_SPLITS = ("val", "test", HELD_OUT_ENGINE)
MANIFEST = "manifest.csv"
MANIFEST_HEADER = ("split", "start_ms", "end_ms", "label", "clip", "speaker")
LEAD_SECONDS = 2.0           # quiet before the first word and after the last
CROSSFADE_SECONDS = 0.05     # between two stretches of the bed
BED_LEVEL_DBFS = (-70.0, -45.0)   # quiet.render's level for datasets without _silence_
# A word is where its 10 ms frames are louder than its clip's floor by this
# share of the way (in dB) from the floor to the loudest frame.
SPAN_FRAME_MS = 10
SPAN_SHARE = 0.35
SENTENCE_PREFIX = "sentences/"   # a Word's clip that is a sentence of data/sentences


@dataclasses.dataclass(frozen=True)
class Word:
    """One word in a stream: where it is spoken, and what it is."""
    split: str
    start_ms: int
    end_ms: int
    label: str
    clip: str       # the clip's path in data/raw, or sentences/<path in data/sentences>
    speaker: str


def rng_for(*key) -> np.random.Generator:
    digest = hashlib.sha256(repr(key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def spoken_span(x: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """(first, last + 1) sample of the loud part of a clip: the word."""
    frame = sample_rate * SPAN_FRAME_MS // 1000
    n = len(x) // frame
    if n == 0:
        return 0, len(x)
    energy = np.mean(x[:n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1)
    level = 10 * np.log10(energy + 1e-12)
    floor, peak = np.percentile(level, 10), level.max()
    loud = np.flatnonzero(level >= floor + SPAN_SHARE * (peak - floor))
    if peak - floor < 6 or len(loud) == 0:   # no word stands out: the whole clip
        return 0, len(x)
    return int(loud[0] * frame), int(min(len(x), (loud[-1] + 1) * frame))


def _order(rng: np.random.Generator, keywords: list[Row], unknown: list[Row], keyword_fraction: float,
           count: int) -> list[Row]:
    """Up to `count` clips, each a keyword with probability keyword_fraction
    while both kinds last, without repeats."""
    keywords = [keywords[i] for i in rng.permutation(len(keywords))]
    unknown = [unknown[i] for i in rng.permutation(len(unknown))]
    out = []
    while len(out) < count and (keywords or unknown):
        pick_keyword = bool(keywords) and (not unknown or rng.random() < keyword_fraction)
        out.append((keywords if pick_keyword else unknown).pop())
    return out


class Bed:
    """The quiet under a stream: stretches of held quiet clips, crossfaded."""

    def __init__(self, rng: np.random.Generator, quiet_clips: list[np.ndarray], sample_rate: int,
                 hold_seconds: float):
        self.rng, self.clips, self.rate = rng, quiet_clips, sample_rate
        self.hold = max(1, round(hold_seconds * sample_rate))

    def _stretch(self, n: int) -> np.ndarray:
        if self.clips:
            clip = self.clips[int(self.rng.integers(len(self.clips)))]
            return np.resize(clip, n)   # the clip repeated over the stretch
        kind = quiet.KINDS[int(self.rng.integers(len(quiet.KINDS)))]
        return quiet.render(kind, self.rng, n, self.rate, BED_LEVEL_DBFS)

    def render(self, n: int) -> np.ndarray:
        fade = round(CROSSFADE_SECONDS * self.rate)
        out = np.zeros(n)
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        for start in range(0, n, self.hold):
            end = min(n, start + self.hold + fade)
            stretch = self._stretch(end - start)
            if start > 0:   # crossfade over the previous stretch's tail
                k = min(fade, end - start)
                stretch[:k] *= ramp[:k]
                out[start:start + k] *= 1.0 - ramp[:k]
            out[start:end] += stretch
        return out


def build_split(raw_dir: Path, rows: list[Row], split: str, settings, seed: int, sample_rate: int,
                sentences_dir: Path | None = None, sentences: list[SentenceRow] = ()) -> tuple[np.ndarray, list[Word]]:
    """One split's stream (float, full scale 1) and its words; the split's
    `sentences` (in sentences_dir) among them, ground truth `_unknown_`."""
    rng = rng_for(seed, "streams", split)
    mine = [r for r in rows if r.split == split]
    keywords = [r for r in mine if r.label not in (SILENCE, UNKNOWN)]
    unknown = [r for r in mine if r.label == UNKNOWN]
    mine_said = [r for r in sentences if r.split == split]
    said = [audio.load_pcm(Path(sentences_dir) / r.path, sample_rate).astype(np.float64) / 32768
            for r in mine_said]
    # Each word takes its clip and a gap: at most as many as fill the minutes
    # that the sentences, each with its own gap, leave.
    mean_gap = sum(settings.gap_seconds) / 2
    minutes = settings.val_minutes if split == "val" else settings.minutes
    left = minutes * 60 - 2 * LEAD_SECONDS - sum(len(x) / sample_rate + mean_gap for x in said)
    count = max(1, int(left / (1.0 + mean_gap)))
    chosen = _order(rng, keywords, unknown, settings.keyword_fraction, count)
    clips = [audio.load_pcm(raw_dir / r.path, sample_rate).astype(np.float64) / 32768 for r in chosen]
    if said:
        # Each sentence goes in at a drawn place among the words.
        places = rng.integers(0, len(chosen) + 1, size=len(said))
        order = np.argsort(np.concatenate([np.arange(len(chosen)) * 2 + 1, places * 2]), kind="stable")
        items = [*zip(chosen, clips, strict=True), *zip(mine_said, said, strict=True)]
        chosen, clips = [items[i][0] for i in order], [items[i][1] for i in order]
    gaps = rng.uniform(*settings.gap_seconds, size=len(chosen))
    starts, at = [], round(LEAD_SECONDS * sample_rate)
    for clip, gap in zip(clips, gaps, strict=True):
        starts.append(at)
        at += len(clip) + round(gap * sample_rate)
    total = at - round(gaps[-1] * sample_rate) + round(LEAD_SECONDS * sample_rate) if chosen else at
    quiet_clips = [audio.load_pcm(raw_dir / r.path, sample_rate).astype(np.float64) / 32768
                   for r in mine if r.label == SILENCE]
    stream = Bed(rng, quiet_clips, sample_rate, settings.bed_hold_seconds).render(total)
    words = []
    for row, clip, start in zip(chosen, clips, starts, strict=True):
        stream[start:start + len(clip)] += clip
        first, last = spoken_span(clip, sample_rate)
        read = isinstance(row, SentenceRow)
        words.append(Word(split, (start + first) * 1000 // sample_rate, (start + last) * 1000 // sample_rate,
                          UNKNOWN if read else row.label, f"{SENTENCE_PREFIX}{row.path}" if read else row.path,
                          row.speaker))
    return stream, words


def build(raw_dir: Path, out_dir: Path, settings, seed: int, sample_rate: int,
          sentences_dir: Path | None = None) -> dict[str, dict]:
    """Write out_dir/<split>.flac for each split held out, and the words of
    all in out_dir/manifest.csv; a summary per split. The sentences of
    sentences_dir, if given, go among the words."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    rows = read_manifest(raw_dir / "manifest.csv")
    sentences = read_sentences(sentences_dir) if sentences_dir is not None else []
    present = [s for s in STREAM_SPLITS if any(r.split == s for r in rows)]
    summary, all_words = {}, []
    for split in present:
        stream, words = build_split(raw_dir, rows, split, settings, seed, sample_rate, sentences_dir, sentences)
        # FLAC: lossless, about half of WAV's bytes; libsndfile is pinned with soundfile.
        soundfile.write(str(out_dir / f"{split}.flac"), audio.to_int16(stream), sample_rate,
                        format="FLAC", subtype="PCM_16")
        all_words.extend(words)
        keywords = [w for w in words if w.label != UNKNOWN]
        read = sum(w.clip.startswith(SENTENCE_PREFIX) for w in words)
        summary[split] = {"seconds": round(len(stream) / sample_rate, 2), "words": len(words) - read,
                          "keywords": len(keywords), "unknown": len(words) - len(keywords) - read,
                          "sentences": read}
    with (out_dir / MANIFEST).open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(MANIFEST_HEADER)
        for w in all_words:
            writer.writerow(dataclasses.astuple(w))
    return summary


def read_words(streams_dir: Path) -> list[Word]:
    """data/streams/manifest.csv back as Words."""
    path = Path(streams_dir) / MANIFEST
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if tuple(header or ()) != MANIFEST_HEADER:
                raise ValueError(f"{path}:1: header is {header!r}, expected {','.join(MANIFEST_HEADER)!r}; "
                                 "rerun `dvc repro streams`")
            return [Word(s, int(a), int(b), label, clip, speaker) for s, a, b, label, clip, speaker in reader]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; run `dvc repro streams`") from None
