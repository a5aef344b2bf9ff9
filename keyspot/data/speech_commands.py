"""Google Speech Commands v0.01 / v0.02 (Warden 2018, CC BY 4.0) into data/raw/.

The official archives are downloaded once into a cache outside data/ (the
SHA-256 of each is pinned below), extracted there, and every clip used is
decoded, resampled and padded/trimmed to `sample_rate` x `clip_seconds` and
written into data/raw/ with its manifest row.

Splits are the dataset's own: validation_list.txt and testing_list.txt name
the val and test clips, the rest is train; the lists keep every speaker in
one split. With `test_archive`, the official test archive (already labelled
with the ten words, _silence_ and _unknown_) is the test split instead, and
the clips of testing_list.txt are left out, as TensorFlow Datasets and the
MLPerf Tiny benchmark do.

The 12-class setup follows TensorFlow's speech_commands example: each split
gets _unknown_ clips drawn by the seed from the words that are not keywords,
and _silence_ clips cut from _background_noise_ at a random gain, each
`*_percentage` of the split's keyword clips. Everything drawn depends only
on (seed, split, index), never on the worker count.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
from tqdm import tqdm

from keyspot import artifacts, audio
from keyspot.data import archive, download, workers
from keyspot.data.manifest import SPLITS, Row, write_manifest
from keyspot.data.report import SourceFile
from keyspot.data.source import Source, SourceError, Summary, check_counts, seeded_rng
from keyspot.labels import SILENCE, UNKNOWN
from keyspot.params import ParamsError
from keyspot.schema import NOT_NEGATIVE, Range, fail, setting

BACKGROUND = "_background_noise_"
CACHE_ENV = "KEYSPOT_CACHE"


@dataclasses.dataclass(frozen=True)
class Archive:
    file: str
    size: int
    sha256: str


# (dataset archive, official test archive) per version. Checksums as pinned by
# TensorFlow Datasets (url_checksums/speech_commands.txt: v0.02 and its test
# set), torchaudio (SPEECHCOMMANDS: v0.01) and Hugging Face datasets (superb,
# config "ks": v0.01 and its test set).
ARCHIVES = {
    "v0.01": (Archive("speech_commands_v0.01.tar.gz", 1489096277,
                      "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d"),
              Archive("speech_commands_test_set_v0.01.tar.gz", 71271436,
                      "baa084f6b62c91de660ff0588ae4dfc4e4d534aa99ac0e5f406cba75836cbd00")),
    "v0.02": (Archive("speech_commands_v0.02.tar.gz", 2428923189,
                      "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"),
              Archive("speech_commands_test_set_v0.02.tar.gz", 112563277,
                      "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df")),
}

# The ten command words: the keywords of the 12-class task and the only
# words the official test archives label.
COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
_V1_WORDS = (*COMMANDS, "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
             "nine", "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
WORDS = {"v0.01": _V1_WORDS,
         "v0.02": (*_V1_WORDS, "backward", "forward", "follow", "learn", "visual")}

# _silence_ of each split is cut from its own stretch of every noise
# recording, so no window of noise is shared between splits.
NOISE_STRETCH = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
# The gain of a _silence_ clip, uniform: as TensorFlow's example scales the
# noise of its silence clips, from nothing to the recording's own level.
SILENCE_GAIN = (0.0, 1.0)
SKIPPED_SHOWN = 20


class DatasetError(SourceError):
    """The extracted archive is not laid out as Speech Commands, or a split or label ends up empty."""


@dataclasses.dataclass
class SpeechCommandsDataset:
    """Keys of `dataset` for this source (conf/dataset/speech_commands.yaml).
    The defaults are the MLPerf Tiny keyword-spotting setup, so accuracies
    compare with its results: v0.02, 12 classes (ten keywords, _silence_,
    _unknown_), the official test archive as the test split, 16 kHz, 1 s."""
    name: str = "speech_commands"
    # Or v0.01 (30 words, no backward/forward/follow/learn/visual).
    version: str = setting("v0.02", choices=("v0.01", "v0.02"))
    keywords: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
    # As in TensorFlow's speech_commands example: per split, _silence_ (1 s cut
    # from _background_noise_ at a random gain) and _unknown_ (the other words,
    # drawn by the seed) each add this percentage of the split's keyword clips.
    # 0 drops the class.
    silence_percentage: float = setting(10.0, allowed=Range(0, 100))
    unknown_percentage: float = setting(10.0, allowed=Range(0, 100))
    # true: test on the official test archive (the ten words, _silence_ and
    # _unknown_, already labelled; keywords must be among those ten) and leave
    # out the clips of testing_list.txt; false: test on testing_list.txt.
    test_archive: bool = True
    sample_rate: int = setting(16000, allowed=Range(8000, 384000))   # clips are resampled and
    clip_seconds: float = setting(1.0, allowed=Range(0, 60, low_open=True))   # padded/trimmed to these
    base_url: str = "http://download.tensorflow.org/data/"
    # Archives and their extraction are kept here, outside data/, so rerunning
    # fetch downloads nothing. The KEYSPOT_CACHE environment variable wins.
    cache_dir: str = "~/.cache/keyspot"
    # Archive file name -> SHA-256, replacing the pinned checksum of the official
    # archive. Only for a mirror that serves other bytes; a download that
    # matches neither is refused.
    sha256: dict[str, str] = setting({})
    workers: int = setting(0, allowed=NOT_NEGATIVE)   # processes that decode and write clips; 0 = all cores

    def validate(self, key: str) -> None:
        if not self.keywords:
            fail(f"{key}.keywords", "at least one keyword is needed")
        for file, digest in self.sha256.items():
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                fail(f"{key}.sha256.{file}", f"{digest!r} is not a SHA-256 (64 hex digits)")


@dataclasses.dataclass(frozen=True)
class Job:
    """One clip to write: decoded from `source`, or for _silence_ a window of it."""
    out: str          # path inside data/raw
    label: str
    split: str
    speaker: str
    source: str       # path inside the cache folder, e.g. speech_commands_v0.02/yes/x.wav
    start: int = -1   # _silence_: first sample of the window, at the target rate
    gain: float = 1.0


def labels(dataset: SpeechCommandsDataset) -> list[str]:
    """Class names, index = class id: _silence_ and _unknown_ first when used."""
    return ([SILENCE] if dataset.silence_percentage else []) + \
        ([UNKNOWN] if dataset.unknown_percentage else []) + list(dataset.keywords)


def cache_dir(dataset: SpeechCommandsDataset) -> Path:
    """Where archives and their extractions are kept: $KEYSPOT_CACHE, else dataset.cache_dir."""
    root = os.environ.get(CACHE_ENV) or dataset.cache_dir or "~/.cache/keyspot"
    return Path(root).expanduser() / "speech_commands"


def fetch(dataset: SpeechCommandsDataset, seed: int, out: Path = Path("data/raw"), progress: bool = True) -> Summary:
    """Download (once), then write clips/, manifest.csv and labels.json to `out`, all or nothing.

    Raises ParamsError for a bad config (before any download), DownloadError
    or ChecksumError (keyspot.data.download) and ArchiveError
    (keyspot.data.archive) naming the URL or file, DatasetError for an
    archive of another layout or an empty split or label. A clip that cannot
    be decoded is reported, skipped and listed in `Summary.skipped`.
    """
    start = time.perf_counter()
    out = Path(out)
    check(dataset, out)
    cache = cache_dir(dataset)
    main, test = ARCHIVES[dataset.version]
    main_root = prepare(dataset, main, cache, progress)
    test_root = prepare(dataset, test, cache, progress) if dataset.test_archive else None
    jobs, noise, skipped = plan(dataset, seed, main_root, test_root)
    for path, reason in skipped:
        print(f"fetch: skipped {path}: {reason}", file=sys.stderr)

    artifacts.clear_stale(out)
    with artifacts.staged_dir(out) as tmp:
        for folder in sorted({str(Path(job.out).parent) for job in jobs}):
            (tmp / folder).mkdir(parents=True, exist_ok=True)
        done, failed, sources = _write_all(jobs, dataset, cache, tmp, progress)
        skipped += failed
        sources += noise
        counts = {s: {label: 0 for label in labels(dataset)} for s in SPLITS}
        for job in done:
            counts[job.split][job.label] += 1
        check_counts(counts, len(skipped), DatasetError, "check the archive's validation_list.txt / "
                     "testing_list.txt and the errors above", "see the errors above")
        write_manifest(tmp / "manifest.csv", [Row(j.out, j.label, j.split, j.speaker) for j in done])
        (tmp / "labels.json").write_text(json.dumps(labels(dataset)) + "\n")
    origin = f"Speech Commands {dataset.version}" + (" + its test archive" if dataset.test_archive else "")
    return Summary(out, origin, counts, sorted(skipped), sorted(sources, key=lambda f: f.path),
                   time.perf_counter() - start, skipped_shown=SKIPPED_SHOWN)


def check(dataset: SpeechCommandsDataset, out: Path) -> None:
    """What params.py cannot know: the words of each version, the test archive's labels, URLs."""
    words = WORDS[dataset.version]
    for i, word in enumerate(dataset.keywords):
        if word not in words:
            raise ParamsError(f"dataset.keywords[{i}]: {word!r} is not a word of Speech Commands "
                              f"{dataset.version}; its words are {', '.join(sorted(words))}")
    if len(set(dataset.keywords)) != len(dataset.keywords):
        raise ParamsError("dataset.keywords: lists a word twice")
    if dataset.test_archive:
        other = [w for w in dataset.keywords if w not in COMMANDS]
        if other:
            raise ParamsError(f"dataset.test_archive: the official test archive labels only "
                              f"{', '.join(COMMANDS)}, _silence_ and _unknown_, so {', '.join(other)} "
                              "would have no test clips; set dataset.test_archive: false to test on "
                              "testing_list.txt")
    if dataset.unknown_percentage and set(dataset.keywords) == set(words):
        raise ParamsError("dataset.unknown_percentage: every word is a keyword, none is left "
                          "for _unknown_; set it to 0")
    if not dataset.base_url.startswith(("http://", "https://")):
        raise ParamsError(f"dataset.base_url: {dataset.base_url!r} is not an http:// or https:// URL")
    known = {a.file for pair in ARCHIVES.values() for a in pair}
    for file in dataset.sha256:
        if file not in known:
            raise ParamsError(f"dataset.sha256: {file!r} is not one of {', '.join(sorted(known))}")
    if dataset.sample_rate < 8000 or dataset.clip_seconds <= 0:
        raise ParamsError("dataset.sample_rate / clip_seconds: need >= 8000 Hz and > 0 s")
    cache = cache_dir(dataset).resolve()
    if cache.is_relative_to(out.resolve()):
        raise ParamsError(f"dataset.cache_dir: {cache} lies inside {out}, which fetch replaces; "
                          f"choose a folder outside it (or unset {CACHE_ENV})")


