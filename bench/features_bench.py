"""Feature extraction throughput: keyspot's features stage against the tutorial way.

The tutorial way (the preprocessing script of most keyword-spotting
tutorials): a per-file loop of `librosa.load` and `librosa.feature.mfcc`,
every result appended as nested lists and dumped to one JSON file. It is
timed twice: verbatim, with librosa's defaults as the tutorials call it
(resampling to 22,050 Hz, 13 MFCCs from a 2048-point FFT), and like for
like, with keyspot's feature parameters (conf/features/mfcc.yaml).
keyspot's way: `keyspot.features.extract.run`, the features stage itself (threaded,
vectorised, streamed to .npz). All run on the same WAV files, each in a
fresh process, after one warm-up clip; the files are read once beforehand
so every run finds them in the page cache. Prints clips per second, peak
memory and the ratios.

    python bench/features_bench.py                 # 10,000 generated clips
    python bench/features_bench.py --clips 100000  # memory stays flat
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


def make_clips(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """1 s, 16 kHz, 16-bit mono WAVs: voiced-like harmonic sweeps in noise,
    each different, so no two FFTs see the same input."""
    from keyspot.audio import write_wav

    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    paths = []
    for i in range(count):
        f0 = rng.uniform(90, 260) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        voice = sum(np.sin(k * phase) / k for k in range(1, 12))
        envelope = np.exp(-((t - rng.uniform(0.3, 0.7)) / rng.uniform(0.1, 0.25)) ** 2)
        x = 0.25 * voice * envelope + 0.01 * rng.standard_normal(SAMPLE_RATE)
        path = folder / f"{i // 1000:03d}" / f"clip{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16), SAMPLE_RATE)
        paths.append(path)
    return paths


def tutorial(paths: list[Path], out: Path, p, verbatim: bool) -> float:
    """The tutorial loop. `verbatim`: as the tutorials write it, with
    librosa's defaults (load resamples to 22,050 Hz; 13 MFCCs, n_fft 2048,
    hop 512); else with keyspot's feature parameters, like for like."""
    import librosa

    def mfcc(path):
        if verbatim:
            signal, sr = librosa.load(path)
            return librosa.feature.mfcc(y=signal, sr=sr, n_mfcc=13, n_fft=2048, hop_length=512)
        signal, sr = librosa.load(path, sr=SAMPLE_RATE)
        return librosa.feature.mfcc(
            y=signal, sr=sr, n_mfcc=p.num_mfcc, n_fft=p.fft_size,
            hop_length=round(sr * p.hop_ms / 1000), win_length=round(sr * p.window_ms / 1000),
            n_mels=p.mel_bins, fmin=p.mel_fmin, fmax=p.mel_fmax)

    mfcc(paths[0])  # warm-up
    start = time.perf_counter()
    data = {"mapping": [], "labels": [], "MFCCs": [], "files": []}
    for path in paths:
        data["MFCCs"].append(mfcc(path).T.tolist())
        data["labels"].append(0)
        data["files"].append(str(path))
    with open(out, "w") as fp:
        json.dump(data, fp, indent=4)
    return time.perf_counter() - start


def keyspot_stage(paths: list[Path], out: Path, params) -> float:
    """The features stage on a manifest of the same clips."""
    from keyspot.data.manifest import Row, write_manifest
    from keyspot.features import extract

    root = paths[0].parents[1]
    splits = ("train",) * 8 + ("val", "test")
    rows = [Row(p.relative_to(root).as_posix(), "word", splits[i % 10], f"s{i}") for i, p in enumerate(paths)]
    (root / "labels.json").write_text('["word"]')
    # Warm-up, like the tutorial's first clip: one small run of the stage
    # (its threads' FFT plans, the scratch files' first allocation).
    write_manifest(root / "manifest.csv", rows[:100])
    extract.run(params, root, out.with_name(out.name + "-warm-up"))
    write_manifest(root / "manifest.csv", rows)
    start = time.perf_counter()
    extract.run(params, root, out)
    return time.perf_counter() - start


def _params():
    """The default feature parameters, and the dataset keys the stage reads."""
    from types import SimpleNamespace

    from keyspot.schema import Features

    features = Features()
    return SimpleNamespace(features=features, dataset=SimpleNamespace(
        sample_rate=SAMPLE_RATE, clip_seconds=1.0, workers=0))


def _child(kind: str, folder: Path, out: Path) -> None:
    params = _params()
    paths = sorted(folder.rglob("*.wav"))
    if kind == "keyspot":
        seconds = keyspot_stage(paths, out / "features", params)
    else:
        seconds = tutorial(paths, out / "data.json", params.features, verbatim=kind == "tutorial")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "clips": len(paths), "peak_mib": peak_mib}))


def _measure(kind: str, folder: Path, out: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{kind} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # keyspot takes about a second for 10,000 clips: fewer make its timing noisy.
    parser.add_argument("--clips", type=int, default=10000, help="number of generated clips")
    parser.add_argument("--tutorial-clips", type=int, default=1000,
                        help="time the tutorial loops on the first N clips only (they are slow; "
                             "their rate per clip does not depend on N)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    with tempfile.TemporaryDirectory(prefix="keyspot-bench-") as tmp:
        tmp = Path(tmp)
        print(f"generating {args.clips} clips ...", file=sys.stderr)
        paths = make_clips(tmp / "all" / "clips", args.clips)
        tutorial_dir = tmp / "all"
        if args.tutorial_clips and args.tutorial_clips < args.clips:
            tutorial_dir = tmp / "subset"
            for p in paths[:args.tutorial_clips]:
                dest = tutorial_dir / "clips" / p.relative_to(tmp / "all" / "clips")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.hardlink_to(p)
        for p in paths:  # into the page cache, for both
            p.read_bytes()
        for kind in ("tutorial", "tutorial-like-for-like", "keyspot"):
            (tmp / f"out_{kind}").mkdir()
        base = _measure("tutorial", tutorial_dir, tmp / "out_tutorial")
        alike = _measure("tutorial-like-for-like", tutorial_dir, tmp / "out_tutorial-like-for-like")
        ours = _measure("keyspot", tmp / "all", tmp / "out_keyspot")

    rows = [("tutorial, verbatim (librosa defaults)", base),
            ("tutorial loop, keyspot's parameters", alike),
            ("keyspot features stage", ours)]
    print(f"{'':40} {'clips':>7} {'seconds':>8} {'clips/s':>9} {'peak MiB':>9}")
    for name, r in rows:
        print(f"{name:40} {r['clips']:>7} {r['seconds']:>8.2f} {r['clips'] / r['seconds']:>9.0f} "
              f"{r['peak_mib']:>9.0f}")

    def rate(r):
        return r["clips"] / r["seconds"]

    print(f"ratio: keyspot is {rate(ours) / rate(base):.1f}x the tutorial's clips per second "
          f"({rate(ours) / rate(alike):.1f}x the same loop at keyspot's parameters)")


if __name__ == "__main__":
    main()
