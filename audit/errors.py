"""Error types shown to users as one-line messages.

Every error raised for bad input derives from :class:`FaceAuditError`; the CLI prints
``str(err)`` without a traceback (unless ``--debug``). Messages name the thing at fault:
the file, the row and column, the rule and field.
"""

from __future__ import annotations


class FaceAuditError(Exception):
    """Base class for errors caused by the user's input or environment."""

    def __init__(self, *args):
        # One line, whatever the message quotes: a newline inside user data (a file name, a run reference,
        # a manifest value) is shown as the two characters \n instead of breaking the line.
        super().__init__(*(a.replace("\r", "\\r").replace("\n", "\\n") if isinstance(a, str) else a
                           for a in args))


class ModelError(FaceAuditError):
    """An ONNX file that cannot be used (corrupt, unsafe, wrong outputs, NaN)."""


class ProfileError(FaceAuditError):
    """A model profile that is invalid or contradicts the graph."""


class DatasetError(FaceAuditError):
    """A dataset or manifest that cannot be used."""


class StoreError(FaceAuditError):
    """The DuckDB store cannot be opened or written."""


class ConfigError(FaceAuditError):
    """Bad run configuration (unknown probe, condition, attribute...)."""


class NotSignable(FaceAuditError):
    """The run or a file given to be signed cannot be vouched for (incomplete run, another run's report)."""


class RuleError(FaceAuditError):
    """A rule pack that fails validation."""


class FaceAuditWarning(UserWarning):
    """Something the user should know that does not stop the work (a partial label match): the CLI shows
    it as one line ``warning: ...``."""


def first_error(exc) -> tuple[str, str]:
    """(dotted field path, message) of the first error in a pydantic ``ValidationError``."""
    e = exc.errors()[0]
    return ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
