"""A folder of audio files, one subfolder per class, into data/raw/.

    root/
      yes/  a.wav  b.flac  more/c.ogg     class "yes" (files may sit deeper)
      no/   ...
      splits.csv                          optional: path,split[,label][,speaker]

Any file libsndfile reads (WAV of any bit depth, integer or float, FLAC,
OGG/Opus, MP3, AIFF, AU) at any rate and channel count becomes canonical
clips: 16-bit mono WAV at `dataset.sample_rate`, `dataset.clip_seconds`
long, so the rest of the pipeline never sees the mess. Short files are
zero-padded (`pad`: at the end or both sides); long ones give their centre
clip or every clip-long window (`long_clips`, `max_windows`). Only the
samples a clip needs are read and resampled, so a file of minutes costs no
more memory than a clip.

Classes: `keywords` lists the class folders, in label order; with an empty
list every folder that holds audio is a class (sorted). Files of other
folders become `_unknown_` or are skipped (`other_folders`).

Splits: a split CSV names each file's split (and may relabel it); otherwise
a stable hash of the file's speaker (`speaker_regex` on the file name, else
the file's path) picks it, so a file keeps its split when the folder grows,
and every window of a file lands in the same split.

Every file that is not used (corrupt, empty, not audio, not in a class) is
printed on stderr in one line and listed in `Summary.skipped`; it never
stops the stage. The s3 source (keyspot/data/s3.py) runs `convert` on its
local cache of a bucket.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import soundfile
from tqdm import tqdm

from keyspot import artifacts, audio
from keyspot.data import quiet, workers
from keyspot.data.manifest import SPLITS, Row, write_manifest
from keyspot.data.report import SourceFile
from keyspot.data.source import Source, SourceError, Summary, check_counts, seeded_rng
from keyspot.labels import SILENCE, UNKNOWN
from keyspot.params import ParamsError
from keyspot.schema import NOT_NEGATIVE, Range, fail, setting

SILENCE_DBFS_RANGE = (-75.0, -25.0)   # RMS of the generated silence (digital zero has none)
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                  ".aifc", ".au")
CHUNK = 8   # files per task: few enough to spread, enough to amortise the hand-over
# Labels name folders, travel in spec.json and become C strings: keep them plain.
CLASS_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.'-]*$")


class FolderError(SourceError):
    """The dataset's files could not be turned into a usable data/raw."""


@dataclasses.dataclass
class AudioFiles:
    """Keys of the folder and s3 sources: which files are which class, and
    how each becomes clips (conf/dataset/folder.yaml shows the layout)."""
    name: str = ""
    # The class folders, in label order. Empty: every folder holding audio is a
    # class, in sorted order.
    keywords: tuple[str, ...] = ()
    # Files in folders that are not in keywords: `unknown` (the _unknown_ class,
    # listed first in the labels) or `skip` (listed as skipped in the report).
    other_folders: str = setting("unknown", choices=("unknown", "skip"))
    # Splits. With split_csv (relative to root, or absolute) a CSV names them:
    #   path,split[,label][,speaker]     header required; other columns ignored
    # path is relative to root with forward slashes; split is train, val or
    # test; label (optional) overrides the folder; speaker (optional) fills the
    # manifest's speaker column. Files the CSV does not list are skipped.
    # Without a CSV, a stable hash of each file's speaker picks its split, with
    # split_fractions: a file keeps its split when the folder grows.
    split_csv: str = ""
    # The speaker of a file, found in its file name: group 1 of the first match
    # (e.g. "^([^_]+)_nohash_" for Speech Commands names), so all files of a
    # speaker share a split. Empty, or no match: every file is its own speaker.
    speaker_regex: str = ""
    split_fractions: dict[str, float] = setting({"val": 0.1, "test": 0.1}, allowed=NOT_NEGATIVE)
    sample_rate: int = setting(16000, allowed=Range(8000, 384000))
    clip_seconds: float = setting(1.0, allowed=Range(0, 60, low_open=True))
    # Length policy.
    min_seconds: float = setting(0.0, allowed=NOT_NEGATIVE)   # shorter files are skipped (listed in the report)
    # Shorter than a clip: zeros at the `end` (as keyspot predict does) or both sides (`centre`).
    pad: str = setting("end", choices=("end", "centre"))
    # Longer than a clip: its `centre` clip, or every clip-long `windows`
    # (centred; the rest is dropped).
    long_clips: str = setting("centre", choices=("centre", "windows"))
    max_windows: int = setting(0, allowed=NOT_NEGATIVE)   # with windows: at most this many per file, the middle ones; 0 = no limit
    workers: int = setting(0, allowed=NOT_NEGATIVE)       # processes that convert files; 0 = all cores
    # A dataset without a _silence_ class can have one generated: this many
    # clips of what a quiet room and a microphone sound like
    # (keyspot/data/quiet.py: digital zero, self-noise, any spectral slope,
    # rumble, hum, DC, fans, clicks), split by split_fractions. 0: none.
    silence_clips: int = setting(0, allowed=NOT_NEGATIVE)

    def validate(self, key: str) -> None:
        if set(self.split_fractions) != {"val", "test"}:
            fail(f"{key}.split_fractions", "give exactly the keys val and test")
        if sum(self.split_fractions.values()) >= 1.0:
            fail(f"{key}.split_fractions", "val and test from 0, together below 1")
        try:
            re.compile(self.speaker_regex)
        except re.error as err:
            fail(f"{key}.speaker_regex", f"{self.speaker_regex!r} is not a regular expression ({err})")


