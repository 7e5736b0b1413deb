"""Manifest schema (pandera) and validation with row- and column-level messages.

A manifest has one row per image:

* ``image`` - path relative to the dataset root (must resolve inside it)
* ``subject`` - person identifier
* optional attribute columns: ``sex``, ``skin_tone``, ``race``, ``age`` (years, 0-120),
  ``control`` or any other categorical column
* optional landmarks ``lm0_x, lm0_y, ..., lm4_x, lm4_y`` in source-image pixels, in the
  ArcFace order: left eye, right eye, nose tip, left mouth corner, right mouth corner
  (left/right as seen in the image).
* optional ``member`` (1 = the person is believed to be in the model's training data, 0 = surely
  not, empty = unknown): read by the membership probe only, never an attribute; constant per person.
* optional extra points ``pt_<name>_x, pt_<name>_y`` (jaw contour, nose bridge) used to
  place masks; they follow the face through alignment and are never attributes.
"""

from __future__ import annotations

import csv
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from audit.errors import DatasetError

LANDMARK_COLUMNS = [f"lm{i}_{ax}" for i in range(5) for ax in ("x", "y")]
KNOWN_CATEGORICAL = ("sex", "skin_tone", "race", "control")
REGRESSION_ATTRIBUTES = ("age",)
MEMBER = "member"
"""The membership label column (manifest or ``--labels``): 1, 0 or empty; not an attribute."""
RESERVED = {"image", "subject", MEMBER, *LANDMARK_COLUMNS}
MAX_ERRORS_SHOWN = 5
MAX_LABEL_CHARS = 200
"""Longest value of a categorical attribute: it names a demographic group in every table and plot."""
MAX_GROUPS = 100
"""Most distinct values of one categorical attribute: more is an identifier or free text, not a group."""

MANIFEST_SCHEMA = pa.DataFrameSchema(
    {
        "image": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False, coerce=True),
        "subject": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False, coerce=True),
        "age": pa.Column(float, pa.Check.in_range(0, 120), nullable=True, required=False, coerce=True),
        "sex": pa.Column(str, nullable=True, required=False, coerce=True),
        "skin_tone": pa.Column(str, nullable=True, required=False, coerce=True),
        "race": pa.Column(str, nullable=True, required=False, coerce=True),
        MEMBER: pa.Column(float, pa.Check.isin([0, 1]), nullable=True, required=False, coerce=True),
        # Numbers, nothing more: a missing, negative or absurd point spoils one row, not the dataset; such rows
        # become ``bad_landmarks`` data-quality records when the faces are aligned (images.landmark_problem).
        **{c: pa.Column(float, nullable=True, required=False, coerce=True) for c in LANDMARK_COLUMNS},
    },
    strict=False,
    name="manifest",
)


JUDGED_NAMES = {"sex": ("gender",), "race": ("ethnicity", "ethnic_group", "ethnic_origin"),
                "skin_tone": ("skin_colour", "skin_color", "skintone", "skin_type", "fitzpatrick"),
                "age": ("age_years",)}
"""Other names datasets give the attributes the shipped rule packs judge: a column so named (in any case, or the
judged name itself in another case) is read under the judged name, so that a column header never turns a pack's
rules off."""


def judged_name(name: str) -> str:
    """The name the rule packs judge an attribute under (:data:`JUDGED_NAMES`): ``Gender`` -> ``sex``; any other
    name as it is."""
    low = str(name).strip().lower()
    return next((judged for judged, others in JUDGED_NAMES.items() if low == judged or low in others), str(name))


def judged_names(df: pd.DataFrame, source: str, taken=()) -> pd.DataFrame:
    """``df`` with a column whose name is another name of a judged attribute (:func:`judged_name`) renamed to the
    judged name, when neither ``df`` nor ``taken`` (the columns it will join) has a column of that name and ``df``
    has exactly one such column (an age column only when its values are numbers); each renaming is one warning."""
    from audit.errors import FaceAuditWarning

    renames = {}
    for name in JUDGED_NAMES:
        if name in df.columns or name in taken:
            continue
        found = [c for c in df.columns if judged_name(c) == name]
        if len(found) != 1:
            continue
        if name == "age" and pd.to_numeric(df[found[0]].dropna(), errors="coerce").isna().any():
            continue  # brackets such as '20-29': a categorical attribute of its own, not years
        renames[found[0]] = name
    for old, new in renames.items():
        warnings.warn(FaceAuditWarning(f"{source}: column {str(old)!r} is read as the attribute {new!r}, the name the "
                                       "rule packs judge (name it otherwise if it means something else)"), stacklevel=3)
    return df.rename(columns=renames) if renames else df


DUPLICATE_IMAGE = "{source}: duplicate rows for image {image!r} (rows {rows}), first at row {first}{same}; " \
                  "each image must appear once"
