"""The default, offline dataset: keywords spoken by espeak-ng and flite voices.

A voice is one espeak-ng variant (its timbre: m1-m8, f1-f5, whisper, croak,
klatt, ...), which speaks each take in an accent drawn from
`espeak_accents`, or one flite voice. Each take also draws its speed, pitch,
volume, intonation (a final `.`, `?`, `!` or `,`), leading silence and
background: white, pink or brown noise, or babble (sentences spoken by
several training voices at once) at a drawn SNR. `_silence_` clips are
background only.

Every clip is planned up front (voice, label, word, take, split) and rendered
by its own numpy Generator, seeded from a hash of (seed, voice, label, word,
take). The bytes of a clip therefore depend on nothing else: not on the worker
count, not on the order in which the workers finish. The babble is rendered
first, from its own seeded draws, and is the same for every worker.

Splits are by speaker (the voice; kal16 is kal at another rate), so a model
is always tested on voices it never heard, not even in the babble.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from keyspot import artifacts, audio
from keyspot.data import tts, workers
from keyspot.data.manifest import SPLITS, Row, write_manifest
from keyspot.data.report import SourceFile
from keyspot.data.source import Source, SourceError, Summary, check_counts, seeded_rng
from keyspot.labels import SILENCE, UNKNOWN
from keyspot.params import ParamsError
from keyspot.schema import FRACTION, NOT_NEGATIVE, POSITIVE, Range, fail, setting

TRIM_DB = -40.0                    # below the word's peak counts as silence
TRIM_MARGIN_S = 0.01               # kept either side of the trimmed word
PEAK_DBFS = -1.0                   # words are normalised here before the gain
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}   # power ~ 1/f^a
NOISE_KINDS = (*NOISE_EXPONENTS, "babble")
INTONATIONS = (".", "?", "!", ",")  # statement, question, exclamation, continuation
# The same speaker at another sample rate: kept in one split.
FLITE_SPEAKERS = {"kal16": "kal"}
BABBLE_RENDERS = 16                # sentences rendered for the babble
BABBLE_TRACKS = 8                  # babble recordings mixed from them
BABBLE_SECONDS = 4.0
BABBLE_TALKER_DB = (-6.0, 0.0)     # level of each talker in the mix

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9'_-]*$")


class FetchError(SourceError):
    """Generation finished but left a label or split without clips."""


@dataclasses.dataclass
class Noise:
    """Background under the spoken clips and in _silence_."""
    kinds: tuple[str, ...] = ("white", "pink", "brown", "babble")  # one drawn per spoken clip; _silence_ mixes them
    snr_db_range: tuple[float, float] = setting((12.0, 40.0), ordered=True)      # against the word's RMS
    silence_dbfs_range: tuple[float, float] = setting((-65.0, -25.0), ordered=True)  # RMS of the _silence_ clips
    babble_talkers: tuple[int, int] = setting((3, 6), ordered=True)   # voices talking at once in the babble
    # Spoken by training voices for the babble; a keyword here is refused.
    babble_sentences: tuple[str, ...] = (
        "The baker sliced a warm loaf of bread for the children.",
        "A small boat drifted past the harbour at dawn.",
        "Please bring the green folder to the meeting room.",
        "My neighbour planted tomatoes beside the garden wall.",
        "The train to the city leaves every hour.",
        "She painted the kitchen a soft shade of blue.",
        "We heard thunder rolling across the distant hills.",
        "The museum closes early during the winter months.",
        "He fixed the bicycle chain with an old pair of pliers.",
        "Fresh coffee and toast were waiting at the table.",
        "The library keeps maps of every town in the valley.",
        "Rain tapped against the window all afternoon.",
    )


@dataclasses.dataclass
class SyntheticDataset:
    """Keys of `dataset` for this source (conf/dataset/synthetic.yaml)."""
    name: str = "synthetic"
    keywords: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
    # Spoken as the _unknown_ class.
    unknown_words: tuple[str, ...] = (
        "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "learn", "follow", "forward", "backward", "visual", "yellow", "today", "number")
    sample_rate: int = setting(16000, allowed=Range(8000, 384000))
    clip_seconds: float = setting(1.0, allowed=Range(0, 60, low_open=True))
    # Voices. Each espeak-ng variant (`espeak-ng --voices=variant`) is one voice
    # that speaks every take in an accent drawn from espeak_accents; each flite
    # voice (`flite -lv`) is one voice (kal16 is kal at 16 kHz: the same
    # speaker, kept in one split; awb_time only says clock times and cannot be
    # used). Splits never share a speaker, so test voices are never heard in
    # training, not even in the babble.
    espeak_accents: tuple[str, ...] = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                                       "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
    espeak_variants: tuple[str, ...] = (
        # female
        "f1", "f2", "f3", "f4", "f5", "whisperf", "grandma", "Alicia", "Andrea", "Annie", "aunty",
        "belinda", "linda", "steph", "steph2", "steph3", "anika",
        # male
        "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "croak", "whisper", "grandpa", "klatt",
        "klatt2", "klatt3", "klatt4", "adam", "Alex", "Andy", "antonio", "benjamin", "boris", "caleb",
        "david", "Denis", "Diogo", "ed", "edward", "Gene", "gustave", "Henrique", "Hugo", "iven",
        "Jacky", "john", "Lee", "Marco", "Mario", "max", "Michael", "miguel", "norbert", "pablo", "paul",
        # more voices, from espeak-ng's variant files
        "shelby", "Nguyen", "zac",
        "Gene2", "edward2", "iven2", "iven3", "marcelo", "michel", "Mike", "pedro", "quincy", "rob",
        "robert", "klatt5", "klatt6", "sandro", "travis", "victor", "Storm")
    flite_voices: tuple[str, ...] = ("kal", "kal16", "awb", "rms", "slt")
    # Size: clips per voice = keywords x takes + unknown + silence.
    takes_per_keyword: int = setting(8, allowed=Range(low=1))
    unknown_per_voice: int = setting(20, allowed=NOT_NEGATIVE)
    silence_per_voice: int = setting(6, allowed=NOT_NEGATIVE)
    # Each take draws from these ranges.
    speed_range: tuple[float, float] = setting((0.75, 1.35), allowed=POSITIVE, ordered=True)  # relative speaking rate
    # espeak-ng pitch 0-99; flite maps it to an f0 shift.
    pitch_range: tuple[float, float] = setting((25.0, 75.0), ordered=True)
    gain_db_range: tuple[float, float] = setting((-18.0, 0.0), ordered=True)  # the word's peak, below -1 dBFS
    # Before the word (less when the word would not fit).
    lead_silence_s_range: tuple[float, float] = setting((0.0, 0.4), allowed=NOT_NEGATIVE, ordered=True)
    noise: Noise = dataclasses.field(default_factory=Noise)
    split_fractions: dict[str, float] = setting({"val": 0.15, "test": 0.2}, allowed=FRACTION)  # of the speakers
    workers: int = setting(0, allowed=NOT_NEGATIVE)   # processes; 0 = all cores

    def validate(self, key: str) -> None:
        if not self.keywords:
            fail(f"{key}.keywords", "at least one keyword is needed")
        if set(self.split_fractions) != {"val", "test"}:
            fail(f"{key}.split_fractions", "give exactly the keys val and test")
        if sum(self.split_fractions.values()) >= 1.0:
            fail(f"{key}.split_fractions", "val + test must leave voices for train")
        if len(set(self.espeak_variants)) + len(set(self.flite_voices)) < 3:
            fail(f"{key}.espeak_variants, {key}.flite_voices", "at least three voices in all (train, val, test)")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One planned clip; `word` is empty for background noise.

    `voice` is `espeak-ng:<variant>` (the accent is drawn per clip) or
    `flite:<voice>`.
    """
    voice: str
    label: str
    word: str
    take: int
    split: str

    @property
    def path(self) -> str:
        word = "silence" if self.label == SILENCE else _slug(self.word)
        return f"clips/{self.label}/{_slug(self.voice)}_{word}_{self.take}.wav"


