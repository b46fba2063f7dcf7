"""The models shipped with rnnedge, installed as the package ``rnnedge.models``.

This folder is the repository's ``models/``; pyproject.toml maps it to ``rnnedge.models`` so
that the .onnx files, their cards (.md) and JSON companions are package data of the wheel,
found with ``importlib.resources.files("rnnedge.models")`` in editable and wheel installs
alike. Look models up by name with ``rnnedge.runtime.catalog`` (``rnnedge models`` lists them).
"""
