"""Long lists are summarised in the report: counts by reason, at most ten examples, the full list as a CSV
beside the report and attached to the PDF."""

import io
import shutil

import pandas as pd
import pypdf

from audit import api
from audit.config import AuditConfig


def test_data_quality_is_counted_by_reason_with_ten_examples_and_the_full_csv(small_data, tiny_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    man = pd.read_csv(data / "manifest.csv")
    for img in man["image"][:15]:  # fifteen files that do not decode
        (data / img).write_bytes(b"not an image")
    odd = "=HYPERLINK(evil).png"
    shutil.copy(data / man.loc[20, "image"], data / odd)
    (data / odd).write_bytes(b"broken too")
    man.loc[20, "image"] = odd
    man.to_csv(data / "manifest.csv", index=False)
    db = tmp_path / "s.duckdb"
    run_id = api.run_audit(AuditConfig(model=tiny_model, data=str(data), probes=["identity"], conditions=["clean"],
                                       bootstrap=20, parity=False), db)
    html_path, pdf_path, csv_path = api.build_report(run_id, db, tmp_path / "out", ["html", "pdf"])
    html = html_path.read_text()
    assert csv_path.name.endswith(".data-quality.csv")
    assert "16 image(s) could not be used" in html and "… and 6 more" in html
    full = pd.read_csv(csv_path, keep_default_na=False)
    assert len(full) == 16 and set(full["problem"]) == {"unreadable"}
    assert "'=HYPERLINK(evil).png" in set(full["image"])  # never a spreadsheet formula
    attached = pypdf.PdfReader(pdf_path).attachments["data-quality.csv"][0]
    assert pd.read_csv(io.BytesIO(attached), keep_default_na=False).equals(full)


def test_no_cell_of_a_csv_attachment_starts_a_formula():
    import io

    import pandas as pd

    from audit.csvout import safe_csv

    cells = ["=1+1.jpg", "+SUM(1).jpg", "-2+3.jpg", "@A1.jpg", "\t=x.jpg", "\r=x.jpg", "plain.jpg"]
    import csv

    rows = list(csv.reader(io.StringIO(safe_csv(pd.DataFrame({"image": cells})).decode(), newline="")))
    assert [r[0] for r in rows[1:]] == ["'" + c for c in cells[:-1]] + ["plain.jpg"]