def labels(dataset: SyntheticDataset) -> list[str]:
    """Class names, index = class id."""
    return [SILENCE, UNKNOWN, *dataset.keywords]


def voices(dataset: SyntheticDataset) -> list[str]:
    return ([f"espeak-ng:{v}" for v in dataset.espeak_variants]
            + [f"flite:{v}" for v in dataset.flite_voices])


def speaker(voice: str) -> str:
    """The person behind a voice: what splits keep apart."""
    engine, _, name = voice.partition(":")
    return f"{engine}:{FLITE_SPEAKERS.get(name, name)}" if engine == "flite" else voice


def split_voices(speakers, fractions: dict[str, float], seed: int) -> dict[str, str]:
    """speaker -> split: a seeded shuffle, at least one speaker each in val and test."""
    order = list(dict.fromkeys(speakers))
    seeded_rng(seed, "voice-split").shuffle(order)
    n = len(order)
    n_test = max(1, round(fractions["test"] * n))
    n_val = max(1, round(fractions["val"] * n))
    if n_test + n_val >= n:
        raise ParamsError(f"dataset.split_fractions: {n} speakers leave none for train "
                          f"after {n_val} val and {n_test} test; add voices")
    return {s: ("test" if i < n_test else "val" if i < n_test + n_val else "train")
            for i, s in enumerate(order)}


