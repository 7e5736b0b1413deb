"""What evidence says about a run's dataset: the file fingerprint, the dataset id and the face detector.

Without a face detector the dataset id *is* the file fingerprint (SHA-256 over the manifest and every
image file). With one, the id is SHA-256 of the fingerprint and the detector key (detector weights and
settings plus the confidence threshold), since the faces depend on both; the run then records the plain
fingerprint under ``inputs['files']`` and the key under ``inputs['detector']``, and evidence names all three.
"""

from __future__ import annotations

FINGERPRINT = "SHA-256 over the manifest and every image file"
DETECTED_ID = "SHA-256 of the file fingerprint and the face detector key"


def dataset_identity(run: dict) -> dict:
    """``{"id", "fingerprint", "detector"}`` of a stored run (``Store.run``): ``fingerprint`` is None only for a
    run on detected faces stored before the fingerprint was recorded; ``detector`` is None without a detector."""
    inputs = (run.get("config") or {}).get("inputs") or {}
    detector = inputs.get("detector") or None
    if detector is None:
        return {"id": run["dataset_id"], "fingerprint": run["dataset_id"], "detector": None}
    return {"id": run["dataset_id"], "fingerprint": inputs.get("files"), "detector": detector}
