"""Where converted and trained models live.

The root is ``~/.cache/yuqing/models`` unless ``YUQING_MODEL_HOME`` points
elsewhere; this module is the only NLP-model code that reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from yuqing.paths import project_paths

MODEL_HOME_ENV = "YUQING_MODEL_HOME"
ENCODER_DIR_NAME = "e5-small"
DEFAULT_MODEL_DIR_NAME = "default"

# Shipped, trained deltas of the default classifier (see yuqing.paths: YUQING_MODELS_DIR).
SHIPPED_DEFAULT_DIR = project_paths().models / "default"


def model_home() -> Path:
    """Root directory of the model cache."""
    override = os.environ.get(MODEL_HOME_ENV)
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get("YUQING_HOME", "~/.cache/yuqing")).expanduser() / "models"


def encoder_dir() -> Path:
    """The full converted multilingual-e5-small model (Hugging Face layout)."""
    return model_home() / ENCODER_DIR_NAME


def default_model_dir() -> Path:
    """The default topic/sentiment classifier built from the shipped deltas."""
    return model_home() / DEFAULT_MODEL_DIR_NAME