EXTRA_FIELD = ("{source}: row {row} has {n} fields and the header names {k} columns; field {extra} ({value}) has no "
               "column name (a trailing comma, or a comma in an unquoted value?); give every field a named column")
MISSING_FIELD = ("{source}: row {row} has {n} fields and the header names {k} columns, so its values would shift into "
                 "other columns (column {first!r} has none); give every column a field, an empty one for no value")
MISSING_SPELLINGS = frozenset({"#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                               "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
"""Spellings of a missing value (pandas' list: R's ``write.csv`` writes ``NA``, other exporters ``None`` or
``null``). In an attribute column they are read as no value, as an empty field is, and a column of words that holds
them says so in one warning line (a glasses value ``None`` or a region ``NA`` were dropped without a word until
0.11.0; read as a class of its own, everyone of unknown label would be one more group, and a leakage gain halves).
Person ids and image paths are read as typed (a person ``NA`` was refused as ``nan``)."""
_MISSING_FOLDED = frozenset(s.casefold() for s in MISSING_SPELLINGS)
AS_TYPED = ("image", "subject")


def row_label(idx) -> str:
    """``row N`` counted from 1 for a positional row index; never a crash for any other index (its repr)."""
    if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
        return f"row {int(idx) + 1}"
    if isinstance(idx, (float, np.floating)) and float(idx).is_integer():
        return f"row {int(idx) + 1}"
    return f"row {idx!r}"


def _describe(failures: pd.DataFrame, source: str) -> str:
    lines = []
    # A value that is no number fails its coercion; pandera then also reports the column's dtype and range checks,
    # one of them on "all rows" with an internal TypeError as the value: only the coercion failure is the problem.
    uncoerced = set(failures.loc[failures["check"].astype(str).str.startswith("coerce_dtype"), "column"])
    knock_on = failures["column"].isin(uncoerced) & ~failures["check"].astype(str).str.startswith("coerce_dtype")
    failures = failures[~knock_on]
    for _, f in failures.head(MAX_ERRORS_SHOWN).iterrows():
        idx = f.get("index")
        where = row_label(idx) if pd.notna(idx) else "all rows"
        col = f.get("column") or "(table)"
        check = str(f.get("check"))
        if check.startswith("coerce_dtype"):
            check = f"{check} (not a number)" if "float" in check or "int" in check else check
        lines.append(f"{source}: {where}, column '{col}': value {f.get('failure_case')!r} fails {check}")
    more = len(failures) - MAX_ERRORS_SHOWN
    if more > 0:
        lines.append(f"... and {more} more problems")
    return "; ".join(lines)  # one line: the CLI and the TUI show errors as one line


def validate_manifest(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate and coerce a manifest; raise :class:`DatasetError` naming rows and columns.

    Rows are numbered from 1 (the first data row), as a spreadsheet user counts them.
    """
    for col in ("image", "subject"):
        if col not in df.columns:
            raise DatasetError(f"{source}: missing required column '{col}' (columns are {list(df.columns)})"
                               + separator_hint(df.columns))
    present = [c for c in LANDMARK_COLUMNS if c in df.columns]
    if present and len(present) != len(LANDMARK_COLUMNS):
        missing = [c for c in LANDMARK_COLUMNS if c not in df.columns]
        raise DatasetError(f"{source}: landmark columns are incomplete; missing {missing}")
    refuse_bad_names([str(c) for c in df.columns], source)
    if len(df) == 0:
        raise DatasetError(f"{source}: the manifest has no rows (empty dataset)")
    df = judged_names(df, source)
    df = df.reset_index(drop=True)  # rows are positions: messages count them from 1
    try:
        out = MANIFEST_SCHEMA.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise DatasetError(_describe(exc.failure_cases, source)) from None
    out = tidy_names(out, source)
    refuse_duplicate_images(out["image"].tolist(), out["image"].tolist(), source)
    check_groups(out, source)
    return out.reset_index(drop=True)


def _tidy(value: str) -> str:
    return unicodedata.normalize("NFC", str(value)).strip()


def tidy_names(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Person ids and group names as one person or group is meant: without surrounding spaces and in one Unicode form
    (NFC: an 'é' typed on macOS is two code points), and a categorical attribute's values that differ only in case
    read as their most frequent spelling. 'male', 'Male' and 'male ' were three demographic groups (a planted
    leakage then looked like chance, and an all-male set had fairness fails), and 'Alice ' another person than
    'Alice' (subject-disjoint folds then split one person, and leakage doubled). Each change of a group name is one
    warning line naming the spellings; ids differing only in case stay distinct persons."""
    from audit.errors import FaceAuditWarning

    df = df.copy()
    if "subject" in df.columns:
        subjects = df["subject"].astype(str).map(_tidy)
        empty = subjects == ""
        if empty.any():
            raise DatasetError(f"{source}: {row_label(subjects.index[empty][0])}, column 'subject': "
                               f"{df['subject'].iloc[int(np.flatnonzero(empty)[0])]!r} is blank; give a person id")
        df["subject"] = subjects
    for col in attribute_columns(df):
        if is_regression(col) or col == "subject":
            continue
        given = df[col].dropna().astype(str)
        tidy = given.map(_tidy)
        counts = tidy[tidy != ""].value_counts()
        spelling = {}
        for _, names in counts.groupby(lambda v: v.casefold()):  # the most frequent spelling; of equals, the first
            spelling.update(dict.fromkeys(names.index, min(names.index, key=lambda n: (-names[n], n))))
        read = tidy.map(lambda v: spelling.get(v, np.nan))
        changed = sorted({(g, r) for g, r in zip(given, read) if isinstance(r, str) and g != r}, key=lambda x: x[1])
        if changed:
            merged = {}
            for g, r in changed:
                merged.setdefault(r, []).append(g)
            said = "; ".join(f"{', '.join(repr(g) for g in gs)} as {r!r}" for r, gs in merged.items())
            warnings.warn(FaceAuditWarning(f"{source}: column {col!r}: read {said} (group names that differ only in "
                                           "case, spaces or Unicode form are one group)"), stacklevel=3)
        df[col] = df[col].astype(object)
        df.loc[given.index, col] = read
    return df


def refuse_duplicate_images(keys: list, images: list[str], source: str) -> None:
    """Each image once: ``keys[i]`` names the file of row ``i + 1`` (the path as written, or resolved), ``images``
    are the paths as written. Two rows for one file would make a pair of a file with itself."""
    first: dict = {}
    for i, key in enumerate(keys):
        if key not in first:
            first[key] = i
            continue
        j = first[key]
        rows = [n + 1 for n in range(j + 1, len(keys)) if keys[n] == key][:MAX_ERRORS_SHOWN]
        same = "" if images[i] == images[j] else f": {images[i]!r} names the same file"
        raise DatasetError(DUPLICATE_IMAGE.format(source=source, image=images[j], rows=rows, first=j + 1, same=same))


def check_groups(df: pd.DataFrame, source: str) -> None:
    """Bound each categorical attribute: values of at most MAX_LABEL_CHARS characters and at most MAX_GROUPS
    distinct values (a 5,000,000-character group name made a 15 MB report whose PDF never finished)."""
    for col in attribute_columns(df):
        if is_regression(col):
            continue
        values = df[col].dropna().astype(str)
        long = values.str.len() > MAX_LABEL_CHARS
        if long.any():
            row = values.index[long][0]
            raise DatasetError(f"{source}: {row_label(row)}, column '{col}': a value of {len(values[row])} "
                               f"characters; a group name may have at most {MAX_LABEL_CHARS}")
        n = values.nunique()
        if n > MAX_GROUPS:
            raise DatasetError(f"{source}: column '{col}' has {n} distinct values; an attribute may have at most "
                               f"{MAX_GROUPS} groups (is it an identifier or free text? leave it out)")


def attribute_columns(df: pd.DataFrame) -> list[str]:
    """Attribute columns present in a manifest, in a stable order."""
    cols = [c for c in df.columns if c not in RESERVED and not c.startswith(("_", "pt_"))]
    return sorted(cols, key=lambda c: (c not in KNOWN_CATEGORICAL + REGRESSION_ATTRIBUTES, c))


def is_regression(attribute: str) -> bool:
    return attribute in REGRESSION_ATTRIBUTES


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet manifest as strings/numbers (no validation)."""
    try:
        if path.suffix.lower() == ".parquet":
            return read_missing(pd.read_parquet(path), str(path))
        return read_csv_table(path)
    except DatasetError:
        raise
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save the manifest as UTF-8") from None
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read manifest ({type(exc).__name__}: {str(exc)[:200]})") from None


def read_csv_table(path: Path, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` for a manifest or a labels file, after :func:`refuse_bad_columns`: image paths and person ids
    as typed, attribute columns with :data:`MISSING_SPELLINGS` read as no value (:func:`read_missing`).
    ``index_col=False``: pandas otherwise takes the first column as the row index when rows have one field more than
    the header (a trailing comma), shifting every column one to the left. Other problems are raised as pandas raises
    them."""
    refuse_bad_columns(path)
    with warnings.catch_warnings():
        # pandas drops the fields beyond the header with only this warning; refuse_bad_columns names the row, this
        # is the backstop for a file the csv module could not scan (a field over its size limit)
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(path, index_col=False, dtype={k: str for k in AS_TYPED}, keep_default_na=False,
                             na_values=[""], **kwargs)
        except pd.errors.ParserWarning:
            raise DatasetError(f"{path}: a row has more fields than the header names columns; give every field a "
                               "named column") from None
    return read_missing(df, str(path))


def read_missing(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """``df`` (read with only empty fields as no value) with :data:`MISSING_SPELLINGS` in its attribute columns read
    as no value too; a column of numbers is read as numbers again, and a column of words that held such spellings
    says which, and how many, in one warning line."""
    from audit.errors import FaceAuditWarning

    df = df.copy()
    for col in df.columns:
        if col in AS_TYPED or not pd.api.types.is_string_dtype(df[col]):  # words (object or str dtype) only
            continue
        # as the group names are read later (spaces around dropped, case merged): ' NA' or 'none' too
        missing = df[col].astype("string").str.strip().str.casefold().isin(_MISSING_FOLDED).fillna(False).astype(bool)
        if not missing.any():
            continue
        spellings = sorted(set(df.loc[missing, col]))
        values = df[col].mask(missing)
        numbers = pd.to_numeric(values, errors="coerce")
        if values.notna().any() and numbers.notna().sum() == values.notna().sum():  # numbers: as pandas reads them
            df[col] = numbers
            continue
        df[col] = values
        warnings.warn(FaceAuditWarning(
            f"{source}: column {str(col)!r:.60}: {int(missing.sum())} value(s) {', '.join(map(repr, spellings[:4]))} "
            "read as no value (a missing-value spelling); name them otherwise if they are values"), stacklevel=3)
    return df


def refuse_bad_columns(path: Path) -> None:
    """Refuse a CSV whose fields pandas would rename or drop, in one line naming the file and the column or row:
    a column named twice (pandas calls the second ``sex.1``, audited as a new attribute), a column without a name
    (``Unnamed: 2``, audited too), or a row with more fields than the header names (a trailing comma: pandas
    would make the first column the row index and shift the others, or drop the extra field), or fewer (pandas pads
    the row, its values in the columns before theirs: a new group ``light`` of ``sex``; until 0.11.0)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            # pandas skips blank lines, and lines of spaces only, too
            records = (fields for fields in csv.reader(fh) if fields and (len(fields) > 1 or fields[0].strip()))
            header = next(records, None)
            if header is None:
                return  # an empty file: read_csv names it
            refuse_bad_names(header, str(path))
            row = 0  # counted as pandas counts rows, so that the message and the other row messages agree
            for fields in records:
                row += 1
                if len(fields) > len(header):
                    extra = fields[len(header)]
                    raise DatasetError(EXTRA_FIELD.format(source=path, row=row, n=len(fields), k=len(header),
                                                          extra=len(header) + 1,
                                                          value=repr(extra) if extra else "empty"))
                if len(fields) < len(header):
                    raise DatasetError(MISSING_FIELD.format(source=path, row=row, n=len(fields), k=len(header),
                                                            first=header[len(fields)]))
    except (UnicodeDecodeError, csv.Error, OSError):
        return  # read_csv names the problem (or read_csv_table's backstop does)


def separator_hint(columns) -> str:
    """What to add to a missing-column message when the header is one column holding ';' (a spreadsheet's export
    in a locale that separates by semicolons), else nothing."""
    if len(columns) == 1 and ";" in str(columns[0]):
        return "; the header looks separated by ';': faceaudit reads comma-separated CSV"
    return ""


def refuse_bad_names(names: list[str], source: str, taken=()) -> None:
    """Column names must be given, and given once (compared without surrounding spaces, and without case: ``Sex``
    beside ``sex`` became a second attribute that no rule reads). ``taken``: the columns these will be joined to
    (a labels file's ``Sex`` beside a manifest's ``sex`` is refused the same way)."""
    seen: dict[str, tuple[int, str]] = {}
    for i, name in enumerate(names, 1):
        key = name.strip()
        if not key:
            hint = " (a trailing comma in the header?)" if i == len(names) else ""
            raise DatasetError(f"{source}: column {i} has no name{hint}; name it or remove the column")
        if key.casefold() in seen:
            first, spelt = seen[key.casefold()]
            if spelt == key:
                raise DatasetError(f"{source}: column '{key}' appears twice (columns {first} and {i}); "
                                   "give each attribute once")
            raise DatasetError(f"{source}: columns '{spelt}' and '{key}' (columns {first} and {i}) differ only in "
                               "case; give each attribute once, under one name")
        seen[key.casefold()] = (i, key)
    mine = {n.strip().casefold(): n.strip() for n in names}
    for other in taken:
        spelt = mine.get(str(other).strip().casefold())
        if spelt is not None and spelt != str(other).strip():
            if other in AS_TYPED:  # a key column: read as such only under its own name
                raise DatasetError(f"{source}: column '{spelt}' is not read as the key '{other}' (names are read as "
                                   f"written); rename it '{other}'")
            raise DatasetError(f"{source}: column '{spelt}' and the dataset's column '{other}' differ only in case; "
                               "give each attribute once, under one name")
