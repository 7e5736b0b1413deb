"""faceaudit: privacy-risk audits of face-recognition and face-attribute ONNX models.

The supported programmatic surface is :mod:`audit.api`; every other module is internal. Rooms and the way
imports run between them (one way, down; no circles): README.md, "Layout"; tests/test_layers.py keeps it so.
"""

__version__ = "0.12.0"
