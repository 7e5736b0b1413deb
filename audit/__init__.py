"""faceaudit: privacy-risk audits of face-recognition and face-attribute ONNX models.

The supported programmatic surface is :mod:`audit.api`; every other module is internal.
"""

__version__ = "0.1.0"