def plan(dataset: SyntheticDataset, seed: int) -> list[Clip]:
    """Every clip to render, in a fixed order."""
    splits = split_voices([speaker(v) for v in voices(dataset)], dataset.split_fractions, seed)
    clips = []
    for voice in voices(dataset):
        split = splits[speaker(voice)]
        for keyword in dataset.keywords:
            clips += [Clip(voice, keyword, keyword, t, split)
                      for t in range(dataset.takes_per_keyword)]
        for t, word in enumerate(_unknown_words(dataset, seed, voice)):
            clips.append(Clip(voice, UNKNOWN, word, t, split))
        clips += [Clip(voice, SILENCE, "", t, split) for t in range(dataset.silence_per_voice)]
    return clips


def tts_voice(voice: str, rng: np.random.Generator, dataset: SyntheticDataset) -> tts.Voice:
    """The engine voice of one take: an espeak-ng variant gets a drawn accent."""
    engine, _, name = voice.partition(":")
    draw = rng.random()   # drawn for flite too, so that the draws after it line up
    if engine == "flite":
        return tts.Voice("flite", name)
    accent = dataset.espeak_accents[int(draw * len(dataset.espeak_accents))]
    return tts.Voice("espeak", f"{accent}+{name}")


def render(clip: Clip, dataset: SyntheticDataset, seed: int, workdir: Path,
           babble: np.ndarray | None = None) -> tuple[np.ndarray, bool, SourceFile | None]:
    """int16 PCM of one clip, whether the word was longer than the clip, and
    the word as the engine rendered it (None for `_silence_`)."""
    rng = seeded_rng(seed, clip.voice, clip.label, clip.word, clip.take)
    n = round(dataset.sample_rate * dataset.clip_seconds)
    if clip.label == SILENCE:
        return background(rng, n, dataset.noise, babble), False, None
    # Every draw happens, in this order, whatever the voice and the noise kind.
    voice = tts_voice(clip.voice, rng, dataset)
    speed = rng.uniform(*dataset.speed_range)
    pitch = rng.uniform(*dataset.pitch_range)
    gain_db = rng.uniform(*dataset.gain_db_range)
    lead_s = rng.uniform(*dataset.lead_silence_s_range)
    mark = INTONATIONS[int(rng.integers(len(INTONATIONS)))]
    kind = dataset.noise.kinds[int(rng.integers(len(dataset.noise.kinds)))]
    snr_db = rng.uniform(*dataset.noise.snr_db_range)
    samples, rate = tts.synthesize(voice, clip.word + mark, speed, pitch, workdir)
    word = _trim(audio.resample(samples, rate, dataset.sample_rate), dataset.sample_rate)
    source = SourceFile(clip.path, word.shape[0] / dataset.sample_rate, rate, 1,
                        tts.PROGRAMS[voice.engine])
    word = word / np.abs(word).max() * 10.0 ** ((PEAK_DBFS + gain_db) / 20.0)
    truncated = word.shape[0] > n
    word = word[:n]
    offset = min(round(lead_s * dataset.sample_rate), n - word.shape[0])
    out = np.zeros(n)
    out[offset:offset + word.shape[0]] = word
    out += noise(rng, n, kind, babble) * _rms(word) / 10.0 ** (snr_db / 20.0)
    return audio.to_int16(out), truncated, source


