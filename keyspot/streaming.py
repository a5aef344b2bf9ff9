"""What the device does on a continuous stream: misses, false accepts, latency.

The int8 model runs over a stream of data/streams as the board runs it
(keyspot.listen.Listener), and the recognizer's detections are held against
the stream's words (keyspot.data.streams). As MLPerf Tiny's streaming
benchmark counts, a detection counts for a keyword if it carries the
keyword's label and falls from the keyword's start to 1 s after its end;
every other detection is a false accept. The model runs once per stream;
the recognizer, which is cheap, runs for every parameter set tried
(keyspot.recognizer.detect), which is what calibration and the DET curve
need.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
from collections.abc import Iterable

import numpy as np

from keyspot.data.streams import Word
from keyspot.labels import SILENCE, UNKNOWN
from keyspot.recognizer import RecognizerParams, averaged, detect

TOLERANCE_MS = 1000   # a keyword's detection may come up to 1 s after its end


@dataclasses.dataclass
class ScoredStream:
    """One stream through the model: every inference's time and scores, and the words."""
    split: str
    seconds: float
    times: np.ndarray    # ms
    scores: np.ndarray   # uint8, (inferences, labels)
    words: list[Word]
    # Looked up again for every parameter set calibration tries: kept.
    _averages: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)
    _heard: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)
    _spans: tuple | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def averages(self, window_ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """keyspot.recognizer.averaged over this stream, once per window."""
        if window_ms not in self._averages:
            self._averages[window_ms] = averaged(self.times, self.scores, window_ms)
        return self._averages[window_ms]

    def detect(self, params: RecognizerParams) -> list[tuple[int, int, int]]:
        return detect(self.times, self.scores, params, self.averages(params.average_window_ms))

    def heard_at(self, t: int) -> str:
        """What a false accept at t heard: the first word it overlapped (up
        to TOLERANCE_MS after the word's end), or quiet."""
        if t not in self._heard:
            if self._spans is None:   # each word's start, and its end plus the tolerance
                self._spans = (np.array([w.start_ms for w in self.words], np.int64),
                               np.array([w.end_ms for w in self.words], np.int64) + TOLERANCE_MS)
            starts, ends = self._spans
            at = np.flatnonzero((starts <= t) & (t <= ends))
            self._heard[t] = f"{self.words[at[0]].label}:{self.words[at[0]].clip}" if len(at) else "quiet"
        return self._heard[t]


def score(listener, pcm: np.ndarray, split: str, words: list[Word]) -> ScoredStream:
    times, scores = listener.scores(pcm)
    return ScoredStream(split, len(pcm) / listener.spec.sample_rate, times, scores,
                        [w for w in words if w.split == split])


@dataclasses.dataclass
class Outcome:
    """Detections held against the words of one stream."""
    keywords: list[Word]
    hits: dict[int, int]                         # keyword index -> detection time
    false_accepts: list[tuple[int, str, str]]    # (time, label detected, what was there)
    seconds: float

    @property
    def false_reject_rate(self) -> float:
        return 1 - len(self.hits) / len(self.keywords) if self.keywords else 0.0

    @property
    def false_accepts_per_hour(self) -> float:
        return len(self.false_accepts) * 3600 / self.seconds


# No word is longer than this: how far back a detection looks for its keyword.
LONGEST_WORD_MS = 10_000


def match(stream: ScoredStream, detections: Iterable[tuple[int, int, int]], labels) -> Outcome:
    """Each detection is the first undetected keyword of its label whose
    window (start to end + TOLERANCE_MS) holds it, or a false accept."""
    keywords = [w for w in stream.words if w.label not in (UNKNOWN, SILENCE)]
    starts = np.array([w.start_ms for w in keywords], np.int64)
    hits: dict[int, int] = {}
    false_accepts = []
    for t, label, _ in detections:
        name, found = labels[label], None
        i = int(np.searchsorted(starts, t, side="right")) - 1
        while i >= 0 and starts[i] >= t - LONGEST_WORD_MS - TOLERANCE_MS:
            w = keywords[i]
            if w.label == name and i not in hits and t <= w.end_ms + TOLERANCE_MS:
                found = i   # going back: the last one found is the earliest
            i -= 1
        if found is None:
            false_accepts.append((t, name, stream.heard_at(t)))
        else:
            hits[found] = t
    return Outcome(keywords, hits, false_accepts, stream.seconds)


def summary(outcome: Outcome) -> dict:
    """reports/stream.json's figures for one stream."""
    per_keyword = {}
    for label in sorted({w.label for w in outcome.keywords}):
        mine = [i for i, w in enumerate(outcome.keywords) if w.label == label]
        missed = sum(i not in outcome.hits for i in mine)
        per_keyword[label] = {"keywords": len(mine), "missed": missed, "false_reject_rate": round(missed / len(mine), 4)}
    latency = np.array([t - outcome.keywords[i].end_ms for i, t in outcome.hits.items()], np.float64)
    return {
        "minutes": round(outcome.seconds / 60, 2),
        "keywords": len(outcome.keywords),
        "false_reject_rate": round(outcome.false_reject_rate, 4),
        "false_accepts": len(outcome.false_accepts),
        "false_accepts_per_hour": round(outcome.false_accepts_per_hour, 2),
        "latency_ms_median": float(np.median(latency)) if len(latency) else None,
        "latency_ms_p90": float(np.percentile(latency, 90)) if len(latency) else None,
        "per_keyword": per_keyword,
    }


def det_curve(streams: list[ScoredStream], params: RecognizerParams, labels,
              thresholds: Iterable[int] = range(0, 256, 5)) -> list[dict]:
    """False rejects against false accepts per hour across detection thresholds,
    over `streams` together, the other parameters as given."""
    rows = []
    for threshold in thresholds:
        outcomes = [match(s, s.detect(params.replace(detection_threshold=threshold)), labels)
                    for s in streams]
        rows.append({"threshold": threshold, **_pooled(outcomes)})
    return rows


def _pooled(outcomes: list[Outcome]) -> dict:
    keywords = sum(len(o.keywords) for o in outcomes)
    hits = sum(len(o.hits) for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    accepts = sum(len(o.false_accepts) for o in outcomes)
    return {"false_reject_rate": round(1 - hits / keywords, 4) if keywords else 0.0,
            "false_accepts_per_hour": round(accepts * 3600 / seconds, 3)}


@dataclasses.dataclass(frozen=True)
class Choice:
    params: RecognizerParams
    false_reject_rate: float
    false_accepts_per_hour: float
    meets_target: bool


def calibrate(streams: list[ScoredStream], labels, base: RecognizerParams, target_per_hour: float,
              windows: Iterable[int], counts: Iterable[int], suppressions: Iterable[int],
              thresholds: Iterable[int]) -> tuple[Choice, list[dict]]:
    """The parameters with the fewest false rejects at no more than
    target_per_hour false accepts on `streams`; ties go to fewer false
    accepts, then to the higher threshold (the wider margin). Where no set
    meets the target, the one with the fewest false accepts. Every set
    tried comes back as a table row."""
    table, best, best_key = [], None, None
    for window, count, suppression in itertools.product(windows, counts, suppressions):
        for threshold in sorted(thresholds, reverse=True):
            params = base.replace(average_window_ms=window, minimum_count=count, suppression_ms=suppression,
                                  detection_threshold=threshold)
            pooled = _pooled([match(s, s.detect(params), labels) for s in streams])
            frr, fah = pooled["false_reject_rate"], pooled["false_accepts_per_hour"]
            meets = fah <= target_per_hour
            table.append({"average_window_ms": window, "minimum_count": count, "suppression_ms": suppression,
                          "detection_threshold": threshold, **pooled})
            key = (0, frr, fah, -threshold) if meets else (1, fah, frr, -threshold)
            if best_key is None or key < best_key:
                best, best_key = Choice(params, frr, fah, meets), key
    return best, table


def score_streams(spec, model, params: RecognizerParams, streams_dir, splits: Iterable[str]) -> list[ScoredStream]:
    """The streams of data/streams for `splits` (those it has), through the model."""
    from pathlib import Path

    from keyspot import audio
    from keyspot.data.streams import read_words
    from keyspot.listen import Listener

    streams_dir = Path(streams_dir)
    words = read_words(streams_dir)
    out = []
    for split in splits:
        path = streams_dir / f"{split}.flac"
        if path.is_file():
            pcm = audio.load_pcm(path, spec.sample_rate)
            out.append(score(Listener(spec, model, params), pcm, split, words))
    return out


def csv_text(rows: list[dict], fields=None) -> str:
    """Rows as CSV text with a header (fields, else the first row's keys); empty without either."""
    fields = list(fields or (rows[0] if rows else ()))
    if not fields:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