@dataclasses.dataclass
class FolderDataset(AudioFiles):
    """Audio files in a local folder, one subfolder per class."""
    name: str = "folder"
    root: str = ""            # the folder; a relative path is relative to the repository

    def validate(self, key: str) -> None:
        super().validate(key)
        if not self.root:
            fail(f"{key}.root", "empty; set it to the folder that holds one subfolder per class "
                                "(-S dataset.root=/path/to/audio)")


class FileError(ValueError):
    """One source file is not usable; the message is the reason."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One source file and where its clips go."""
    source: str     # relative to root, forward slashes
    label: str
    split: str
    speaker: str
    out: str        # clips/<label>/<name>, without ".wav"


def fetch(dataset, seed: int, out: Path = Path("data/raw"), progress: bool = True) -> Summary:
    """The folder source: `dataset.root` into `out`. Splits hash the file
    names, so they do not move when the seed does; `seed` draws only the
    generated silence (dataset.silence_clips)."""
    root = Path(dataset.root).expanduser()
    if not root.is_dir():
        raise ParamsError(f"dataset.root: {root} is not a folder; point it at the folder that "
                          "holds one subfolder per class")
    if Path(out).resolve().is_relative_to(root.resolve()):
        raise ParamsError(f"dataset.root: {root} holds the output {out}; use a folder outside it")
    files, skipped = list_files(root)
    return convert(dataset, root, files, out, str(root), skipped, progress, seed)