def noise(rng: np.random.Generator, n: int, kind: str, babble: np.ndarray | None) -> np.ndarray:
    """n samples of one kind of background at RMS 1."""
    if kind != "babble":
        return _colored_noise(rng, n, NOISE_EXPONENTS[kind])
    track = babble[int(rng.integers(babble.shape[0]))]
    x = np.resize(np.roll(track, -int(rng.integers(track.shape[0]))), n)
    return x / _rms(x)


def background(rng: np.random.Generator, n: int, settings, babble: np.ndarray | None) -> np.ndarray:
    """int16 background only: a random mix of the noise kinds at a low level."""
    weights = rng.dirichlet(np.ones(len(settings.kinds)))
    mix = sum(w * noise(rng, n, kind, babble) for w, kind in zip(weights, settings.kinds, strict=True))
    level = 10.0 ** (rng.uniform(*settings.silence_dbfs_range) / 20.0)
    return audio.to_int16(mix / _rms(mix) * level)


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One babble sentence to render: its engine voice and prosody are drawn up front."""
    index: int
    voice: str      # e.g. espeak:en-gb-x-rp+f3
    text: str
    speed: float
    pitch: float

    @property
    def path(self) -> str:
        return f"babble/{self.index}_{_slug(self.voice)}"


def babble_plan(dataset: SyntheticDataset, seed: int, train_voices: list[str]) -> list[Sentence]:
    """The sentences of the babble, spoken by training voices only."""
    if "babble" not in dataset.noise.kinds:
        return []
    rng = seeded_rng(seed, "babble")
    sentences = []
    for i in range(BABBLE_RENDERS):
        voice = tts_voice(train_voices[int(rng.integers(len(train_voices)))], rng, dataset)
        text = dataset.noise.babble_sentences[i % len(dataset.noise.babble_sentences)]
        sentences.append(Sentence(i, str(voice), text, rng.uniform(*dataset.speed_range),
                                  rng.uniform(*dataset.pitch_range)))
    return sentences


def mix_babble(renders: list[np.ndarray], dataset: SyntheticDataset, seed: int) -> np.ndarray:
    """BABBLE_TRACKS recordings of several talkers at once, each at RMS 1."""
    rng = seeded_rng(seed, "babble-mix")
    length = round(BABBLE_SECONDS * dataset.sample_rate)
    lo, hi = dataset.noise.babble_talkers
    tracks = np.zeros((BABBLE_TRACKS, length), np.float32)
    for track in tracks:
        for _ in range(int(rng.integers(lo, hi + 1))):
            talker = np.resize(renders[int(rng.integers(len(renders)))], length)
            track += np.roll(talker, int(rng.integers(length))) * 10.0 ** (
                rng.uniform(*BABBLE_TALKER_DB) / 20.0)
        track /= _rms(track)
    return tracks


def generate(dataset: SyntheticDataset, seed: int, out: Path = Path("data/raw"),
             progress: bool = True) -> Summary:
    """Write clips/, manifest.csv and labels.json to `out`, all or nothing.

    Raises ParamsError for a bad dataset config, tts.MissingToolError when an
    engine is not installed, FetchError when a label or split ends up empty.
    A clip the engine fails on is reported on stderr, skipped and listed.
    """
    start = time.perf_counter()
    check(dataset)
    clips = plan(dataset, seed)
    train_voices = list(dict.fromkeys(c.voice for c in clips if c.split == "train"))
    sentences = babble_plan(dataset, seed, train_voices)
    out = Path(out)
    artifacts.clear_stale(out)
    with artifacts.staged_dir(out) as tmp:
        for label in labels(dataset):
            (tmp / "clips" / label).mkdir(parents=True)
        done, skipped, truncated, sources = _render_all(clips, sentences, dataset, seed, tmp,
                                                         progress)
        counts = {s: {label: 0 for label in labels(dataset)} for s in SPLITS}
        for clip in done:
            counts[clip.split][clip.label] += 1
        check_counts(counts, len(skipped), FetchError, "see the errors above",
                     required={c.label for c in clips if c.split == "train"})
        write_manifest(tmp / "manifest.csv",
                       [Row(c.path, c.label, c.split, speaker(c.voice)) for c in done])
        (tmp / "labels.json").write_text(json.dumps(labels(dataset)) + "\n")
    origin = f"{len(voices(dataset))} voices ({len({speaker(v) for v in voices(dataset)})} speakers)"
    return Summary(out, origin, counts, sorted(skipped), sorted(sources, key=lambda s: s.path),
                   time.perf_counter() - start, notes=(f"{truncated} truncated to the clip length",), column=5)


def check(dataset: SyntheticDataset) -> None:
    """Validate what params.py cannot know: voices, label names, ranges."""
    slugs: dict[str, str] = {}
    for voice in voices(dataset):
        key = "espeak_variants" if voice.startswith("espeak") else "flite_voices"
        if _slug(voice) in slugs:
            raise ParamsError(f"dataset.{key}: {voice.partition(':')[2]!r} is listed twice")
        slugs[_slug(voice)] = voice
    if dataset.espeak_variants and not dataset.espeak_accents:
        raise ParamsError("dataset.espeak_accents: empty, but espeak_variants lists voices")
    engines = (["espeak"] if dataset.espeak_variants else []) + (
        ["flite"] if dataset.flite_voices else [])
    tts.check_tools([tts.Voice(engine, "") for engine in engines])
    _check_names("espeak_accents", dataset.espeak_accents if dataset.espeak_variants else (),
                 tts.check_espeak_language)
    _check_names("espeak_variants", dataset.espeak_variants, tts.check_espeak_variant)
    _check_names("flite_voices", dataset.flite_voices,
                 lambda name: tts.check_voice(tts.Voice("flite", name)))
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
    for key in ("speed_range", "pitch_range", "gain_db_range", "lead_silence_s_range",
                "noise.snr_db_range", "noise.silence_dbfs_range", "noise.babble_talkers"):
        lo, hi = _get(dataset, key)
        if lo > hi:
            raise ParamsError(f"dataset.{key}: [{lo}, {hi}] is not [low, high]")
    if dataset.speed_range[0] <= 0:
        raise ParamsError("dataset.speed_range: must be above 0")
    if dataset.lead_silence_s_range[0] < 0:
        raise ParamsError("dataset.lead_silence_s_range: must not be negative")
    _check_noise(dataset)


def _check_noise(dataset: SyntheticDataset) -> None:
    settings = dataset.noise
    if not settings.kinds:
        raise ParamsError(f"dataset.noise.kinds: empty; use some of {', '.join(NOISE_KINDS)}")
    for i, kind in enumerate(settings.kinds):
        if kind not in NOISE_KINDS:
            raise ParamsError(f"dataset.noise.kinds[{i}]: {kind!r} is not one of "
                              f"{', '.join(NOISE_KINDS)}")
    if "babble" not in settings.kinds:
        return
    if settings.babble_talkers[0] < 1:
        raise ParamsError("dataset.noise.babble_talkers: at least one talker")
    if not settings.babble_sentences:
        raise ParamsError("dataset.noise.babble_sentences: empty, but noise.kinds has babble")
    for i, sentence in enumerate(settings.babble_sentences):
        said = set(re.findall(r"[a-z0-9']+", sentence.lower()))
        spoken = sorted(said & {k.lower() for k in dataset.keywords})
        if spoken:
            raise ParamsError(f"dataset.noise.babble_sentences[{i}]: says the keyword "
                              f"{spoken[0]!r}; background must not say a keyword")


def _check_names(key: str, names, check_one) -> None:
    for i, name in enumerate(names):
        try:
            check_one(name)
        except ValueError as err:
            raise ParamsError(f"dataset.{key}[{i}]: {err}") from None


# --- rendering across processes -------------------------------------------

_state: dict = {}


def _init_worker(dataset: SyntheticDataset, seed: int, root: Path, scratch: Path) -> None:
    workdir = Path(scratch) / str(os.getpid())
    workdir.mkdir(exist_ok=True)
    _state.update(dataset=dataset, seed=seed, root=Path(root), workdir=workdir,
                  babble_file=Path(scratch) / "babble.npy", babble=None)


def _render_sentence(sentence: Sentence) -> tuple[Sentence, np.ndarray | None, str | None]:
    """One babble sentence at the dataset rate and RMS 1, or the engine's error."""
    dataset = _state["dataset"]
    try:
        samples, rate = tts.synthesize(tts.parse_voice(sentence.voice), sentence.text,
                                       sentence.speed, sentence.pitch, _state["workdir"])
    except tts.TTSError as err:
        return sentence, None, str(err)
    x = _trim(audio.resample(samples, rate, dataset.sample_rate), dataset.sample_rate)
    return sentence, (x / _rms(x)).astype(np.float32), None


