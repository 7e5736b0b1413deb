"""Issue 11, classes 4 and 5: images refused from their header; absurd landmarks are data-quality rows."""

import struct
import zlib

import cv2
import numpy as np
import pandas as pd

from audit.data import images as images_mod
from audit.data import load as load_dataset
from audit.store import Store

GOOD = [38.3, 51.7, 73.5, 51.5, 56.0, 71.7, 41.5, 92.4, 70.7, 92.2]


def huge_png(path, w=30000, h=30000):
    """A few hundred bytes that declare w x h pixels (header only; the pixel data is a stub)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_huge_image_refused_from_header_without_decoding(tmp_path, monkeypatch):
    path = huge_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1000
    monkeypatch.setattr(images_mod.cv2, "imdecode", lambda *a: (_ for _ in ()).throw(AssertionError("decoded")))
    img, issue = images_mod.read_image(path, 1, "bomb.png")
    assert img is None and issue.problem == "too_large" and "900000000 pixels" in issue.detail


def test_bad_landmarks_become_data_quality_rows(tmp_path):
    for i in range(8):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.full((112, 112, 3), 30 * i, np.uint8))
    rows = [GOOD] * 8
    rows[1] = [0.0] * 10                                   # all zero
    rows[2] = [1e308] * 10                                 # absurd
    rows[3] = [10, 10, 20, 20, 30, 30, 40, 40, 50, 50]     # collinear
    rows[4] = [float("nan")] + GOOD[1:]                    # missing
    rows[5] = [-500.0] + GOOD[1:]                          # far outside the image
    cols = [f"lm{k}_{ax}" for k in range(5) for ax in ("x", "y")]
    df = pd.DataFrame(rows, columns=cols)
    df.insert(0, "subject", [f"p{i // 2}" for i in range(8)])
    df.insert(0, "image", [f"{i}.jpg" for i in range(8)])
    df.to_csv(tmp_path / "manifest.csv", index=False)
    ds = load_dataset(tmp_path)
    faces = ds.faces((112, 112))
    bad = {q.row: q for q in faces.issues}
    assert set(bad) == {2, 3, 4, 5, 6} and all(q.problem == "bad_landmarks" for q in bad.values())
    assert list(faces.rows) == [0, 6, 7]
    with Store(tmp_path / "s.duckdb") as s:  # the store accepts them as data-quality records
        s.upsert_dataset(ds, faces.issues)
        assert set(s.data_quality(ds.dataset_id)["problem"]) == {"bad_landmarks"}


def test_landmark_problem_accepts_the_template():
    assert images_mod.landmark_problem(images_mod.ARCFACE_TEMPLATE.astype(np.float32), (112, 112)) is None


def test_header_limit_below_pillows_own(tmp_path):
    img, issue = images_mod.read_image(huge_png(tmp_path / "big.png", 8000, 6000), 1, "big.png")
    assert img is None and issue.problem == "too_large" and "8000x6000 pixels" in issue.detail


def test_an_image_path_that_is_a_folder_is_named_as_such(tmp_path):
    from audit.data.images import file_problem

    (tmp_path / "images").mkdir()
    issue, size = file_problem(tmp_path / "images", 3, "images")
    assert issue.problem == "missing" and issue.detail.endswith("images is a folder, not an image file") and size is None
    issue, _ = file_problem(tmp_path / "gone.png", 4, "gone.png")
    assert issue.detail.endswith("gone.png does not exist")



def test_a_cut_off_jpeg_is_unreadable_and_whole_ones_are_not(tmp_path):
    """A JPEG cut off part-way (a download or copy that stopped) is no face to audit: OpenCV 4.10 (which the project
    allows) decodes it, the rows it lacks grey, so the bytes are checked (``jpeg_cut_off``, asserted on its own as
    this OpenCV may refuse the file first). Whole files are read: baseline and progressive, with bytes after the end
    marker (phones append data), and with an EXIF thumbnail."""
    import io

    from matplotlib import cbook
    from PIL import Image

    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    thumb = io.BytesIO()
    photo.resize((64, 80)).save(thumb, "JPEG")
    exif = Image.Exif()
    exif[0x010F] = "camera"
    whole = {}
    for name, kwargs in {"baseline": {}, "progressive": {"progressive": True},
                         "exif": {"exif": exif.tobytes() + thumb.getvalue()}}.items():
        out = io.BytesIO()
        photo.save(out, "JPEG", **kwargs)
        whole[name] = out.getvalue()
    whole["trailing"] = whole["baseline"] + b"\xff\xda trailing data of a phone" * 50
    for name, data in whole.items():
        (tmp_path / f"{name}.jpg").write_bytes(data)
        img, issue = images_mod.read_image(tmp_path / f"{name}.jpg", 1, f"{name}.jpg")
        assert issue is None and img.shape[:2] == (600, 512), (name, issue)
        assert not images_mod.jpeg_cut_off(np.frombuffer(data, np.uint8))
        if name == "trailing":
            continue
        for cut in (len(data) // 2, len(data) - 2, 700):  # 700 bytes: within the header segments
            assert images_mod.jpeg_cut_off(np.frombuffer(data[:cut], np.uint8)), (name, cut)
            (tmp_path / "cut.jpg").write_bytes(data[:cut])
            img, issue = images_mod.read_image(tmp_path / "cut.jpg", 7, "cut.jpg")
            assert img is None and issue.problem == "unreadable" and issue.row == 7, (name, cut, issue)
