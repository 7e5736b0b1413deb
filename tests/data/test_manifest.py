from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.data import ARCFACE_TEMPLATE, load, subject_folds, subject_split
from audit.errors import DatasetError
from audit.intake import load as intake_load


def write_manifest(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def jpeg(path: Path, value: int = 128) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((64, 64, 3), value, np.uint8))


def test_sample_manifest_passes_schema(small_data):
    ds = load(small_data)
    assert ds.n_subjects == 40 and len(ds.manifest) == 160
    assert ds.attributes == ["sex", "skin_tone", "control", "age"] or set(ds.attributes) == {
        "sex", "skin_tone", "control", "age"}
    assert ds.has_landmarks


def test_missing_column_is_named(tmp_path):
    folder = write_manifest(tmp_path / "d", [{"image": "a.jpg", "person": "p1"}])
    with pytest.raises(DatasetError, match="missing required column 'subject'"):
        load(folder)


def test_negative_age_names_row_and_column(tmp_path):
    folder = write_manifest(tmp_path / "d", [{"image": "a.jpg", "subject": "p1", "age": 30},
                                             {"image": "b.jpg", "subject": "p1", "age": -4}])
    with pytest.raises(DatasetError, match=r"row 2, column 'age': value -4.0"):
        load(folder)


def test_duplicate_rows_are_refused(tmp_path):
    folder = write_manifest(tmp_path / "d", [{"image": "a.jpg", "subject": "p1"}, {"image": "a.jpg", "subject": "p1"}])
    with pytest.raises(DatasetError, match=r"duplicate rows for image 'a.jpg' \(rows \[2\]\)"):
        load(folder)


def test_path_outside_root_is_refused(tmp_path):
    folder = write_manifest(tmp_path / "d", [{"image": "a.jpg", "subject": "p1"},
                                             {"image": "../../etc/passwd", "subject": "p2"}])
    with pytest.raises(DatasetError, match=r"row 2, column 'image': path '../../etc/passwd' resolves outside"):
        load(folder)


def test_zero_byte_and_unreadable_images_become_quality_records(tmp_path):
    folder = tmp_path / "d"
    jpeg(folder / "ok1.jpg")
    jpeg(folder / "ok2.jpg", 100)
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "junk.jpg").write_bytes(b"not an image at all")
    write_manifest(folder, [{"image": n, "subject": s} for n, s in
                            [("ok1.jpg", "a"), ("zero.jpg", "a"), ("ok2.jpg", "b"), ("junk.jpg", "b"), ("gone.jpg", "c")]])
    faces = load(folder, detector="none").faces()  # flat placeholders for pre-aligned faces: no detection
    assert faces.images.shape == (2, 112, 112, 3)
    assert faces.rows.tolist() == [0, 2]
    assert {(i.row, i.problem) for i in faces.issues} == {(2, "empty"), (4, "unreadable"), (5, "missing")}


def test_empty_dataset_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty dataset"):
        load(tmp_path / "empty")
    folder = write_manifest(tmp_path / "d", [])
    (folder / "manifest.csv").write_text("image,subject\n")
    with pytest.raises(DatasetError, match="no rows"):
        load(folder)