def _render_one(clip: Clip) -> tuple[Clip, bool, SourceFile | None, str | None]:
    """Render and write one clip; an engine failure comes back as a message."""
    if _state["babble"] is None and _state["babble_file"].exists():
        _state["babble"] = np.load(_state["babble_file"])
    try:
        pcm, truncated, source = render(clip, _state["dataset"], _state["seed"],
                                        _state["workdir"], _state["babble"])
    except tts.TTSError as err:
        return clip, False, None, str(err)
    audio.write_wav(_state["root"] / clip.path, pcm, _state["dataset"].sample_rate)
    return clip, truncated, source, None


def _render_all(clips, sentences, dataset, seed, root, progress):
    skipped = []

    def report(clip, result):
        bar.update()
        if result[3] is not None:
            tqdm.write(f"fetch: skipped {clip.voice} {clip.word!r} (take {clip.take}): {result[3]}",
                       file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="keyspot-tts-") as scratch, \
            tqdm(total=len(clips), desc="fetch", unit="clip", file=sys.stderr, disable=not progress) as bar:
        pool = dict(workers=dataset.workers, initializer=_init_worker, initargs=(dataset, seed, root, Path(scratch)))
        if sentences:
            renders = []
            results = workers.run(_render_sentence, sentences, **pool,
                                  crashed=lambda sentence: (sentence, None, "crashed its worker"))
            for sentence, x, error in results:
                if error is None:
                    renders.append(x)
                else:
                    skipped.append((sentence.path, error))
                    tqdm.write(f"fetch: skipped babble sentence {sentence.voice} "
                               f"{sentence.text!r}: {error}", file=sys.stderr)
            if not renders:
                raise FetchError("no babble sentence could be rendered; see the errors above")
            np.save(Path(scratch) / "babble.npy", mix_babble(renders, dataset, seed))
        results = workers.run(_render_one, clips, **pool, chunk=4, on_result=report,
                              crashed=lambda clip: (clip, False, None, "crashed its worker"))
    done, truncated, sources = [], 0, []
    for clip, was_truncated, source, error in results:
        if error is not None:
            skipped.append((clip.path, error))
            continue
        done.append(clip)
        truncated += was_truncated
        if source is not None:
            sources.append(source)
    return done, skipped, truncated, sources


# --- helpers -----------------------------------------------------------------

def _unknown_words(dataset: SyntheticDataset, seed: int, voice: str) -> list[str]:
    """unknown_per_voice words for this voice: whole shuffled passes, so balanced."""
    rng = seeded_rng(seed, "unknown-words", voice)
    words: list[str] = []
    while len(words) < dataset.unknown_per_voice:
        words += [dataset.unknown_words[i] for i in rng.permutation(len(dataset.unknown_words))]
    return words[:dataset.unknown_per_voice]


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


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
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) or 1.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


SOURCE = Source("synthetic", SyntheticDataset, generate)
