"""ONNX models (validation, fingerprint, profiles, backends); imports data, synth, store and the bottom floor."""

from audit.models.backends import (Backend, OrtBackend, ParityResult, TorchBackend, parity_check,
                                   preprocess, resolve_device)
from audit.models.onnx_file import ModelInfo, TensorInfo, load_model_file
from audit.models.profile import Head, InputSpec, Profile, infer_profile, resolve_profile, save_profile
from audit.models.loaded import LoadedModel, load

__all__ = ["Backend", "OrtBackend", "TorchBackend", "ParityResult", "parity_check", "preprocess",
           "resolve_device", "ModelInfo", "TensorInfo", "load_model_file", "Head", "InputSpec", "Profile",
           "infer_profile", "resolve_profile", "save_profile", "LoadedModel", "load"]