def list_files(root: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every file under root (relative, sorted); hidden ones are listed as skipped."""
    files, skipped = [], []
    for folder, dirs, names in os.walk(root):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        for name in sorted(dirs):
            if name.startswith("."):
                skipped.append((str(here / name) + "/", "hidden folder, not read"))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            rel = str(here / name) if str(here) != "." else name
            if name.startswith("."):
                skipped.append((rel, "hidden file"))
            else:
                files.append(rel)
    return sorted(files), skipped


def convert(dataset, root: Path, files: list[str], out: Path, where: str,
            skipped: list[tuple[str, str]] | None = None, progress: bool = True, seed: int = 0) -> Summary:
    """Turn `files` (relative to `root`) into canonical clips in `out`, all or
    nothing; with dataset.silence_clips, add a generated _silence_ class."""
    start = time.perf_counter()
    skipped = list(skipped or [])
    jobs, labels, not_used = plan(dataset, root, files)
    skipped += not_used
    for path, reason in sorted(skipped):
        print(f"fetch: skipped {path}: {reason}", file=sys.stderr)
    if len(labels) < 2:
        # One class trains to a perfect and useless score; say so before any work.
        raise FolderError(
            f"{where} gives {len(labels)} class{'' if len(labels) == 1 else 'es'} ({', '.join(labels) or 'none'}); "
            "a classifier needs at least two: add a folder per class, or keep the other folders as "
            "_unknown_ (dataset.other_folders=unknown)")
    out = Path(out)
    artifacts.clear_stale(out)
    with artifacts.staged_dir(out) as tmp:
        for label in labels:
            (tmp / "clips" / label).mkdir(parents=True)
        rows, sources, failed = _convert_all(jobs, dataset, root, tmp, progress)
        skipped += failed
        if dataset.silence_clips and SILENCE not in labels:
            labels = [SILENCE, *labels]
            (tmp / "clips" / SILENCE).mkdir(parents=True)
            rows += generate_silence(dataset, seed, tmp)
        counts = {s: {label: 0 for label in labels} for s in SPLITS}
        for row in rows:
            counts[row.split][row.label] += 1
        check_counts(counts, len(skipped), FolderError,
                     f"add files to {where}, raise dataset.split_fractions, or name the splits in a CSV "
                     "(dataset.split_csv)", f"check the folder names in {where} against dataset.keywords")
        write_manifest(tmp / "manifest.csv", rows)
        (tmp / "labels.json").write_text(json.dumps(labels) + "\n")
    return Summary(out, f"{len(sources)} files of {where}", counts, sorted(skipped),
                   sorted(sources, key=lambda s: s.path), time.perf_counter() - start)


def generate_silence(dataset, seed: int, out: Path) -> list[Row]:
    """dataset.silence_clips clips of quiet, every kind in turn, in
    `out`/clips/_silence_; each clip's split from the hash of its name."""
    n = round(dataset.sample_rate * dataset.clip_seconds)
    rows = []
    for i in range(dataset.silence_clips):
        kind = quiet.KINDS[i % len(quiet.KINDS)]
        x = quiet.render(kind, seeded_rng(seed, "folder-silence", i), n, dataset.sample_rate, SILENCE_DBFS_RANGE)
        path = f"clips/{SILENCE}/generated_{kind}_{i}.wav"
        audio.write_wav(out / path, audio.to_int16(x), dataset.sample_rate)
        rows.append(Row(path, SILENCE, hash_split(path, dataset.split_fractions), "generated", f"silence={kind}"))
    return rows


# --- which file is which class and split -----------------------------------

@dataclasses.dataclass(frozen=True)
class CsvRow:
    line: int
    split: str
    label: str      # empty: the file's folder
    speaker: str    # empty: from speaker_regex or the path


def plan(dataset, root: Path, files: list[str]) -> tuple[list[Job], list[str], list[tuple[str, str]]]:
    """(jobs, labels in class-id order, skipped files with their reasons)."""
    table, csv_rel = {}, None
    if dataset.split_csv:
        csv_path = _csv_path(dataset.split_csv, root)
        table = read_split_csv(csv_path)
        if csv_path.resolve().is_relative_to(Path(root).resolve()):
            csv_rel = csv_path.resolve().relative_to(Path(root).resolve()).as_posix()
    files = [f for f in files if f != csv_rel]
    audio_files = [f for f in files if f.lower().endswith(AUDIO_SUFFIXES)]
    skipped = [(f, f"not an audio file (reads {' '.join(AUDIO_SUFFIXES)})")
               for f in files if not f.lower().endswith(AUDIO_SUFFIXES)]
    known = set(files)
    skipped += [(path, f"listed in {dataset.split_csv} line {row.line}, but no such file")
                for path, row in table.items() if path not in known]

    # (file, its class before keywords apply, its CSV row)
    candidates = []
    for rel in audio_files:
        row = table.get(rel)
        if dataset.split_csv and row is None:
            skipped.append((rel, f"not listed in {dataset.split_csv}"))
            continue
        label = row.label if row and row.label else (rel.split("/")[0] if "/" in rel else "")
        if not label:
            skipped.append((rel, "not in a class folder"))
            continue
        candidates.append((rel, label, row))

    classes = _classes(dataset, sorted({label for _, label, _ in candidates}))
    speaker_re = re.compile(dataset.speaker_regex) if dataset.speaker_regex else None
    jobs = []
    for rel, label, row in candidates:
        if label not in classes:
            if dataset.other_folders == "skip":
                skipped.append((rel, f"class {label!r} is not in dataset.keywords"))
                continue
            label = UNKNOWN
        speaker = row.speaker if row and row.speaker else _speaker(rel, speaker_re)
        split = row.split if row else hash_split(speaker, dataset.split_fractions)
        jobs.append(Job(rel, label, split, speaker, ""))
    labels = ([UNKNOWN] if any(j.label == UNKNOWN for j in jobs) else []) + classes
    return _name_outputs(jobs), labels, skipped


def hash_split(key: str, fractions: dict[str, float]) -> str:
    """A split from a stable hash of `key`: the same key, the same split, forever."""
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()[:8], "big") / 2.0 ** 64
    if u < fractions["test"]:
        return "test"
    return "val" if u < fractions["test"] + fractions["val"] else "train"


