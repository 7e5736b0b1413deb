"""Intake of raw photos: face detection (built-in MTCNN or a user ONNX detector), landmark cache,
failure-to-acquire measurement, and ``faceaudit prepare`` (aligned copies plus a manifest)."""