def prepare(dataset: SpeechCommandsDataset, source: Archive, cache: Path, progress: bool = True) -> Path:
    """The extracted archive in the cache: downloaded and extracted only if not already there."""
    sha256 = dataset.sha256.get(source.file, source.sha256).lower()
    target = cache / source.file.removesuffix(".tar.gz")
    with download.locked(cache / ".lock"):
        if archive.is_extracted(target, sha256):
            return target
        url = dataset.base_url.rstrip("/") + "/" + source.file
        path = cache / source.file
        if not path.is_file():
            size = "" if source.file in dataset.sha256 else f" ({source.size / 2**30:.2f} GiB)"
            print(f"fetch: downloading {url}{size} into {cache}", file=sys.stderr)
        try:
            download.download(url, path, sha256, progress=progress)
        except download.ChecksumError as err:
            raise download.ChecksumError(f"{err} under dataset.sha256 ('{source.file}': <sha256>) "
                                         "in conf/dataset/") from None
        archive.extract(path, target, stamp=sha256, progress=progress)
    return target


def plan(dataset: SpeechCommandsDataset, seed: int, main_root: Path, test_root: Path | None
         ) -> tuple[list[Job], list[SourceFile], list[tuple[str, str]]]:
    """Every clip to write; the noise recordings _silence_ is cut from, and those unreadable."""
    val_list = _read_list(main_root, "validation_list.txt")
    test_list = _read_list(main_root, "testing_list.txt")
    folders = _word_folders(main_root)
    missing = [w for w in dataset.keywords if w not in folders]
    if missing:
        raise DatasetError(f"{main_root}: no folder for keyword(s) {', '.join(missing)}; the archive "
                           "is incomplete: delete that folder and fetch again")
    keywords = set(dataset.keywords)
    jobs: list[Job] = []
    unknown: dict[str, list[Job]] = {s: [] for s in SPLITS}
    for word in folders:
        for rel in _wavs(main_root, word):
            split = "val" if rel in val_list else "test" if rel in test_list else "train"
            if split == "test" and test_root is not None:
                continue
            job = _clip_job(main_root, rel, word if word in keywords else UNKNOWN, split, "clips")
            (jobs if word in keywords else unknown[split]).append(job)

    splits = [s for s in SPLITS if not (s == "test" and test_root is not None)]
    keyword_clips = {s: sum(1 for j in jobs if j.split == s) for s in splits}
    if dataset.unknown_percentage:
        for split in splits:
            wanted = math.ceil(keyword_clips[split] * dataset.unknown_percentage / 100)
            pool = sorted(unknown[split], key=lambda j: j.out)
            order = seeded_rng(seed, "unknown", split).permutation(len(pool))
            jobs += [pool[i] for i in order[:wanted]]
    noise: dict[str, tuple[int, SourceFile]] = {}
    skipped: list[tuple[str, str]] = []
    if dataset.silence_percentage:
        noise, skipped = _noise_files(main_root, dataset.sample_rate)
        lengths = {rel: length for rel, (length, _) in noise.items()}
        for split in splits:
            wanted = math.ceil(keyword_clips[split] * dataset.silence_percentage / 100)
            jobs += _silence_jobs(lengths, split, wanted, seed, dataset)
    if test_root is not None:
        jobs += _test_archive_jobs(test_root, dataset)
    return jobs, [file for _, file in noise.values()], skipped