def read_split_csv(path: Path) -> dict[str, CsvRow]:
    """path -> its row. Columns: path and split, optionally label and speaker;
    others are ignored. Raise FolderError naming the file and line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in ("path", "split") if c not in header]
            if missing:
                raise FolderError(f"{path}:1: no column {', '.join(missing)}; the header needs "
                                  "path,split and may add label,speaker")
            table: dict[str, CsvRow] = {}
            for fields in reader:
                line = reader.line_num
                rel = (fields["path"] or "").strip().removeprefix("./")
                split = (fields["split"] or "").strip()
                if not rel:
                    raise FolderError(f"{path}:{line}: empty path")
                if "\\" in rel or rel.startswith("/") or ".." in rel.split("/"):
                    raise FolderError(f"{path}:{line}: path {rel!r} must be relative to the "
                                      "dataset root, with forward slashes and no '..'")
                if split not in SPLITS:
                    raise FolderError(f"{path}:{line}: split {split!r} is not one of "
                                      f"{', '.join(SPLITS)}")
                if rel in table:
                    raise FolderError(f"{path}:{line}: {rel} already listed on line "
                                      f"{table[rel].line}")
                table[rel] = CsvRow(line, split, (fields.get("label") or "").strip(),
                                    (fields.get("speaker") or "").strip())
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FolderError(f"{path}: cannot read the split CSV ({err})") from None
    return table


def _csv_path(split_csv: str, root: Path) -> Path:
    path = Path(split_csv).expanduser()
    path = path if path.is_absolute() else Path(root) / path
    if not path.is_file():
        raise ParamsError(f"dataset.split_csv: {path} not found (a relative path is inside "
                          "the dataset's root)")
    return path


def _classes(dataset, found: list[str]) -> list[str]:
    """The class names in label order: dataset.keywords, else every class found."""
    if dataset.keywords:
        for i, name in enumerate(dataset.keywords):
            if not CLASS_RE.match(name) or name == UNKNOWN:
                raise ParamsError(f"dataset.keywords[{i}]: {name!r} cannot name a class: use "
                                  "letters, digits, _ . ' - (not _unknown_)")
        if len(set(dataset.keywords)) != len(dataset.keywords):
            raise ParamsError("dataset.keywords: lists a class twice")
        return list(dataset.keywords)
    for name in found:
        if not CLASS_RE.match(name) or name == UNKNOWN:
            raise FolderError(f"{name!r} cannot name a class: use letters, digits, _ . ' - "
                              "(rename the folder, or list the classes in dataset.keywords)")
    if not found:
        raise FolderError("no class folder holds audio files; put each class's files in a "
                          "subfolder named after it")
    return found


def _speaker(rel: str, speaker_re: re.Pattern | None) -> str:
    """The speaker of a file, printable: the manifest is UTF-8, a name need not be."""
    if speaker_re is not None:
        match = speaker_re.search(PurePosixPath(rel).name)
        if match:
            return audio.display_name(match.group(1) if match.groups() else match.group(0))
    return audio.display_name(rel)


def _name_outputs(jobs: list[Job]) -> list[Job]:
    """clips/<label>/<path inside the class folder, '/' as '__'>; a clash adds a hash."""
    def name(job: Job) -> str:
        parts = job.source.split("/")
        if len(parts) > 1 and parts[0] == job.label:
            parts = parts[1:]
        parts[-1] = PurePosixPath(parts[-1]).stem
        return re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(parts))

    names = [f"clips/{j.label}/{name(j)}" for j in jobs]
    taken: dict[str, int] = {}
    for n in names:
        taken[n] = taken.get(n, 0) + 1
    return [dataclasses.replace(j, out=n if taken[n] == 1 else
                                f"{n}-{hashlib.sha256(j.source.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}")
            for j, n in zip(jobs, names, strict=True)]


# --- one file into clips -----------------------------------------------------

def _check_file(path: Path) -> None:
    """keyspot.audio's rules for a file (regular, not empty, complete WAV
    header) without reading it whole; FileError with the reason."""
    name = audio.display_name(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise audio.AudioError(f"{name}: not a regular file (a FIFO, socket or device)")
        if info.st_size == 0:
            raise audio.AudioError(f"{name}: empty file")
        with open(path, "rb") as raw:
            audio.check_wav(raw, info.st_size, name)
    except audio.AudioError as err:
        raise FileError(str(err).removeprefix(f"{name}: ")) from None
    except OSError as err:
        raise FileError(f"cannot be read ({err.strerror})") from None


def file_clips(path: Path, dataset) -> tuple[SourceFile, list[np.ndarray]]:
    """The canonical int16 clips of one file; raise FileError with the reason."""
    _check_file(path)
    try:
        # Through a file object: libsndfile takes names as UTF-8, and a name need not be.
        with open(path, "rb") as raw, soundfile.SoundFile(raw) as f:
            info = SourceFile("", f.frames / f.samplerate if f.samplerate else 0.0, f.samplerate,
                              f.channels, f"{f.format} {f.subtype}")
            if f.frames <= 0:
                raise FileError("holds no samples")
            low, high = audio.SAMPLE_RATES
            if not low <= f.samplerate <= high:
                raise FileError(f"sample rate {f.samplerate} Hz is outside {low}..{high} Hz")
            if info.seconds < dataset.min_seconds:
                raise FileError(f"{info.seconds:.3f} s, shorter than dataset.min_seconds "
                                f"({dataset.min_seconds:g} s)")
            clips = [audio.to_int16(x) for x in _windows(f, dataset)]
    except FileError:
        raise
    except soundfile.LibsndfileError as err:
        raise FileError(f"not readable audio ({err.error_string})") from None
    except (RuntimeError, ValueError, TypeError, EOFError) as err:
        # libsndfile's other complaints about a broken file
        raise FileError(f"not readable audio ({err})") from None
    return info, clips


def _windows(f: soundfile.SoundFile, dataset) -> list[np.ndarray]:
    """The float clips of an open file at the dataset's rate, per the length policy."""
    rate, target = f.samplerate, dataset.sample_rate
    n = round(target * dataset.clip_seconds)
    g = math.gcd(rate, target)
    up, down = target // g, rate // g
    total = -(-f.frames * up // down)            # length after resampling
    if total <= n:
        x = _span(f, target, 0, total)
        pad = n - x.shape[0]
        before = pad // 2 if dataset.pad == "centre" else 0
        return [np.pad(x, (before, pad - before))]
    count = 1 if dataset.long_clips == "centre" else total // n
    if dataset.max_windows:
        count = min(count, dataset.max_windows)
    first = (total - count * n) // 2              # the windows sit in the middle
    return [_span(f, target, first + i * n, n) for i in range(count)]


def _span(f: soundfile.SoundFile, target: int, start: int, n: int) -> np.ndarray:
    """Target samples [start, start + n) of the resampled mono signal.

    Reads only the source frames they need, plus resample_poly's filter
    reach either side, starting on a frame that maps to a whole target
    sample, so the result equals resampling the whole file and cutting.
    """
    g = math.gcd(f.samplerate, target)
    up, down = target // g, f.samplerate // g
    reach = -(-10 * max(up, down) // down) + 2   # the filter's half length, in target samples
    first_block = max((start - reach) // up, 0)
    last_block = -(-(start + n + reach) // up)
    src_start, src_stop = first_block * down, min(last_block * down, f.frames)
    f.seek(src_start)
    data = f.read(src_stop - src_start, dtype="float32", always_2d=True)
    if not np.isfinite(data).all():
        raise FileError("holds NaN or infinite samples")
    y = audio.resample(audio.to_mono(data), f.samplerate, target)
    segment = y[start - first_block * up:][:n]
    return np.pad(segment, (0, n - segment.shape[0]))


# --- across processes --------------------------------------------------------

_state: dict = {}


def _init_worker(dataset, root: Path, tmp: Path) -> None:
    _state.update(dataset=dataset, root=Path(root), tmp=Path(tmp))


def _convert_one(job: Job) -> tuple[Job, SourceFile | None, list[str], str | None]:
    dataset = _state["dataset"]
    try:
        info, clips = file_clips(_state["root"] / job.source, dataset)
    except (FileError, OSError) as err:
        return job, None, [], str(err) if isinstance(err, FileError) else f"cannot read ({err})"
    paths = ([f"{job.out}.wav"] if len(clips) == 1
             else [f"{job.out}+{i:03d}.wav" for i in range(len(clips))])
    for path, pcm in zip(paths, clips, strict=True):
        audio.write_wav(_state["tmp"] / path, pcm, dataset.sample_rate)
    return job, dataclasses.replace(info, path=job.source), paths, None


def _convert_all(jobs, dataset, root, tmp, progress):
    """Convert every job on worker processes (keyspot.data.workers): a file
    that crashes the decoder is reported as skipped, and the stage goes on."""
    with tqdm(total=len(jobs), desc="fetch", unit="file", file=sys.stderr, disable=not progress) as bar:
        results = workers.run(_convert_one, jobs, workers=dataset.workers, initializer=_init_worker,
                              initargs=(dataset, root, tmp), chunk=CHUNK,
                              crashed=lambda job: (job, None, [], "crashed the decoder: the file is probably corrupt"),
                              on_result=lambda job, result: bar.update())
    rows, sources, failed = [], [], []
    for job, info, paths, error in results:
        if error is not None:
            failed.append((job.source, error))
            print(f"fetch: skipped {job.source}: {error}", file=sys.stderr)
            continue
        sources.append(info)
        rows += [Row(p, job.label, job.split, job.speaker) for p in paths]
    return rows, sources, failed


SOURCE = Source("folder", FolderDataset, fetch)
