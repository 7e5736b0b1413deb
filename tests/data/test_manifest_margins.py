"""Manifest and labels files at the margins: a trailing comma on each row (an Excel export), one image under two
spellings, a column named twice or not at all, and row indexes that are not positions. Each is one line naming
the file and the row or column, never a traceback and never a silently changed dataset."""

from pathlib import Path

import pandas as pd
import pytest

from audit.data import load, validate_manifest
from audit.data.labels import join_labels
from audit.errors import DatasetError


def write(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


ROWS = "a/0.png,p1,male\na/1.png,p1,male\nb/0.png,p2,female\nb/1.png,p2,female\n"


@pytest.fixture
def dataset(tmp_path):
    write(tmp_path / "d", "image,subject,sex\n" + ROWS)
    return load(tmp_path / "d")


def test_a_trailing_comma_on_every_row_is_one_line_naming_file_row_and_field(tmp_path):
    """pandas took 'image' as the row index and shifted every column left; the row number then crashed int()."""
    path = write(tmp_path / "d", "image,subject,sex\n" + ROWS.replace("\n", ",\n"))
    with pytest.raises(DatasetError) as err:
        load(tmp_path / "d")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: row 1 has 4 fields and the header names 3 columns")
    assert "field 4 (empty) has no column name (a trailing comma" in msg


def test_an_extra_field_on_a_later_row_is_refused_not_dropped(tmp_path):
    """With the first row well formed pandas dropped 'zzz' with a warning (or stopped on a C parser error); the row
    is counted as the other row messages count it, blank lines left out."""
    path = write(tmp_path / "d", "image,subject\n\na/0.png,p1\n\na/1.png,p1,zzz\nb/0.png,p2\n")
    with pytest.raises(DatasetError, match=r"row 2 has 3 fields and the header names 2 columns; field 3 \('zzz'\)"):
        load(tmp_path / "d")
    path.write_text("image,subject\na/0.png,p1,zzz\na/1.png,p1\n")  # pandas made 'image' the index: a traceback
    with pytest.raises(DatasetError, match=r"row 1 has 3 fields and the header names 2 columns; field 3 \('zzz'\)"):
        load(tmp_path / "d")
    path.write_text("image,subject\na/0.png,p1," + "x" * 200_000 + "\n")  # over the csv module's field limit
    with pytest.raises(DatasetError, match=r"manifest.csv: a row has more fields than the header names columns"):
        load(tmp_path / "d")
    path.write_text("\nimage,subject\n\na/0.png,p1\na/1.png,p1\n")  # blank lines alone are fine, as before
    assert load(tmp_path / "d").manifest["image"].tolist() == ["a/0.png", "a/1.png"]


def test_a_trailing_comma_in_a_labels_file_is_one_line(dataset, tmp_path):
    labels = write(tmp_path, "subject,ethnicity\np1,y,\np2,x,\n", "labels.csv")
    with pytest.raises(DatasetError, match=rf"^{labels}: row 1 has 3 fields and the header names 2 columns"):
        join_labels(dataset, labels)


@pytest.mark.parametrize("spelling", ["./a/0.png", "a//0.png", "a/x/../0.png", "a/./0.png"])
def test_one_image_under_two_spellings_is_a_duplicate(tmp_path, spelling):
    """Two rows for one file (different subjects) made an impostor pair of the file with itself."""
    path = write(tmp_path / "d", f"image,subject\na/0.png,p1\na/1.png,p1\n{spelling},p2\n")
    with pytest.raises(DatasetError) as err:
        load(tmp_path / "d")
    assert str(err.value) == (f"{path}: duplicate rows for image 'a/0.png' (rows [3]), first at row 1: {spelling!r} "
                              "names the same file; each image must appear once")


def test_a_symlink_to_a_listed_image_is_a_duplicate(tmp_path):
    folder = tmp_path / "d"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "0.png").write_bytes(b"x")
    (folder / "a" / "link.png").symlink_to(folder / "a" / "0.png")
    write(folder, "image,subject\na/link.png,p1\na/0.png,p2\n")
    with pytest.raises(DatasetError, match=r"\(rows \[2\]\), first at row 1: 'a/0.png' names the same file;"):
        load(folder)


@pytest.mark.parametrize("header,message", [
    ("image,subject,sex,sex", r"column 'sex' appears twice \(columns 3 and 4\); give each attribute once"),
    ("image,subject,sex, sex", r"column 'sex' appears twice \(columns 3 and 4\)"),
    ("image,subject,sex,Sex", r"columns 'sex' and 'Sex' \(columns 3 and 4\) differ only in case; give each attribute"),
    ("image,subject,,sex", r"column 3 has no name; name it or remove the column"),
    ("image,subject,sex,", r"column 4 has no name \(a trailing comma in the header\?\)"),
    ("image,subject,sex,  ", r"column 4 has no name"),
])
def test_a_column_named_twice_or_not_at_all_is_refused(tmp_path, header, message):
    """pandas renamed them 'sex.1' and 'Unnamed: 2' and each was audited as an attribute."""
    path = write(tmp_path / "d", header + "\na/0.png,p1,m,f\n")
    with pytest.raises(DatasetError, match=rf"^{path}: {message}"):
        load(tmp_path / "d")


