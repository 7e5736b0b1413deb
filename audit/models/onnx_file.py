"""Reading and validating an ONNX file: hash, graph facts, safe external data.

Nothing here runs the model; :mod:`audit.models.backends` does that.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import external_data_helper

from audit.errors import ModelError

NOT_ONNX = "{path}: not a valid ONNX file ({why})"
EXTERNAL_OUTSIDE = (
    "{path}: external-data tensor '{tensor}' points to '{location}', outside the model's folder; "
    "refusing to read it"
)
EXTERNAL_MISSING = "{path}: external-data file '{location}' for tensor '{tensor}' does not exist"
CHECKER_FAILED = "{path}: ONNX checker rejected the model: {why}"


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output."""

    name: str
    shape: tuple[int | str | None, ...]
    """Dimensions; a string is a symbolic (dynamic) dimension, None an unknown one."""
    dtype: str
    """Element type name as ONNX spells it (``FLOAT``, ``UINT8``...)."""

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ModelInfo:
    """Facts about an ONNX file recorded with every run."""

    path: Path
    sha256: str
    """The model's identity in the store: SHA-256 of the .onnx file bytes, or, for a model whose weights lie in
    external-data files, of those bytes and each external file's name and bytes (:func:`model_digest`)."""
    size_bytes: int
    ir_version: int
    opset: int
    """Version of the default (ai.onnx) operator set."""
    producer: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    """``metadata_props`` key/value pairs written by the producer (vendor-supplied text)."""
    proto: onnx.ModelProto | None = field(default=None, repr=False, compare=False)
    files: dict[str, str] = field(default_factory=dict)
    """For a model whose weights lie in external-data files: the SHA-256 of the .onnx file and of each external file,
    by name relative to the model's folder (what :attr:`sha256` is made of); empty otherwise."""

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".onnx")

    def output(self, name: str) -> TensorInfo | None:
        return next((o for o in self.outputs if o.name == name), None)

    def input(self, name: str) -> TensorInfo | None:
        return next((i for i in self.inputs if i.name == name), None)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "ir_version": self.ir_version,
            "opset": self.opset,
            "producer": self.producer,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "metadata": dict(self.metadata),
            **({"files": dict(self.files)} if self.files else {}),
        }


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    ttype = value.type.tensor_type
    dims: list[int | str | None] = []
    for d in ttype.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    dtype = onnx.TensorProto.DataType.Name(ttype.elem_type) if ttype.elem_type else "UNDEFINED"
    return TensorInfo(value.name, tuple(dims), dtype)


def model_digest(path: Path, external: list[str]) -> tuple[str, dict[str, str]]:
    """The identity of the model at ``path`` whose tensors read the ``external`` files (locations relative to its
    folder): the file's SHA-256 when there are none (so a model's id is its file's checksum, as ``sha256sum`` gives
    it), else SHA-256 over that checksum and each external file's location and checksum, in location order. Until
    0.11.0 only the .onnx file was hashed: other weights beside the same graph kept the model's id, so its cached
    embeddings, resume, protocol pins and signed subjects took them for the old ones (a review of the input
    handling). Also returns the files' checksums by name (empty without external data)."""
    digest = sha256_file(path)
    if not external:
        return digest, {}
    files = {path.name: digest}
    h = hashlib.sha256(f"onnx {digest}\n".encode())
    for location in sorted(set(external)):
        files[location] = sha256_file(path.parent / location)
        h.update(f"external {location!r} {files[location]}\n".encode())
    return h.hexdigest(), files


def _check_external_data(model: onnx.ModelProto, path: Path) -> list[str]:
    """Refuse external-data locations that escape the model's folder (path traversal); the locations."""
    root = path.parent.resolve()
    locations = []
    for tensor in external_data_helper._get_all_tensors(model):  # noqa: SLF001 - documented helper
        if not external_data_helper.uses_external_data(tensor):
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (root / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(root):
            raise ModelError(EXTERNAL_OUTSIDE.format(path=path, tensor=tensor.name, location=location))
        if not target.is_file():
            raise ModelError(EXTERNAL_MISSING.format(path=path, tensor=tensor.name, location=location))
        locations.append(location)
    return locations


def load_model_file(path: str | Path, keep_proto: bool = True) -> ModelInfo:
    """Parse, check and describe an ONNX file.

    Raises
    ------
    ModelError
        The file is missing, not ONNX, truncated, refers to external data outside its
        folder, or fails ``onnx.checker``.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; give the model's .onnx file")
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(NOT_ONNX.format(path=path, why="the file is empty"))
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(NOT_ONNX.format(path=path, why=f"could not parse: {type(exc).__name__}")) from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(NOT_ONNX.format(path=path, why="no graph in the file (truncated or not ONNX)"))
    external = _check_external_data(model, path)
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
        onnx.checker.check_model(model)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(CHECKER_FAILED.format(path=path, why=str(exc).splitlines()[0][:300])) from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    initializers = {t.name for t in model.graph.initializer}
    digest, files = model_digest(path, external)
    return ModelInfo(
        path=path,
        sha256=digest,
        files=files,
        size_bytes=size,
        ir_version=model.ir_version,
        opset=opset,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=tuple(_tensor_info(v) for v in model.graph.input if v.name not in initializers),
        outputs=tuple(_tensor_info(v) for v in model.graph.output),
        metadata={p.key: p.value for p in model.metadata_props},
        proto=model if keep_proto else None,
    )