def test_all_images_unreadable_is_an_error(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    write_manifest(folder, [{"image": "a.jpg", "subject": "p"}])
    with pytest.raises(DatasetError, match="none of the 1 images could be read"):
        intake_load(folder).faces()  # no landmarks: the detector (auto) is asked, and finds nothing


def test_person_folders(tmp_path):
    for person in ("Ada", "Bob"):
        for k in range(2):
            jpeg(tmp_path / "lfw" / person / f"{k}.jpg")
    ds = load(tmp_path / "lfw")
    assert sorted(ds.manifest["subject"].unique()) == ["Ada", "Bob"] and len(ds.manifest) == 4


def test_utkface_names(tmp_path):
    jpeg(tmp_path / "utk" / "25_1_2_20170116174525125.jpg.chip.jpg")
    jpeg(tmp_path / "utk" / "61_0_0_20170117191001812.jpg.chip.jpg")
    ds = load(tmp_path / "utk")
    m = ds.manifest.set_index("age")
    assert m.loc[25.0, "sex"] == "female" and m.loc[25.0, "race"] == "asian"
    assert m.loc[61.0, "sex"] == "male" and m.loc[61.0, "race"] == "white"
    # a photo whose name is not UTKFace's is said to be left out, not dropped in silence (a review of the intake)
    jpeg(tmp_path / "utk" / "holiday.jpg")
    from audit.errors import FaceAuditWarning

    with pytest.warns(FaceAuditWarning, match=r"not read: 1 image\(s\) whose names are not age_gender_race_date.jpg "
                                              r"\(first: holiday.jpg\)"):
        assert len(load(tmp_path / "utk").manifest) == 2


def test_alignment_maps_landmarks_to_template(small_data):
    faces = load(small_data).faces()
    err = np.abs(faces.landmarks[:, :5] - ARCFACE_TEMPLATE).max(axis=(1, 2))
    # A similarity transform cannot fit five points exactly (faces differ); within a few pixels.
    assert np.median(err) < 4 and err.max() < 10


def test_splits_are_subject_disjoint():
    subjects = np.repeat(np.arange(30), 3)
    for tr, te in subject_folds(subjects, 5, seed=1):
        assert not set(subjects[tr]) & set(subjects[te])
    tr, te = subject_split(subjects, 0.3, seed=2)
    assert not set(subjects[tr]) & set(subjects[te]) and len(set(subjects[te])) == 9
    assert [t.tolist() for t, _ in subject_folds(subjects, 3, 7)] == [t.tolist() for t, _ in subject_folds(subjects, 3, 7)]


def test_a_value_that_is_no_number_is_one_problem_not_three():
    """pandera reports a failed coercion and then the column's dtype and range checks, one on "all rows" with an
    internal TypeError as the value: the message names the cell once."""
    import pandas as pd

    from audit.data.manifest import validate_manifest
    from audit.errors import DatasetError

    df = pd.DataFrame({"image": ["a.png", "b.png"], "subject": ["x", "y"], "age": ["30", "old"]})
    with pytest.raises(DatasetError) as err:
        validate_manifest(df, "m.csv")
    assert str(err.value) == "m.csv: row 2, column 'age': value 'old' fails coerce_dtype('float64') (not a number)"


def test_copies_of_one_photo_are_recorded_and_left_out(tmp_path):
    """Byte-identical copies were audited without a word: a genuine pair of a photo with itself (a perfect score) or,
    under another person, an impostor pair that is one face. Each later copy is a data-quality record and a warning
    line counts them."""
    import shutil

    root = tmp_path / "d"
    for i, v in enumerate((40, 80, 120, 160)):
        jpeg(root / f"{i}.jpg", v)
    shutil.copy(root / "0.jpg", root / "0b.jpg")  # the same person's photo twice
    shutil.copy(root / "2.jpg", root / "2b.jpg")  # a photo of 'c' filed under 'a' too
    write_manifest(root, [{"image": "0.jpg", "subject": "a"}, {"image": "1.jpg", "subject": "a"},
                          {"image": "0b.jpg", "subject": "a"}, {"image": "2.jpg", "subject": "c"},
                          {"image": "2b.jpg", "subject": "a"}, {"image": "3.jpg", "subject": "c"}])
    with pytest.warns(UserWarning, match=r"2 image\(s\) are byte-identical copies of earlier ones \(1 under another"):
        faces = load(root, detector="none").faces()
    # the same person's copy is used as listed; another person's is left out (an impostor pair that is one face
    # would raise the threshold every rate is measured at)
    assert faces.rows.tolist() == [0, 1, 2, 3, 5]
    dups = {i.image: (i.problem, i.detail) for i in faces.issues if i.problem.startswith("duplicate")}
    assert {k: v[0] for k, v in dups.items()} == {"0b.jpg": "duplicate_content", "2b.jpg": "duplicate_other_person"}
    dups = {k: v[1] for k, v in dups.items()}
    assert "row 1 ('0.jpg')" in dups["0b.jpg"] and "another person" not in dups["0b.jpg"]
    assert "row 4 ('2.jpg'), listed under another person ('c'): one of the two labels is wrong; left out" in dups["2b.jpg"]


def test_an_exif_rotated_photo_is_screened_in_its_upright_frame(tmp_path):
    """A photo stored 120 wide and 60 high with EXIF orientation 6 shows (and decodes) 60 wide and 120 high; its
    landmarks, drawn on the upright photo, were refused as 'outside the 120x60 image' by the header screen."""
    from PIL import Image

    from audit.data.images import header_pixels

    path = tmp_path / "r.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((60, 120, 3), 128, np.uint8)).save(path, exif=exif)
    assert header_pixels(path)[1:] == ("60x120 pixels", (120, 60))


def test_person_folders_read_tiff_skip_hidden_files_and_name_what_they_leave_aside(tmp_path):
    """A .tif got no row and no record, images in a session folder inside a person's folder and beside the person
    folders were skipped without a word, and macOS's '._name.jpg' was read as an (unreadable) image."""
    root = tmp_path / "people"
    jpeg(root / "ann" / "1.jpg", 40)
    jpeg(root / "ann" / "2.tif", 60)
    (root / "ann" / "._1.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    jpeg(root / "bob" / "1.png", 80)
    jpeg(root / "bob" / "session2" / "3.jpg", 100)
    jpeg(root / "loose.jpg", 120)
    with pytest.warns(UserWarning, match=r"not read: 1 image\(s\) beside the person folders \(first: loose.jpg\); "
                                         r"1 image\(s\) in folders inside a person's folder \(first: bob/session2/3.jpg"):
        ds = load(root, detector="none")
    assert sorted(ds.manifest["image"]) == ["ann/1.jpg", "ann/2.tif", "bob/1.png"]


def test_manifest_messages_say_what_to_do(tmp_path):
    """A semicolon-separated header, a UTF-16 file, an absolute path inside the root and a Windows path each got a
    true but unhelpful line (or a raw Python decode error)."""
    root = tmp_path / "d"
    jpeg(root / "a" / "1.jpg", 40)
    (root / "manifest.csv").write_text("image;subject\na/1.jpg;a\n")
    with pytest.raises(DatasetError, match="columns are \\['image;subject'\\]\\); the header looks separated by ';'"):
        load(root, detector="none")
    (root / "manifest.csv").write_text("image,subject\na/1.jpg,a\n", encoding="utf-16")
    with pytest.raises(DatasetError, match="manifest.csv: not UTF-8 text \\(byte 0\\); save the manifest as UTF-8"):
        load(root, detector="none")
    (root / "manifest.csv").write_text(f"image,subject\n{root / 'a' / '1.jpg'},a\n")
    with pytest.raises(DatasetError, match="is an absolute path; give it relative to the dataset root .* \\('a/1.jpg'\\)"):
        load(root, detector="none")
    (root / "manifest.csv").write_text("image,subject\na/1.jpg,a\na\\1.jpg,b\n")
    faces = load(root, detector="none").faces()
    assert [i.detail for i in faces.issues][0].endswith("does not exist (the path has a '\\': write folders with '/')")
