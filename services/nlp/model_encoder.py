"""Loading a Hugging Face encoder from a local directory and e5-style pooling.

Everything goes through ``AutoModel``/``AutoTokenizer``, so any BERT-family
checkpoint directory (the converted e5, ``bert-base-chinese``,
``hfl/chinese-roberta-wwm-ext``, a fine-tune) works the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    """The tokenizer saved in ``model_dir`` (offline)."""
    return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)


def load_encoder(model_dir: Path) -> PreTrainedModel:
    """The encoder in ``model_dir`` without a pooling layer, in eval mode (offline)."""
    disable_bar: Any = hf_logging.disable_progress_bar  # untyped in transformers
    disable_bar()  # a per-load bar would clutter worker logs and the CLI
    try:
        model = AutoModel.from_pretrained(
            str(model_dir), local_files_only=True, add_pooling_layer=False
        )
    except TypeError:  # architectures without a pooler take no such argument
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    loaded: PreTrainedModel = model.eval()
    return loaded


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states where ``attention_mask`` is 1 (e5 pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def embed(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    prefix: str = "",
    max_length: int = 512,
) -> torch.Tensor:
    """L2-normalised mean-pooled embeddings of ``texts`` (one padded batch)."""
    batch = tokenizer(
        [prefix + t for t in texts], padding=True, truncation=True,
        max_length=max_length, return_tensors="pt",
    )
    with torch.inference_mode():
        hidden = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
    return torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