def test_a_parquet_manifest_with_a_blank_column_name_is_refused(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    pd.DataFrame({"image": ["a/0.png"], "subject": ["p1"], "": ["x"]}).to_parquet(folder / "manifest.parquet")
    with pytest.raises(DatasetError, match=r"manifest.parquet: column 3 has no name"):
        load(folder)


def test_a_blank_or_twice_named_column_in_a_labels_file_is_refused(dataset, tmp_path):
    labels = write(tmp_path, "subject,,ethnicity\np1,a,y\np2,b,x\n", "labels.csv")
    with pytest.raises(DatasetError, match=rf"^{labels}: column 2 has no name"):
        join_labels(dataset, labels)


def test_row_numbers_never_crash_on_an_index_that_is_not_a_position(tmp_path, dataset):
    """A frame indexed by name (a Parquet file stores its index): messages count rows from 1 by position."""
    df = pd.DataFrame({"image": ["a.png", "b.png", "c.png"], "subject": ["p1", "p1", "p2"], "age": [30, -4, 50]},
                      index=["x", "y", "z"])
    with pytest.raises(DatasetError, match=r"^m: row 2, column 'age': value -4.0"):
        validate_manifest(df, "m")
    df = df.assign(age=30, image=["a.png", "b.png", "a.png"])
    with pytest.raises(DatasetError, match=r"duplicate rows for image 'a.png' \(rows \[3\]\), first at row 1;"):
        validate_manifest(df, "m")
    labels = tmp_path / "labels.parquet"
    pd.DataFrame({"subject": ["p1", "p2", "p1"], "ethnicity": ["y", "x", "x"]},
                 index=pd.Index(["i", "j", "k"], name="key")).to_parquet(labels)
    with pytest.raises(DatasetError, match=r"rows \[3\], column 'subject': 'p1' appears more than once"):
        join_labels(dataset, labels)


def test_a_row_with_a_field_missing_is_refused_not_shifted(dataset, tmp_path):
    """A review of the input handling: pandas pads a short row, so a dropped field moved the next values one column
    left (skin tone 'light' read as a new sex group). Refused in one line, in a manifest and in a labels file."""
    path = write(tmp_path / "d2", "image,subject,sex,skin_tone\na/0.png,p1,male,light\na/1.png,p1,light\n")
    with pytest.raises(DatasetError) as err:
        load(tmp_path / "d2")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: row 2 has 3 fields and the header names 4 columns")
    assert "column 'skin_tone' has none" in msg
    labels = write(tmp_path, "subject,glasses\np1,round\np2\n", "labels.csv")
    with pytest.raises(DatasetError, match=rf"^{labels}: row 2 has 1 fields and the header names 2 columns"):
        join_labels(dataset, labels)


def test_missing_value_spellings_are_no_value_said_in_one_line_and_ids_are_as_typed(dataset, tmp_path):
    """A review of the input handling: pandas read 'None', 'NA', 'null', 'N/A' as missing without a word (glasses
    'None' silently unlabelled) and a person 'NA' was refused as 'nan'. Person ids are read as typed now; in attribute
    columns the spellings stay no value (R writes NA for a missing value: read as a class, everyone of unknown label
    would be a group of its own and a leakage gain halves), said in one warning line for a column of words; a column
    of numbers ('age' with NA, or nan) is read as numbers, as before; a line of spaces is a blank line."""
    from audit.errors import FaceAuditWarning

    write(tmp_path / "d3", "image,subject,region,age\na/0.png,NA,NA,31\na/1.png,NA,,NA\n   \nb/0.png,None,null,nan\n"
          "b/1.png,None,eu,40\n")
    with pytest.warns(FaceAuditWarning) as said:
        m = load(tmp_path / "d3").manifest
    assert m["subject"].tolist() == ["NA", "NA", "None", "None"]
    assert m["region"].isna().tolist() == [True, True, True, False] and m["region"].iloc[3] == "eu"
    assert m["age"].isna().tolist() == [False, True, True, False] and m["age"].iloc[0] == 31
    words = [str(w.message) for w in said if "region" in str(w.message)]
    assert words == [f"{tmp_path / 'd3' / 'manifest.csv'}: column 'region': 2 value(s) 'NA', 'null' read as no value "
                     "(a missing-value spelling); name them otherwise if they are values"]
    assert not [w for w in said if "'age'" in str(w.message)]
    # as group names are read (spaces around dropped, case merged): ' NA' and 'none' are missing values too
    write(tmp_path / "d4", "image,subject,sex\na/0.png,p1,male\na/1.png,p1, NA\nb/0.png,p2,none\nb/1.png,p2,female\n")
    with pytest.warns(FaceAuditWarning, match=r"column 'sex': 2 value\(s\) ' NA', 'none' read as no value"):
        assert load(tmp_path / "d4").manifest["sex"].isna().tolist() == [False, True, True, False]
    labels = write(tmp_path, "subject,glasses\np1,None\np2,round\n", "labels.csv")
    with pytest.warns(FaceAuditWarning, match=r"labels.csv: column 'glasses': 1 value\(s\) 'None' read as no value"):
        joined, _ = join_labels(dataset, labels)
    assert joined.manifest["glasses"].isna().tolist() == [True, True, False, False]
