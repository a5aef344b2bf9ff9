"""The default, offline dataset: keywords spoken by several speech engines,
in rooms, through microphones, over the backgrounds of real places.

Engines (keyspot.data.tts, all pinned by the project, none from the
distribution): espeak-ng variants, each a voice that speaks each take in an
accent drawn from `espeak_accents`; flite voices; SVOX Pico voices; Piper's
neural voices; Kokoro-82M's neural voices; GnuSpeech's articulatory
voices (none by default). One whole engine (`held_out_engine`, Pico by
default) is never used in training or validation: its clips are the
`test_engine` split, the unseen-engine test.

Each take draws its speed, pitch, volume, intonation (a final `.`, `?`, `!`
or `,`), leading silence and background (white, pink or brown noise, or
babble: sentences spoken by several training voices at once) at a drawn
SNR; some are said in context (another word just before or after, cut by
the window as in continuous speech), heard in a simulated room, and picked
up by a drawn microphone and channel (keyspot.data.acoustics). `_silence_`
clips are what a quiet room and a microphone sound like (keyspot.data.quiet).
The manifest's details column records all of it for every clip.

Every clip is planned up front (voice, label, word, take, split) and rendered
by generators seeded from a hash of (seed, voice, label, word, take): one for
the speech and background, one each for the context, room and microphone,
so that changing one of those settings leaves the others' draws alone. The
bytes of a clip therefore depend on nothing else: not on the worker count,
not on the order in which the workers finish. Spoken takes are cached
(keyspot.data.speech_cache), so a new noise or room setting does not
synthesise the speech again.

Splits are by speaker (the voice; kal16 is kal at another rate), so a model
is always tested on voices it never heard, not even in the babble. Adding a
voice leaves the other speakers in their splits (split_voices).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from keyspot import artifacts, audio
from keyspot.data import acoustics, quiet, speech_cache, tts, workers
from keyspot.data.engines import VOICE_KEYS, engine
from keyspot.data.manifest import ALL_SPLITS, HELD_OUT_ENGINE, SPLITS, Row, write_manifest
from keyspot.data.report import SourceFile
from keyspot.data.sentences import SENTENCES, SentenceRow, write_sentences
from keyspot.data.source import Source, SourceError, Summary, check_counts, seeded_rng
from keyspot.labels import SILENCE, UNKNOWN
from keyspot.params import ParamsError
from keyspot.schema import FRACTION, NOT_NEGATIVE, POSITIVE, Range, fail, setting

PEAK_DBFS = -1.0                   # words are normalised here before the gain
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}   # power ~ 1/f^a
NOISE_KINDS = (*NOISE_EXPONENTS, "babble")
SILENCE_KINDS = ("mix", *quiet.KINDS)   # mix: the spoken clips' noise kinds mixed, at a low level
INTONATIONS = (".", "?", "!", ",")  # statement, question, exclamation, continuation
# The same speaker at another sample rate: kept in one split.
FLITE_SPEAKERS = {"kal16": "kal"}
BABBLE_RENDERS = 16                # sentences rendered for the babble
BABBLE_TRACKS = 8                  # babble recordings mixed from them
BABBLE_SECONDS = 4.0
BABBLE_TALKER_DB = (-6.0, 0.0)     # level of each talker in the mix
SENTENCE_PAD_SECONDS = 0.25        # quiet either side of a stream sentence, for its room's tail

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9'_-]*$")


class FetchError(SourceError):
    """Generation finished but left a label or split without clips."""


@dataclasses.dataclass
class Noise:
    """Background under the spoken clips and in _silence_."""
    kinds: tuple[str, ...] = ("white", "pink", "brown", "babble")  # one drawn per spoken clip; _silence_ mixes them
    snr_db_range: tuple[float, float] = setting((12.0, 40.0), ordered=True)      # against the word's RMS
    silence_dbfs_range: tuple[float, float] = setting((-75.0, -25.0), ordered=True)  # RMS of the _silence_ clips
    # One drawn per _silence_ clip: see keyspot/data/quiet.py (and `mix`).
    silence_kinds: tuple[str, ...] = SILENCE_KINDS
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
class Context:
    """Words said just before or after the keyword, inside its window, as in
    "front left" or "turn it off now"; the window may cut them."""
    prob: float = setting(0.3, allowed=FRACTION)   # of spoken clips
    gap_s_range: tuple[float, float] = setting((0.0, 0.25), allowed=NOT_NEGATIVE, ordered=True)
    level_db_range: tuple[float, float] = setting((-9.0, 3.0), ordered=True)  # against the keyword
    words: tuple[str, ...] = ("front", "rear", "turn", "it", "now", "the", "please", "then", "and",
                              "move", "light", "volume", "a", "set", "speaker", "channel", "okay", "all")


@dataclasses.dataclass
class StreamSentences:
    """What each streamed split's voices read, none shared: calibration on
    the validation stream must not have heard what the test streams say.
    The fields are named as the splits are (test_engine: HELD_OUT_ENGINE)."""
    val: tuple[str, ...] = (
        "The train to the city leaves at half past seven.",
        "Please water the plants while we are away.",
        "My sister bought a new bicycle last week.",
        "Is there any coffee in the kitchen?",
        "The library closes early every Sunday.",
        "We painted the bedroom a pale shade of blue.",
        "Could you help me carry these boxes inside?",
        "The soup needs a little more pepper.",
        "Our neighbours have a very friendly dog.",
        "I forgot to bring an umbrella this morning.",
        "The printer in the office is out of paper.",
        "We could meet at the cafe around noon.",
    )
    test: tuple[str, ...] = (
        "Could you pass me the salt and pepper, please?",
        "The weather report says it will be sunny tomorrow.",
        "I think we should leave a little earlier tonight.",
        "Her brother works at a hospital near the station.",
        "Remind me to call the plumber after lunch.",
        "The kids are playing football in the park.",
        "We need more milk, eggs and some bread.",
        "That film was much better than I expected.",
        "Make the music a bit quieter, the baby is asleep.",
        "Where did you put the keys to the car?",
        "The meeting has moved to Thursday afternoon.",
        "Dinner will be ready in about twenty minutes.",
    )
    test_engine: tuple[str, ...] = (
        "The children built a snowman in the garden.",
        "Have you seen my reading glasses anywhere?",
        "The bakery sells fresh bread every morning.",
        "It was raining when we arrived at the hotel.",
        "Please close the window, it is getting cold.",
        "He spent the whole weekend fixing the fence.",
        "The museum has a new exhibition about ships.",
        "We should buy a present for her birthday.",
        "The cat is sleeping in the sunny corner.",
        "My phone battery is almost empty again.",
        "They are planning a trip to the mountains.",
        "The bus was late because of the traffic.",
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
    # Near misses of the keywords, also `_unknown_`, so that the model learns
    # to reject them. Every voice says each of them near_miss_takes times
    # (drawn among the unknown words, a voice said each one about half the
    # time, and a stream then fired on "let" and "town"). Once: three times
    # taught the model to reject the natural voices' keywords too (Pico's
    # "go" went to `_unknown_`, as "goal" or "goat" would), and once misses
    # fewer keywords on the unseen speakers' stream at every false-accept
    # rate. Not homophones ("know", "write"): they sound exactly like "no"
    # and "right", so no model can reject them, and as `_unknown_` they only
    # teach it to doubt the keyword.
    near_miss_words: tuple[str, ...] = (
        "lift", "nope", "dawn", "goal", "often", "yet", "cup", "town",
        "let", "bright", "own", "stock", "loft", "goat", "oak", "yell", "snow", "scoff")
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
    pico_voices: tuple[str, ...] = ("en-US", "en-GB")   # SVOX Pico's English voices
    # Piper's neural voices, each from a pinned package that carries its model
    # (keyspot/data/tts/piper.py).
    piper_voices: tuple[str, ...] = ("en_US-joe-medium",)
    # Kokoro-82M's voices (keyspot/data/tts/kokoro.py), speaking English: all
    # 54 of them by default (American, British, and speakers of seven other
    # languages with their accents), or an even blend of some joined by '+'
    # (not with its own parts: splits keep speakers apart, and a blend
    # sounds partly like each of them).
    kokoro_voices: tuple[str, ...] = tts.kokoro.VOICES
    # GnuSpeech's articulatory voices (keyspot/data/tts/gnuspeech.py): male,
    # female, large_child, small_child, baby. None by default: its four
    # speaking voices in training moved the unseen-engine test by nothing
    # measurable (0.525 -> 0.521) and cost about two minutes of fetch.
    gnuspeech_voices: tuple[str, ...] = ()
    # Every voice of this engine is the test_engine split, never heard in
    # training or validation; "" uses every engine for train, val and test.
    held_out_engine: str = setting("pico", choices=("", *VOICE_KEYS))
    # Takes of each keyword per held-out voice; its unknown words and near
    # misses scale alike, from unknown_per_voice and near_miss_takes.
    held_out_takes_per_keyword: int = setting(64, allowed=Range(low=1))
    # Every voice of these engines is a training voice; split_fractions share
    # out the others. Natural voices are few, and each one heard in training
    # moved the unseen engine more than it would have told as a test voice
    # (Kokoro's five voices in training instead of three: 0.5936 -> 0.6288 on
    # the same Pico clips). The unseen-speaker test then holds the other
    # engines' voices.
    training_engines: tuple[str, ...] = ("piper", "kokoro")
    # Each voice of training_engines says its keywords, unknown words and
    # near misses this many times as often as the other voices: new takes,
    # as other speeds and pitches, where train.engine_weights counts the same
    # clips again.
    training_engine_takes: int = setting(1, allowed=Range(low=1))
    # Size: clips per voice = keywords x takes + unknown + near misses x takes + silence.
    takes_per_keyword: int = setting(16, allowed=Range(low=1))
    # Voices of these engines say each keyword this many times instead, and
    # unknown words and near misses in proportion (silence as any voice): an
    # engine with many voices and slow takes trades takes per voice for
    # voices, which did more for unseen voices than takes.
    engine_takes_per_keyword: dict[str, int] = setting({"kokoro": 1}, allowed=Range(low=1))
    unknown_per_voice: int = setting(32, allowed=NOT_NEGATIVE)   # drawn among unknown_words
    near_miss_takes: int = setting(1, allowed=NOT_NEGATIVE)      # of each near-miss word
    # Sentences each val and test voice reads (a held-out engine's voice in
    # proportion, as held_out_takes_per_keyword): data/sentences/,
    # which the streams stage lays between the words as the talk a device
    # overhears. Never clips, features or training. A keyword here is refused.
    sentences_per_voice: int = setting(3, allowed=NOT_NEGATIVE)
    stream_sentences: StreamSentences = dataclasses.field(default_factory=StreamSentences)
    silence_per_voice: int = setting(9, allowed=NOT_NEGATIVE)
    # Each take draws from these ranges.
    speed_range: tuple[float, float] = setting((0.75, 1.35), allowed=POSITIVE, ordered=True)  # relative speaking rate
    # espeak-ng pitch 0-99; flite maps it to an f0 shift.
    pitch_range: tuple[float, float] = setting((25.0, 75.0), ordered=True)
    gain_db_range: tuple[float, float] = setting((-18.0, 0.0), ordered=True)  # the word's peak, below -1 dBFS
    # Before the word (less when the word would not fit).
    lead_silence_s_range: tuple[float, float] = setting((0.0, 0.4), allowed=NOT_NEGATIVE, ordered=True)
    noise: Noise = dataclasses.field(default_factory=Noise)
    context: Context = dataclasses.field(default_factory=Context)
    rooms: acoustics.Rooms = dataclasses.field(default_factory=acoustics.Rooms)
    microphone: acoustics.Microphone = dataclasses.field(default_factory=acoustics.Microphone)
    split_fractions: dict[str, float] = setting({"val": 0.15, "test": 0.2}, allowed=FRACTION)  # of the speakers
    workers: int = setting(0, allowed=NOT_NEGATIVE)   # processes; 0 = all cores

    def validate(self, key: str) -> None:
        if not self.keywords:
            fail(f"{key}.keywords", "at least one keyword is needed")
        if set(self.split_fractions) != {"val", "test"}:
            fail(f"{key}.split_fractions", "give exactly the keys val and test")
        if sum(self.split_fractions.values()) >= 1.0:
            fail(f"{key}.split_fractions", "val + test must leave voices for train")
        engines = {e: getattr(self, k) for e, k in VOICE_KEYS.items()}
        if self.held_out_engine and not engines[self.held_out_engine]:
            fail(f"{key}.held_out_engine", f"{self.held_out_engine} has no voices to hold out; "
                 f"list some in {key}.{VOICE_KEYS[self.held_out_engine]} or set it to ''")
        unknown = sorted(set(self.engine_takes_per_keyword) - set(VOICE_KEYS))
        if unknown:
            fail(f"{key}.engine_takes_per_keyword", f"no speech engine is called {', '.join(unknown)}; "
                 f"use some of {', '.join(VOICE_KEYS)}")
        for name in self.training_engines:
            if name not in VOICE_KEYS:
                fail(f"{key}.training_engines", f"{name!r} is not one of {', '.join(VOICE_KEYS)}")
            if name == self.held_out_engine:
                fail(f"{key}.training_engines", f"{name} is the held-out engine, never heard in training; "
                     f"take it out of one of {key}.training_engines and {key}.held_out_engine")
        shared = (self.held_out_engine, *self.training_engines)
        if sum(len(set(v)) for e, v in engines.items() if e not in shared) < 3:
            fail(", ".join(f"{key}.{k}" for k in VOICE_KEYS.values()),
                 f"at least three voices in all outside the held-out engine and {key}.training_engines "
                 "(train, val, test)")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One planned clip; `word` is empty for background noise.

    `voice` is `espeak-ng:<variant>` (the accent is drawn per clip),
    `flite:<voice>`, `pico:<language>`, `piper:<voice>`, `kokoro:<voice>` or
    `gnuspeech:<voice>`.
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
            + [f"flite:{v}" for v in dataset.flite_voices]
            + [f"pico:{v}" for v in dataset.pico_voices]
            + [f"piper:{v}" for v in dataset.piper_voices]
            + [f"kokoro:{v}" for v in dataset.kokoro_voices]
            + [f"gnuspeech:{v}" for v in dataset.gnuspeech_voices])


def speaker(voice: str) -> str:
    """The person behind a voice: what splits keep apart."""
    kind, _, name = voice.partition(":")
    same = {"flite": FLITE_SPEAKERS, "kokoro": tts.kokoro.SAME_SPEAKER}.get(kind, {})
    return f"{kind}:{same.get(name, name)}"


def split_voices(speakers, fractions: dict[str, float], seed: int) -> dict[str, str]:
    """speaker -> split, at least one speaker each in val and test.

    Speakers are ranked by a hash of (seed, speaker), not shuffled as a
    list: a voice added to the dataset takes its own place in the ranking,
    so the others keep their splits (but for the one next to each split's
    boundary, which its arrival may push across), and the test splits of two
    datasets stay comparable.
    """
    order = sorted(dict.fromkeys(speakers), key=lambda s: hashlib.sha256(
        "\x1f".join((str(seed), "voice-split", s)).encode()).digest())
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
    fixed = {**{e: "train" for e in dataset.training_engines}, dataset.held_out_engine: HELD_OUT_ENGINE}
    splits = split_voices([speaker(v) for v in voices(dataset) if engine(v) not in fixed],
                          dataset.split_fractions, seed)
    splits.update({speaker(v): fixed[engine(v)] for v in voices(dataset) if engine(v) in fixed})
    clips = []
    for voice in voices(dataset):
        split = splits[speaker(voice)]
        scale = dataset.training_engine_takes if engine(voice) in dataset.training_engines else 1
        held_out = split == HELD_OUT_ENGINE
        # A held-out voice (never a training engine's) says every word
        # held_out_takes_per_keyword / takes_per_keyword times as often as a
        # test voice: the test split's mix of labels, in more clips, since
        # the held-out engine has few voices. It says every near miss.
        per_keyword = dataset.held_out_takes_per_keyword if held_out else \
            dataset.engine_takes_per_keyword.get(engine(voice), dataset.takes_per_keyword)
        unknown = round(dataset.unknown_per_voice * per_keyword / dataset.takes_per_keyword) * scale
        near_takes = dataset.near_miss_takes * scale
        if held_out and near_takes:
            near_takes = max(1, round(near_takes * per_keyword / dataset.takes_per_keyword))
        for keyword in dataset.keywords:
            clips += [Clip(voice, keyword, keyword, t, split) for t in range(per_keyword * scale)]
        for t, word in enumerate(_unknown_words(dataset, seed, voice, unknown)):
            clips.append(Clip(voice, UNKNOWN, word, t, split))
        said = dataset.takes_per_keyword if held_out else per_keyword
        for word in _near_misses(dataset, seed, voice, said):
            clips += [Clip(voice, UNKNOWN, word, t, split) for t in range(near_takes)]
        clips += [Clip(voice, SILENCE, "", t, split) for t in range(dataset.silence_per_voice)]
    return clips


def tts_voice(voice: str, rng: np.random.Generator, dataset: SyntheticDataset) -> tts.Voice:
    """The engine voice of one take: an espeak-ng variant gets a drawn accent."""
    name = voice.partition(":")[2]
    draw = rng.random()   # drawn for every engine, so that the draws after it line up
    if engine(voice) != "espeak":
        return tts.Voice(engine(voice), name)
    accent = dataset.espeak_accents[int(draw * len(dataset.espeak_accents))]
    return tts.Voice("espeak", f"{accent}+{name}")


def render(clip: Clip, dataset: SyntheticDataset, seed: int, rooms: list[acoustics.Room],
           babble: np.ndarray | None = None) -> tuple[np.ndarray, bool, SourceFile | None, str]:
    """int16 PCM of one clip, whether the word was longer than the clip, the
    word as the engine rendered it (None for `_silence_`), and how the clip
    was made (the manifest's details)."""
    rng = seeded_rng(seed, clip.voice, clip.label, clip.word, clip.take)
    mic_rng = seeded_rng(seed, "microphone", clip.voice, clip.label, clip.word, clip.take)
    n = round(dataset.sample_rate * dataset.clip_seconds)
    if clip.label == SILENCE:
        kind = dataset.noise.silence_kinds[int(rng.integers(len(dataset.noise.silence_kinds)))]
        if kind == "mix":
            out = background(rng, n, dataset.noise, babble)
        else:
            out = quiet.render(kind, rng, n, dataset.sample_rate, dataset.noise.silence_dbfs_range)
        details = [f"silence={kind}"]
        return _finish(out, mic_rng, dataset, details), False, None, ";".join(details)
    # Every draw happens, in this order, whatever the voice and the noise kind.
    voice = tts_voice(clip.voice, rng, dataset)
    speed = rng.uniform(*dataset.speed_range)
    pitch = rng.uniform(*dataset.pitch_range)
    gain_db = rng.uniform(*dataset.gain_db_range)
    lead_s = rng.uniform(*dataset.lead_silence_s_range)
    mark = INTONATIONS[int(rng.integers(len(INTONATIONS)))]
    kind = dataset.noise.kinds[int(rng.integers(len(dataset.noise.kinds)))]
    snr_db = rng.uniform(*dataset.noise.snr_db_range)
    word, rate = _spoken(voice, clip.word + mark, speed, pitch, dataset.sample_rate)
    source = SourceFile(clip.path, word.shape[0] / dataset.sample_rate, rate, 1, tts.program(voice.engine))
    word = word / np.abs(word).max() * 10.0 ** ((PEAK_DBFS + gain_db) / 20.0)
    truncated = word.shape[0] > n
    word = word[:n]
    offset = min(round(lead_s * dataset.sample_rate), n - word.shape[0])
    out = np.zeros(n)
    out[offset:offset + word.shape[0]] = word
    details = [str(voice), f"speed={speed:.2f}", f"pitch={pitch:.0f}", f"gain={gain_db:.1f}dB"]
    details += _add_context(out, offset, word, voice, clip, dataset, seed)
    room_rng = seeded_rng(seed, "room", clip.voice, clip.label, clip.word, clip.take)
    in_room, pick = room_rng.random(), int(room_rng.integers(max(len(rooms), 1)))
    pcm = _heard(out, word, _drawn_room(rooms, in_room, pick, dataset), kind, snr_db, rng, mic_rng, dataset,
                 babble, details)
    return pcm, truncated, source, ";".join(details)


def _drawn_room(rooms: list[acoustics.Room], in_room: float, pick: int, dataset: SyntheticDataset):
    """The room a take is heard in, from its draws; None for dry."""
    return rooms[pick] if rooms and in_room < dataset.rooms.prob else None


def _heard(out: np.ndarray, speech: np.ndarray, room: acoustics.Room | None, kind: str, snr_db: float,
           rng: np.random.Generator, mic_rng: np.random.Generator, dataset: SyntheticDataset,
           babble: np.ndarray | None, details: list[str]) -> np.ndarray:
    """`out` (the speech laid in quiet) in its room, over its background
    snr_db below the speech, through its microphone, as int16; what was done
    goes on `details`."""
    if room is not None:
        out = acoustics.reverberate(out, room)
        details.append(room.describe())
    out += noise(rng, out.shape[0], kind, babble) * _rms(speech) / 10.0 ** (snr_db / 20.0)
    details.append(f"noise={kind}@{snr_db:.1f}dB")
    return _finish(out, mic_rng, dataset, details)


def _finish(out: np.ndarray, rng: np.random.Generator, dataset: SyntheticDataset, details: list[str]) -> np.ndarray:
    """The clip through its drawn microphone, as int16."""
    response = acoustics.draw_response(rng, dataset.microphone, dataset.sample_rate)
    if response is not None and np.any(out):
        out = acoustics.apply_response(out, response, dataset.sample_rate)
        details.append(response.describe())
    return audio.to_int16(out)


def _spoken(voice: tts.Voice, text: str, speed: float, pitch: float, sample_rate: int) -> tuple[np.ndarray, int]:
    """The take at the dataset's rate (float), and the engine's own rate."""
    pcm, rate = speech_cache.take(voice, text, speed, pitch)
    return audio.resample(pcm.astype(np.float32) / 32768.0, rate, sample_rate).astype(np.float64), rate


def _add_context(out: np.ndarray, offset: int, word: np.ndarray, voice: tts.Voice, clip: Clip,
                 dataset: SyntheticDataset, seed: int) -> list[str]:
    """Maybe say another word just before or after the keyword, in place; the
    window cuts it where it does not fit. Returns its details."""
    settings = dataset.context
    rng = seeded_rng(seed, "context", clip.voice, clip.label, clip.word, clip.take)
    said, after = rng.random(), rng.random() < 0.5
    text = settings.words[int(rng.integers(len(settings.words)))] if settings.words else ""
    gap = round(rng.uniform(*settings.gap_s_range) * dataset.sample_rate)
    level_db = rng.uniform(*settings.level_db_range)
    speed, pitch = rng.uniform(*dataset.speed_range), rng.uniform(*dataset.pitch_range)
    if not text or said >= settings.prob:
        return []
    try:
        other, _ = _spoken(voice, text, speed, pitch, dataset.sample_rate)
    except tts.TTSError:
        return []   # the keyword stands alone; the clip is still good
    other = other / np.abs(other).max() * np.abs(word).max() * 10.0 ** (level_db / 20.0)
    n = out.shape[0]
    if after:
        start = offset + word.shape[0] + gap
        piece = other[:max(n - start, 0)]
    else:
        start = offset - gap - other.shape[0]
        piece = other[max(-start, 0):]
        start = max(start, 0)
        piece = piece[:max(offset - gap - start, 0)]
    if not piece.shape[0]:
        return []
    out[start:start + piece.shape[0]] += piece
    return [f"context={'after' if after else 'before'}:{text}"]


def noise(rng: np.random.Generator, n: int, kind: str, babble: np.ndarray | None) -> np.ndarray:
    """n samples of one kind of background at RMS 1."""
    if kind != "babble":
        return quiet.slope_noise(rng, n, NOISE_EXPONENTS[kind])
    track = babble[int(rng.integers(babble.shape[0]))]
    x = np.resize(np.roll(track, -int(rng.integers(track.shape[0]))), n)
    return x / _rms(x)


def background(rng: np.random.Generator, n: int, settings, babble: np.ndarray | None) -> np.ndarray:
    """Background only (float): a random mix of the noise kinds at a low level."""
    weights = rng.dirichlet(np.ones(len(settings.kinds)))
    mix = sum(w * noise(rng, n, kind, babble) for w, kind in zip(weights, settings.kinds, strict=True))
    level = 10.0 ** (rng.uniform(*settings.silence_dbfs_range) / 20.0)
    return mix / _rms(mix) * level


def simulate_rooms(dataset: SyntheticDataset, seed: int) -> list[acoustics.Room]:
    """The dataset's bank of simulated rooms (none when rooms.prob is 0)."""
    if dataset.rooms.prob <= 0:
        return []
    return [acoustics.simulate_room(seeded_rng(seed, "room-bank", i), dataset.rooms, dataset.sample_rate)
            for i in range(dataset.rooms.count)]


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


@dataclasses.dataclass(frozen=True)
class StreamSentence:
    """One sentence a held-out voice reads for the streams."""
    voice: str
    split: str
    index: int
    text: str

    @property
    def path(self) -> str:
        return f"{self.split}/{_slug(self.voice)}_{self.index}.wav"


def sentence_plan(dataset: SyntheticDataset, seed: int, clips: list[Clip]) -> list[StreamSentence]:
    """Each val, test and held-out voice's sentences for the streams: its own
    drawn order of its split's stream_sentences, as many as sentences_per_voice (a
    held-out engine's voice more, as it says each keyword more)."""
    if not dataset.sentences_per_voice:
        return []
    sentences = []
    for voice, split in dict.fromkeys((c.voice, c.split) for c in clips if c.split != "train"):
        count = dataset.sentences_per_voice
        if split == HELD_OUT_ENGINE:
            count = max(1, round(count * dataset.held_out_takes_per_keyword / dataset.takes_per_keyword))
        texts = getattr(dataset.stream_sentences, split)
        order = seeded_rng(seed, "stream-sentences", voice).permutation(len(texts))
        sentences += [StreamSentence(voice, split, i, texts[order[i % len(order)]]) for i in range(count)]
    return sentences


def render_sentence(sentence: StreamSentence, dataset: SyntheticDataset, seed: int, rooms: list[acoustics.Room],
                    babble: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """int16 PCM of a stream sentence, whole, made as a clip is (prosody,
    level, room, background, microphone), and how it was made."""
    rng = seeded_rng(seed, "stream-sentence", sentence.voice, sentence.index)
    mic_rng = seeded_rng(seed, "stream-sentence-microphone", sentence.voice, sentence.index)
    voice = tts_voice(sentence.voice, rng, dataset)
    speed = rng.uniform(*dataset.speed_range)
    pitch = rng.uniform(*dataset.pitch_range)
    gain_db = rng.uniform(*dataset.gain_db_range)
    kind = dataset.noise.kinds[int(rng.integers(len(dataset.noise.kinds)))]
    snr_db = rng.uniform(*dataset.noise.snr_db_range)
    in_room, pick = rng.random(), int(rng.integers(max(len(rooms), 1)))
    speech, _ = _spoken(voice, sentence.text, speed, pitch, dataset.sample_rate)
    speech = speech / np.abs(speech).max() * 10.0 ** ((PEAK_DBFS + gain_db) / 20.0)
    pad = round(SENTENCE_PAD_SECONDS * dataset.sample_rate)
    out = np.zeros(speech.shape[0] + 2 * pad)
    out[pad:pad + speech.shape[0]] = speech
    details = [str(voice), f"speed={speed:.2f}", f"pitch={pitch:.0f}", f"gain={gain_db:.1f}dB"]
    pcm = _heard(out, speech, _drawn_room(rooms, in_room, pick, dataset), kind, snr_db, rng, mic_rng, dataset,
                 babble, details)
    return pcm, ";".join(details)


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
        done, skipped, truncated, sources, details = _render_all(clips, sentences, dataset, seed, tmp,
                                                                  progress)
        splits = [s for s in ALL_SPLITS if s in SPLITS or any(c.split == s for c in clips)]
        counts = {s: {label: 0 for label in labels(dataset)} for s in splits}
        for clip in done:
            counts[clip.split][clip.label] += 1
        check_counts(counts, len(skipped), FetchError, "see the errors above",
                     required={c.label for c in clips if c.split == "train"})
        write_manifest(tmp / "manifest.csv",
                       [Row(c.path, c.label, c.split, speaker(c.voice), details[c.path]) for c in done])
        (tmp / "labels.json").write_text(json.dumps(labels(dataset)) + "\n")
    origin = f"{len(voices(dataset))} voices ({len({speaker(v) for v in voices(dataset)})} speakers)"
    return Summary(out, origin, counts, sorted(skipped), sorted(sources, key=lambda s: s.path),
                   time.perf_counter() - start, notes=(f"{truncated} truncated to the clip length",), column=5)


def generate_sentences(dataset: SyntheticDataset, seed: int, out: Path) -> int:
    """Write the sentences the held-out voices read for the streams
    (sentence_plan) to `out` with their sentences.csv, all or nothing; how
    many. A sentence the engine fails on is reported on stderr and skipped."""
    check(dataset)
    clips = plan(dataset, seed)
    for_streams = sentence_plan(dataset, seed, clips)
    train_voices = list(dict.fromkeys(c.voice for c in clips if c.split == "train"))
    out = Path(out)
    artifacts.clear_stale(out)
    with artifacts.staged_dir(out) as tmp:
        for split in sorted({s.split for s in for_streams}):
            (tmp / split).mkdir()
        read = _render_stream_sentences(for_streams, babble_plan(dataset, seed, train_voices), dataset, seed,
                                        tmp) if for_streams else []
        write_sentences(tmp / SENTENCES, [SentenceRow(s.path, s.split, speaker(s.voice), s.text, how)
                                          for s, how in read])
    return len(read)


def check(dataset: SyntheticDataset) -> None:
    """Validate what params.py cannot know: voices, label names, ranges."""
    slugs: dict[str, str] = {}
    for voice in voices(dataset):
        key = VOICE_KEYS[engine(voice)]
        if _slug(voice) in slugs:
            raise ParamsError(f"dataset.{key}: {voice.partition(':')[2]!r} is listed twice")
        slugs[_slug(voice)] = voice
    if dataset.espeak_variants and not dataset.espeak_accents:
        raise ParamsError("dataset.espeak_accents: empty, but espeak_variants lists voices")
    tts.check_tools({engine(v) for v in voices(dataset)})
    _check_names("espeak_accents", dataset.espeak_accents if dataset.espeak_variants else (),
                 tts.espeak.check_language)
    _check_names("espeak_variants", dataset.espeak_variants, tts.espeak.check_variant)
    _check_names("flite_voices", dataset.flite_voices, tts.flite.check_voice)
    _check_names("pico_voices", dataset.pico_voices, tts.pico.check_voice)
    _check_names("piper_voices", dataset.piper_voices, tts.piper.check_voice)
    _check_names("kokoro_voices", dataset.kokoro_voices, tts.kokoro.check_voice)
    _check_names("gnuspeech_voices", dataset.gnuspeech_voices, tts.gnuspeech.check_voice)
    for kind in dataset.noise.silence_kinds:
        if kind not in SILENCE_KINDS:
            raise ParamsError(f"dataset.noise.silence_kinds: {kind!r} is not one of {', '.join(SILENCE_KINDS)}")
    said = sorted(set(dataset.context.words) & set(dataset.keywords))
    if said:
        raise ParamsError(f"dataset.context.words: {', '.join(said)} is a keyword; "
                          "a keyword's clip must say one keyword")
    for key, words in (("keywords", dataset.keywords), ("unknown_words", dataset.unknown_words),
                       ("near_miss_words", dataset.near_miss_words)):
        for i, word in enumerate(words):
            if not _LABEL_RE.match(word):
                raise ParamsError(f"dataset.{key}[{i}]: {word!r} must be one word of letters, "
                                  "digits, ' _ or -, not starting with _ (it names a folder)")
        if len(set(words)) != len(words):
            raise ParamsError(f"dataset.{key}: lists a word twice")
    for key, words in (("unknown_words", dataset.unknown_words), ("near_miss_words", dataset.near_miss_words)):
        both = sorted(set(dataset.keywords) & set(words))
        if both:
            raise ParamsError(f"dataset.{key}: {', '.join(both)} also a keyword")
    # A word in both lists would name two clips alike (voice_word_take).
    both = sorted(set(dataset.unknown_words) & set(dataset.near_miss_words))
    if both:
        raise ParamsError(f"dataset.near_miss_words: {', '.join(both)} also in unknown_words; list it once")
    if dataset.unknown_per_voice and not dataset.unknown_words:
        raise ParamsError("dataset.unknown_words: empty, but unknown_per_voice is above 0")
    for key in ("takes_per_keyword", "unknown_per_voice", "near_miss_takes", "silence_per_voice", "workers"):
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
    _check_stream_sentences(dataset)


def _check_stream_sentences(dataset: SyntheticDataset) -> None:
    """Each split that reads sentences has its own, none of them a keyword's."""
    texts_of = dataclasses.asdict(dataset.stream_sentences)
    if dataset.sentences_per_voice:
        for split in ("val", "test") + ((HELD_OUT_ENGINE,) if dataset.held_out_engine else ()):
            if not texts_of[split]:
                raise ParamsError(f"dataset.stream_sentences.{split}: no sentences, but sentences_per_voice "
                                  "is above 0; list some, or set sentences_per_voice to 0")
    read_by: dict[str, str] = {}
    for split, texts in texts_of.items():
        _check_sentences(f"stream_sentences.{split}", texts, dataset.keywords)
        for text in texts:
            if read_by.setdefault(text, split) != split:
                raise ParamsError(f"dataset.stream_sentences.{split}: {text!r} is also in {read_by[text]}; "
                                  "each split reads its own, so that calibration never hears a test's sentence")


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
    _check_sentences("noise.babble_sentences", settings.babble_sentences, dataset.keywords)


def _check_sentences(key: str, sentences, keywords) -> None:
    """ParamsError for a sentence that says a keyword: in the background a
    clip's label would lie, and in a stream the ground truth would."""
    for i, sentence in enumerate(sentences):
        said = set(re.findall(r"[a-z0-9']+", sentence.lower()))
        spoken = sorted(said & {k.lower() for k in keywords})
        if spoken:
            raise ParamsError(f"dataset.{key}[{i}]: says the keyword {spoken[0]!r} ({sentence!r}); "
                              "use a sentence without keywords")


def _check_names(key: str, names, check_one) -> None:
    for i, name in enumerate(names):
        try:
            check_one(name)
        except ValueError as err:
            raise ParamsError(f"dataset.{key}[{i}]: {err}") from None


# --- rendering across processes -------------------------------------------

_state: dict = {}


def _init_worker(dataset: SyntheticDataset, seed: int, root: Path, scratch: Path) -> None:
    tts.run_wasm_here()   # a worker forks nothing that runs flite or GnuSpeech
    _state.update(dataset=dataset, seed=seed, root=Path(root), babble_file=Path(scratch) / "babble.npy",
                  rooms_file=Path(scratch) / "rooms.npz", babble=None, rooms=None)


def _render_sentence(sentence: Sentence) -> tuple[Sentence, np.ndarray | None, str | None]:
    """One babble sentence at the dataset rate and RMS 1, or the engine's error."""
    dataset = _state["dataset"]
    try:
        x, _ = _spoken(tts.parse_voice(sentence.voice), sentence.text, sentence.speed, sentence.pitch,
                       dataset.sample_rate)
    except tts.TTSError as err:
        return sentence, None, str(err)
    return sentence, (x / _rms(x)).astype(np.float32), None


def _load_worker_assets() -> None:
    """The babble and the rooms, from the scratch folder, once per worker."""
    if _state["babble"] is None and _state["babble_file"].exists():
        _state["babble"] = np.load(_state["babble_file"])
    if _state["rooms"] is None:
        _state["rooms"] = _load_rooms(_state["rooms_file"])


def _render_one(clip: Clip) -> tuple[Clip, bool, SourceFile | None, str | None, str]:
    """Render and write one clip; an engine failure comes back as a message."""
    _load_worker_assets()
    try:
        pcm, truncated, source, details = render(clip, _state["dataset"], _state["seed"],
                                                 _state["rooms"], _state["babble"])
    except tts.TTSError as err:
        return clip, False, None, str(err), ""
    audio.write_wav(_state["root"] / clip.path, pcm, _state["dataset"].sample_rate)
    return clip, truncated, source, None, details


def _render_stream_sentence(sentence: StreamSentence) -> tuple[StreamSentence, str | None, str]:
    """Render and write one stream sentence: (it, error or None, details)."""
    _load_worker_assets()
    try:
        pcm, details = render_sentence(sentence, _state["dataset"], _state["seed"], _state["rooms"],
                                       _state["babble"])
    except tts.TTSError as err:
        return sentence, str(err), ""
    audio.write_wav(_state["root"] / sentence.path, pcm, _state["dataset"].sample_rate)
    return sentence, None, details


def _save_rooms(path: Path, rooms: list[acoustics.Room]) -> None:
    np.savez(path, **{f"rir{i}": r.rir for i, r in enumerate(rooms)},
             meta=np.array([[r.rt60_s, *r.size_m, r.distance_m] for r in rooms]).reshape(-1, 5))


def _load_rooms(path: Path) -> list[acoustics.Room]:
    if not path.exists():
        return []
    with np.load(path) as saved:
        return [acoustics.Room(float(m[0]), (float(m[1]), float(m[2]), float(m[3])), float(m[4]), saved[f"rir{i}"])
                for i, m in enumerate(saved["meta"])]


def _prepare_scratch(scratch: Path, sentences: list[Sentence], dataset, seed, pool: dict) -> list[tuple[str, str]]:
    """The rooms and the babble, in `scratch` for the workers; the babble
    sentences skipped, with why."""
    skipped = []
    _save_rooms(scratch / "rooms.npz", simulate_rooms(dataset, seed))
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
        np.save(scratch / "babble.npy", mix_babble(renders, dataset, seed))
    return skipped


def _render_all(clips, sentences, dataset, seed, root, progress):
    def report(clip, result):
        bar.update()
        if result[3] is not None:
            tqdm.write(f"fetch: skipped {clip.voice} {clip.word!r} (take {clip.take}): {result[3]}",
                       file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="keyspot-tts-") as scratch, \
            tqdm(total=len(clips), desc="fetch", unit="clip", file=sys.stderr, disable=not progress) as bar:
        pool = dict(workers=dataset.workers, initializer=_init_worker, initargs=(dataset, seed, root, Path(scratch)))
        skipped = _prepare_scratch(Path(scratch), sentences, dataset, seed, pool)
        results = workers.run(_render_one, clips, **pool, chunk=4, on_result=report,
                              crashed=lambda clip: (clip, False, None, "crashed its worker", ""))
    done, truncated, sources, details = [], 0, [], {}
    for clip, was_truncated, source, error, how in results:
        if error is not None:
            skipped.append((clip.path, error))
            continue
        done.append(clip)
        details[clip.path] = how
        truncated += was_truncated
        if source is not None:
            sources.append(source)
    return done, skipped, truncated, sources, details


def _render_stream_sentences(for_streams, sentences, dataset, seed, root) -> list[tuple[StreamSentence, str]]:
    """Render and write the stream sentences into `root`: (each, how it was made)."""
    read = []
    with tempfile.TemporaryDirectory(prefix="keyspot-tts-") as scratch:
        pool = dict(workers=dataset.workers, initializer=_init_worker, initargs=(dataset, seed, root, Path(scratch)))
        _prepare_scratch(Path(scratch), sentences, dataset, seed, pool)
        for sentence, error, how in workers.run(_render_stream_sentence, for_streams, **pool,
                                                crashed=lambda s: (s, "crashed its worker", "")):
            if error is None:
                read.append((sentence, how))
            else:
                tqdm.write(f"fetch: skipped stream sentence {sentence.voice} {sentence.text!r}: {error}",
                           file=sys.stderr)
    return read


# --- helpers -----------------------------------------------------------------

def _near_misses(dataset: SyntheticDataset, seed: int, voice: str, per_keyword: int) -> list[str]:
    """The near misses this voice says: all of them, or for a voice with
    fewer takes per keyword (engine_takes_per_keyword) a drawn share in
    proportion, at least one, so that a near miss is heard as often beside
    its keyword as with the other voices."""
    words = dataset.near_miss_words
    if per_keyword >= dataset.takes_per_keyword:
        return list(words)
    count = max(1, round(len(words) * per_keyword / dataset.takes_per_keyword))
    chosen = seeded_rng(seed, "near-misses", voice).permutation(len(words))[:count]
    return [words[i] for i in sorted(chosen)]


def _unknown_words(dataset: SyntheticDataset, seed: int, voice: str, count: int) -> list[str]:
    """`count` words for this voice: whole shuffled passes, so balanced; a
    larger count keeps the words of a smaller one and adds to them."""
    rng = seeded_rng(seed, "unknown-words", voice)
    words: list[str] = []
    while len(words) < count:
        words += [dataset.unknown_words[i] for i in rng.permutation(len(dataset.unknown_words))]
    return words[:count]


def _get(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) or 1.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


SOURCE = Source("synthetic", SyntheticDataset, generate, sentences=generate_sentences)
