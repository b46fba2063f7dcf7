"""Typed errors: every user mistake becomes one of these, and the CLI prints it as one line."""

from __future__ import annotations


class RnnedgeError(Exception):
    """Base class: a problem the user can fix; the message names the problem and the fix."""


class InputError(RnnedgeError):
    """Bad user input: a missing or unreadable file, text that cannot be used, a bad option."""


class ModelError(RnnedgeError):
    """A model file that is not an rnnedge model, is corrupt, or has an unreadable manifest."""


class DeviceError(RnnedgeError):
    """The requested device or onnxruntime build is not available."""


class ValidationError(RnnedgeError):
    """Exported graph disagrees with the PyTorch model beyond tolerance."""


class DependencyError(RnnedgeError):
    """An optional dependency (torch, onnx, onnxruntime) is missing for this command."""
