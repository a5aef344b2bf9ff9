"""manifest.csv: round trip and the errors a hand-edited manifest gets."""

from pathlib import Path

import pytest

from keyspot.data.manifest import Row, read_manifest, write_manifest


def _folder(tmp_path: Path, names) -> Path:
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"RIFF")
    return tmp_path / "manifest.csv"


def test_round_trip_sorts_rows_and_uses_newlines(tmp_path):
    rows = [Row("clips/yes/b.wav", "yes", "val", "espeak:en+m2"),
            Row("clips/no/a.wav", "no", "train", "flite:slt")]
    manifest = _folder(tmp_path, [r.path for r in rows])
    write_manifest(manifest, rows)
    assert read_manifest(manifest) == sorted(rows, key=lambda r: r.path)
    assert manifest.read_bytes() == (
        b"path,label,split,speaker\n"
        b"clips/no/a.wav,no,train,flite:slt\n"
        b"clips/yes/b.wav,yes,val,espeak:en+m2\n")


def _write(tmp_path, text, files=("clips/yes/a.wav",)) -> Path:
    manifest = _folder(tmp_path, files)
    manifest.write_text(text)
    return manifest


def test_bad_header_names_file_and_line(tmp_path):
    manifest = _write(tmp_path, "file,label,split,speaker\nclips/yes/a.wav,yes,train,v\n")
    with pytest.raises(ValueError, match=r"manifest\.csv:1: header is 'file,label,split,speaker'"):
        read_manifest(manifest)


def test_unknown_split_names_the_line(tmp_path):
    manifest = _write(tmp_path, "path,label,split,speaker\n"
                                "clips/yes/a.wav,yes,train,v\n"
                                "clips/yes/a2.wav,yes,dev,v\n",
                      files=("clips/yes/a.wav", "clips/yes/a2.wav"))
    with pytest.raises(ValueError, match=r"manifest\.csv:3: unknown split 'dev'"):
        read_manifest(manifest)


def test_missing_file_names_the_line(tmp_path):
    manifest = _write(tmp_path, "path,label,split,speaker\n"
                                "clips/yes/a.wav,yes,train,v\n"
                                "clips/yes/gone.wav,yes,test,v\n")
    with pytest.raises(ValueError, match=r"manifest\.csv:3: clips/yes/gone\.wav does not exist"):
        read_manifest(manifest)
    assert len(read_manifest(manifest, check_files=False)) == 2


@pytest.mark.parametrize("line, problem", [
    ("clips/yes/a.wav,yes,train", "expected 4 fields, got 3"),
    ("clips/yes/a.wav,,train,v", "empty label"),
    ("../a.wav,yes,train,v", "must be relative"),
])
def test_malformed_rows_name_the_line(tmp_path, line, problem):
    manifest = _write(tmp_path, f"path,label,split,speaker\n{line}\n")
    with pytest.raises(ValueError, match=rf"manifest\.csv:2: .*{problem}"):
        read_manifest(manifest)


def test_duplicate_path_names_both_lines(tmp_path):
    manifest = _write(tmp_path, "path,label,split,speaker\n"
                                "clips/yes/a.wav,yes,train,v\n"
                                "clips/yes/a.wav,yes,train,v\n")
    with pytest.raises(ValueError, match=r"manifest\.csv:3: .* already listed on line 2"):
        read_manifest(manifest)


def test_missing_manifest(tmp_path):
    with pytest.raises(ValueError, match="manifest.csv: not found"):
        read_manifest(tmp_path / "manifest.csv")