# --- planning helpers ------------------------------------------------------

def _read_list(root: Path, name: str) -> set[str]:
    path = root / name
    if not path.is_file():
        raise DatasetError(f"{path}: missing, so {root} is not a Speech Commands archive; "
                           "check dataset.base_url, delete that folder and fetch again")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _word_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _wavs(root: Path, folder: str) -> list[str]:
    return sorted(f"{folder}/{p.name}" for p in (root / folder).iterdir()
                  if p.suffix.lower() == ".wav" and p.is_file())


def _speaker(file_name: str) -> str:
    """`<speaker>_nohash_<n>.wav` -> speaker: the dataset's own speaker hash."""
    stem = Path(file_name).stem
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem


def _clip_job(root: Path, rel: str, label: str, split: str, prefix: str) -> Job:
    return Job(f"{prefix}/{rel}", label, split, _speaker(Path(rel).name), f"{root.name}/{rel}")


def _test_archive_jobs(root: Path, dataset: SpeechCommandsDataset) -> list[Job]:
    """Every clip of the official test archive, under the label it stands for here."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root}: holds no label folders; delete it and fetch again")
    jobs = []
    for folder in folders:
        if folder in dataset.keywords:
            label = folder
        elif folder == SILENCE:
            label = SILENCE if dataset.silence_percentage else None
        else:  # _unknown_, or a command word that is not a keyword here
            label = UNKNOWN if dataset.unknown_percentage else None
        if label is not None:
            jobs += [_clip_job(root, rel, label, "test", "test_set") for rel in _wavs(root, folder)]
    return jobs


def _noise_files(root: Path, sample_rate: int
                 ) -> tuple[dict[str, tuple[int, SourceFile]], list[tuple[str, str]]]:
    """Noise recording (path in the cache folder) -> (samples at `sample_rate`, what it is);
    and the unreadable ones."""
    noise, skipped = {}, []
    folder = root / BACKGROUND
    for path in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        rel = f"{root.name}/{BACKGROUND}/{path.name}"
        try:
            noise[rel] = (len(_decode_noise(path, sample_rate)), _source_file(path, rel))
        except audio.AudioError as err:
            skipped.append((rel, _reason(err, path)))
    return noise, skipped


def _silence_jobs(noise: dict[str, int], split: str, wanted: int, seed: int, dataset: SpeechCommandsDataset) -> list[Job]:
    n = round(dataset.sample_rate * dataset.clip_seconds)
    lo, hi = NOISE_STRETCH[split]
    stretches = [(rel, int(length * lo), int(length * hi)) for rel, length in sorted(noise.items())
                 if int(length * hi) - int(length * lo) >= n]
    if wanted and not stretches:
        raise DatasetError(f"no readable {BACKGROUND} recording has {dataset.clip_seconds} s in its "
                           f"{split} part to cut _silence_ from; set dataset.silence_percentage: 0 "
                           "or delete the extracted archive in the cache and fetch again")
    jobs = []
    for i in range(wanted):
        rng = seeded_rng(seed, "silence", split, i)
        rel, first, last = stretches[int(rng.integers(len(stretches)))]
        start = int(rng.integers(first, last - n + 1))
        gain = float(rng.uniform(*SILENCE_GAIN))
        jobs.append(Job(f"clips/{SILENCE}/{split}_{i:05d}.wav", SILENCE, split,
                        f"{BACKGROUND}/{Path(rel).name}#{split}", rel, start, gain))
    return jobs


def _decode_noise(path: Path, sample_rate: int) -> np.ndarray:
    samples, rate = audio.decode(path)
    return audio.resample(audio.to_mono(samples), rate, sample_rate)


def _source_file(path: Path, rel: str) -> SourceFile:
    info = soundfile.info(str(path))
    return SourceFile(rel, info.frames / info.samplerate, info.samplerate, info.channels,
                      f"{info.format} {info.subtype}")


def _reason(err: Exception, path: Path) -> str:
    """The error without the path, which the report already names (libsndfile repeats it)."""
    return re.sub(r"Error opening '[^']*': ", "", str(err).removeprefix(f"{path}: "))


# --- writing across processes ---------------------------------------------

_state: dict = {}


def _init_worker(dataset: SpeechCommandsDataset, cache: Path, root: Path) -> None:
    _state.update(dataset=dataset, cache=Path(cache), root=Path(root), noise={})


def _write_one(job: Job) -> tuple[Job, SourceFile | None, str | None]:
    """Decode and write one clip; an unreadable source comes back as the reason."""
    dataset, source = _state["dataset"], _state["cache"] / job.source
    n = round(dataset.sample_rate * dataset.clip_seconds)
    try:
        if job.start < 0:
            pcm = audio.load_clip(source, dataset.sample_rate, n)
            file = _source_file(source, job.source)
        else:
            file = None   # the noise recording is listed once, by plan()
            noise = _state["noise"].get(job.source)
            if noise is None:
                noise = _state["noise"][job.source] = _decode_noise(source, dataset.sample_rate)
            pcm = audio.to_int16(audio.fit_length(noise[job.start:job.start + n], n) * job.gain)
    except audio.AudioError as err:
        return job, None, _reason(err, source)
    audio.write_wav(_state["root"] / job.out, pcm, dataset.sample_rate)
    return job, file, None


def _write_all(jobs: list[Job], dataset: SpeechCommandsDataset, cache: Path, root: Path,
               progress: bool) -> tuple[list[Job], list[tuple[str, str]], list[SourceFile]]:
    def report(job, result):
        bar.update()
        if result[2] is not None:
            tqdm.write(f"fetch: skipped {job.source}: {result[2]}", file=sys.stderr)

    with tqdm(total=len(jobs), desc="fetch", unit="clip", file=sys.stderr,
              disable=None if progress else True) as bar:
        results = workers.run(_write_one, jobs, workers=dataset.workers, initializer=_init_worker,
                              initargs=(dataset, cache, root), chunk=64, on_result=report,
                              crashed=lambda job: (job, None, "crashed the decoder: the file is probably corrupt"))
    done, skipped, sources = [], [], []
    for job, file, error in results:
        if error is None:
            done.append(job)
            if file is not None:
                sources.append(file)
        else:
            skipped.append((job.source, error))
    return done, skipped, sources


SOURCE = Source("speech_commands", SpeechCommandsDataset, fetch)
