"""Streams of data/streams (keyspot/data/streams.py) and what is measured on
them (keyspot/streaming.py): the words sit where the manifest says, the
bytes follow the seed, and detections are counted as MLPerf Tiny counts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from keyspot import audio, streaming
from keyspot.data import streams
from keyspot.data.manifest import Row, write_manifest
from keyspot.data.sentences import SentenceRow, write_sentences
from keyspot.recognizer import RecognizerParams, detect
from keyspot.schema import Streams

RATE = 16000
LABELS = ("_silence_", "_unknown_", "yes", "no")


def _tone_clip(rng, start_s: float, length_s: float, freq: float) -> np.ndarray:
    """1 s: quiet noise, a tone burst where a word would be."""
    x = rng.standard_normal(RATE) * 10 ** (-55 / 20)
    a, b = int(start_s * RATE), int((start_s + length_s) * RATE)
    x[a:b] += 0.3 * np.sin(2 * np.pi * freq * np.arange(b - a) / RATE)
    return x


def _raw(root: Path, with_silence: bool = True) -> Path:
    """A data/raw of tone "words": 12 per keyword and 12 unknown per split."""
    rng = np.random.default_rng(0)
    rows = []
    for split in ("train", "val", "test"):
        for label, freq in (("yes", 500), ("no", 900), ("_unknown_", 1500)):
            for i in range(12):
                path = f"clips/{label}/{split}_{i}.wav"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                start = rng.uniform(0.1, 0.5)
                audio.write_wav(root / path, audio.to_int16(_tone_clip(rng, start, 0.4, freq)), RATE)
                rows.append(Row(path, label, split, f"{split}-speaker-{i % 3}"))
        if with_silence:
            for i in range(4):
                path = f"clips/_silence_/{split}_{i}.wav"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                audio.write_wav(root / path, audio.to_int16(rng.standard_normal(RATE) * 10 ** (-50 / 20)), RATE)
                rows.append(Row(path, "_silence_", split, f"{split}-speaker-0"))
    write_manifest(root / "manifest.csv", rows)
    (root / "labels.json").write_text(json.dumps(list(LABELS if with_silence else LABELS[1:])))
    return root


def test_spoken_span_finds_the_word_in_its_clip():
    rng = np.random.default_rng(1)
    clip = _tone_clip(rng, 0.30, 0.40, 700)
    first, last = streams.spoken_span(clip, RATE)
    assert abs(first - 0.30 * RATE) <= 0.01 * RATE and abs(last - 0.70 * RATE) <= 0.01 * RATE
    # Nothing stands out: the whole clip.
    assert streams.spoken_span(rng.standard_normal(RATE) * 0.01, RATE) == (0, RATE)


@pytest.mark.parametrize("with_silence", [True, False])
def test_streams_hold_their_words_where_the_manifest_says(tmp_path, with_silence):
    raw = _raw(tmp_path / "raw", with_silence)
    out = tmp_path / "streams"
    out.mkdir()
    settings = Streams(minutes=1.0, val_minutes=1.0, gap_seconds=(1.0, 2.0), keyword_fraction=0.5,
                       bed_hold_seconds=5.0)
    summary = streams.build(raw, out, settings, seed=42, sample_rate=RATE)
    assert set(summary) == {"val", "test"}   # no stream of the training split
    words = streams.read_words(out)
    for split in ("val", "test"):
        pcm = audio.load_pcm(out / f"{split}.flac", RATE).astype(np.float64) / 32768
        mine = [w for w in words if w.split == split]
        assert summary[split]["words"] == len(mine) and len({w.clip for w in mine}) == len(mine)
        assert 50 <= len(pcm) / RATE <= 62 and summary[split]["keywords"] >= 10
        assert {w.label for w in mine} == {"yes", "no", "_unknown_"}
        for w in mine:
            a, b = w.start_ms * RATE // 1000, w.end_ms * RATE // 1000
            # The tone is there, about 0.4 s long, and the stream is quiet just before it.
            assert 370 <= w.end_ms - w.start_ms <= 430
            assert np.sqrt(np.mean(pcm[a:b] ** 2)) > 0.1
            assert np.sqrt(np.mean(pcm[max(0, a - 1600):a - 160] ** 2)) < 0.01
        gaps = [b.start_ms - a.end_ms for a, b in zip(mine, mine[1:], strict=False)]
        assert min(gaps) >= 1000   # a word's clip, then at least the shortest gap


def test_sentences_go_between_the_words_as_other_speech(tmp_path):
    """A source's sentences (data/sentences/) are laid among the
    split's words, whole, as `_unknown_` in the ground truth; the stream
    keeps its length, and a split without sentences keeps its bytes."""
    raw = _raw(tmp_path / "raw")
    settings = Streams(minutes=1.0, val_minutes=1.0, gap_seconds=(1.0, 2.0), bed_hold_seconds=5.0)
    (tmp_path / "words").mkdir()
    alone = streams.build(raw, tmp_path / "words", settings, seed=42, sample_rate=RATE)
    rng = np.random.default_rng(2)
    rows, read = [], tmp_path / "sentences"
    for i in range(3):   # 2.5 s of "speech": three tones of 0.8 s
        path = f"test/speaker_{i}.wav"
        (read / path).parent.mkdir(parents=True, exist_ok=True)
        x = np.concatenate([_tone_clip(rng, 0.1, 0.8, f) for f in (300, 600, 450)])[:round(2.5 * RATE)]
        audio.write_wav(read / path, audio.to_int16(x), RATE)
        rows.append(SentenceRow(path, "test", f"test-speaker-{i}", "A sentence without keywords."))
    write_sentences(read / "sentences.csv", rows)
    (tmp_path / "both").mkdir()
    summary = streams.build(raw, tmp_path / "both", settings, seed=42, sample_rate=RATE, sentences_dir=read)
    assert summary["test"]["sentences"] == 3 and summary["val"]["sentences"] == 0
    words = streams.read_words(tmp_path / "both")
    said = [w for w in words if w.clip.startswith("sentences/")]
    assert sorted(w.clip for w in said) == [f"sentences/{r.path}" for r in rows]
    assert all(w.split == "test" and w.label == "_unknown_" and 2000 <= w.end_ms - w.start_ms <= 2500
               for w in said)
    pcm = audio.load_pcm(tmp_path / "both" / "test.flac", RATE).astype(np.float64) / 32768
    for w in said:   # the sentence is where the manifest says
        assert np.sqrt(np.mean(pcm[w.start_ms * RATE // 1000:w.end_ms * RATE // 1000] ** 2)) > 0.1
    # The sentences take the time of some words: the stream keeps its length.
    assert 50 <= len(pcm) / RATE <= 62 and summary["test"]["words"] < alone["test"]["words"]
    # val has no sentences: the same stream as without any.
    assert (tmp_path / "both" / "val.flac").read_bytes() == (tmp_path / "words" / "val.flac").read_bytes()


def test_the_validation_stream_is_as_long_as_val_minutes(tmp_path):
    raw = _raw(tmp_path / "raw")
    summary = streams.build(raw, tmp_path, Streams(minutes=0.5, val_minutes=1.0), seed=42, sample_rate=RATE)
    seconds = {split: len(audio.load_pcm(tmp_path / f"{split}.flac", RATE)) / RATE for split in summary}
    assert 50 <= seconds["val"] <= 62 and 20 <= seconds["test"] <= 32


def test_streams_are_the_same_bytes_from_the_same_seed(tmp_path):
    raw = _raw(tmp_path / "raw")
    settings = Streams(minutes=0.5, val_minutes=0.5)
    digests = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        (tmp_path / name).mkdir()
        streams.build(raw, tmp_path / name, settings, seed=seed, sample_rate=RATE)
        digests.append(hashlib.md5(b"".join((tmp_path / name / f).read_bytes()
                                            for f in ("val.flac", "test.flac", "manifest.csv"))).hexdigest())
    assert digests[0] == digests[1] != digests[2]


# ---------------------------------------------------------------- counting

def _stream(words, seconds=60.0, times=None, scores=None) -> streaming.ScoredStream:
    times = np.arange(100, int(seconds * 1000), 100) if times is None else times
    scores = np.zeros((len(times), len(LABELS)), np.uint8) if scores is None else scores
    return streaming.ScoredStream("test", seconds, times, scores, words)


def _word(start, end, label, clip="c.wav"):
    return streams.Word("test", start, end, label, clip, "s")


def test_a_detection_counts_from_the_keywords_start_to_one_second_after_its_end():
    words = [_word(5000, 5500, "yes"), _word(10000, 10400, "no"), _word(20000, 20500, "_unknown_", "u.wav"),
             _word(30000, 30400, "yes")]
    s = _stream(words)
    yes, no = LABELS.index("yes"), LABELS.index("no")
    detections = [(4990, yes, 250),    # before the start: a false accept
                  (5000, yes, 250),    # the start: counts
                  (5600, yes, 250),    # again: the keyword is taken, a false accept
                  (11400, no, 250),    # 1 s after the end: counts
                  (20300, yes, 250),   # on an unknown word: a false accept that names it
                  (30100, no, 250),    # the wrong keyword: a false accept, and "yes" missed
                  (45000, yes, 250)]   # in the quiet
    o = streaming.match(s, detections, LABELS)
    assert o.hits == {0: 5000, 1: 11400}
    assert [(t, heard) for t, _, heard in o.false_accepts] == [
        (4990, "quiet"), (5600, "yes:c.wav"), (20300, "_unknown_:u.wav"), (30100, "yes:c.wav"), (45000, "quiet")]
    summary = streaming.summary(o)
    assert summary["false_reject_rate"] == round(1 / 3, 4) and summary["false_accepts"] == 5
    assert summary["false_accepts_per_hour"] == 300.0
    assert summary["per_keyword"] == {"no": {"keywords": 1, "missed": 0, "false_reject_rate": 0.0},
                                      "yes": {"keywords": 2, "missed": 1, "false_reject_rate": 0.5}}
    assert summary["latency_ms_median"] == (-500 + 1000) / 2
    assert o.false_accepts[4] == (45000, "yes", "quiet")
    # Just past the window: a miss and a false accept.
    late = streaming.match(s, [(11401, no, 250)], LABELS)
    assert late.hits == {} and len(late.false_accepts) == 1


def _scored(rng) -> streaming.ScoredStream:
    """Ten minutes: a "yes" every 6 s that the model scores 180-250 for 0.5 s,
    and an unknown word every 30 s that it scores 150 as "yes"."""
    times = np.arange(100, 600_000, 100)
    scores = np.zeros((len(times), len(LABELS)), np.uint8)
    scores[:, 0] = 255
    words = []
    for start in range(3000, 598_000, 6000):
        unknown = start % 30_000 == 9000
        words.append(_word(start, start + 400, "_unknown_" if unknown else "yes"))
        on = (times > start + 300) & (times <= start + 800)
        scores[on, 0] = 0
        scores[on, LABELS.index("yes")] = 150 if unknown else rng.integers(180, 251)
    return streaming.ScoredStream("val", 600.0, times, scores, words)


def test_calibration_meets_the_false_accept_target_with_the_fewest_misses():
    s = _scored(np.random.default_rng(0))
    base = RecognizerParams(ignore_mask=0b11)
    grid = dict(windows=(300, 1000), counts=(1, 3), suppressions=(1500,), thresholds=range(0, 256, 4))
    strict, table = streaming.calibrate([s], LABELS, base, 0.0, **grid)
    assert strict.meets_target and strict.false_accepts_per_hour == 0 and strict.false_reject_rate == 0
    assert len(table) == 2 * 2 * 64
    # Each window is averaged once and kept: every row as a fresh stream computes it.
    for row in table[::37]:
        params = base.replace(**{k: row[k] for k in ("average_window_ms", "minimum_count", "suppression_ms",
                                                     "detection_threshold")})
        fresh = streaming.ScoredStream("val", 600.0, s.times, s.scores, s.words)
        assert streaming._pooled([streaming.match(fresh, detect(s.times, s.scores, params), LABELS)]) == \
            {k: row[k] for k in ("false_reject_rate", "false_accepts_per_hour")}
    # The unknown word averages 150 at most: the threshold sits at or above it.
    assert strict.params.detection_threshold >= 150
    detected = detect(s.times, s.scores, strict.params)
    assert len(detected) == sum(w.label == "yes" for w in s.words)
    # A target nothing meets (the unknown word at 255, above every threshold
    # tried): the fewest false accepts, and said so.
    louder = s.scores.copy()
    louder[louder[:, LABELS.index("yes")] == 150, LABELS.index("yes")] = 255
    impossible, _ = streaming.calibrate([streaming.ScoredStream("val", 600.0, s.times, louder, s.words)],
                                        LABELS, base, 0.0, **{**grid, "windows": (300,), "thresholds": range(0, 250, 4)})
    assert not impossible.meets_target and impossible.false_accepts_per_hour == 120.0
    # Then the fewest misses: every "yes" (180 and up) still heard, at the highest such threshold.
    assert impossible.false_reject_rate == 0 and impossible.params.detection_threshold == 176


def test_det_curve_runs_from_everything_detected_to_nothing():
    s = _scored(np.random.default_rng(1))
    curve = streaming.det_curve([s], RecognizerParams(average_window_ms=300, minimum_count=1, ignore_mask=0b11),
                                LABELS, range(0, 256, 5))
    assert curve[0]["false_reject_rate"] == 0 and curve[0]["false_accepts_per_hour"] > 0
    assert curve[-1]["false_reject_rate"] == 1 and curve[-1]["false_accepts_per_hour"] == 0
    rejects = [r["false_reject_rate"] for r in curve]
    assert rejects == sorted(rejects)


def test_a_bad_sentences_file_is_named_with_its_line(tmp_path):
    from keyspot.data.sentences import SENTENCE_HEADER, read_sentences

    (tmp_path / "sentences.csv").write_text("path,text\n")
    with pytest.raises(ValueError, match=r"sentences\.csv:1: header is 'path,text'.*rerun `dvc repro fetch`"):
        read_sentences(tmp_path)
    (tmp_path / "sentences.csv").write_text(",".join(SENTENCE_HEADER) + "\ntest/gone.wav,test,a,Hello.,\n")
    with pytest.raises(ValueError, match=r"sentences\.csv:2: test/gone\.wav does not exist"):
        read_sentences(tmp_path)
    (tmp_path / "sentences.csv").write_text(",".join(SENTENCE_HEADER) + "\ntest/a.wav,train2,a,Hello.,\n")
    with pytest.raises(ValueError, match=r"sentences\.csv:2: unknown split 'train2'"):
        read_sentences(tmp_path)
