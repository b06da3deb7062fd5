"""Low-rank adapters (LoRA) for the encoder's linear layers, and merging them back.

Fine-tuning trains ``W + scale * B @ A`` with ``W`` frozen, plus the layer
norms. Only ``A``, ``B`` and the layer norms change, so the trained model is
shipped as these small deltas (a few hundred thousand numbers) and rebuilt by
merging them into the converted base weights (``merge_deltas``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

DEFAULT_TARGETS = (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "intermediate.dense", "output.dense",
)
LORA_A, LORA_B, FULL = "lora_A.", "lora_B.", "full."
ADAPTER_FILE = "adapter.safetensors"


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T
        out: torch.Tensor = self.base(x) + self.scale * update
        return out

    def merged(self) -> nn.Linear:
        """A plain linear layer with the update folded into its weight."""
        with torch.no_grad():
            self.base.weight += self.scale * (self.lora_B @ self.lora_A)
        for p in self.base.parameters():
            p.requires_grad_(True)
        return self.base


def _is_target(name: str, targets: Iterable[str]) -> bool:
    # "output.dense" must not also match "attention.output.dense"
    return any(name.endswith(t) and not name.endswith("attention." + t) for t in targets)


def _layer_index(name: str) -> int | None:
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1] == "layer":
        return int(parts[2])
    return None


def add_lora(
    encoder: nn.Module, rank: int, alpha: float, dropout: float = 0.0,
    targets: Iterable[str] = DEFAULT_TARGETS, first_layer: int = 0,
) -> list[str]:
    """Adapt layers ``first_layer..`` in place: wrap their target linears, unfreeze their
    layer norms; every other parameter is frozen. Returns the wrapped module names."""
    targets = tuple(targets)
    for p in encoder.parameters():
        p.requires_grad_(False)

    def adapted(name: str) -> bool:
        index = _layer_index(name)
        return index is not None and index >= first_layer

    wrapped = [name for name, mod in encoder.named_modules()
               if isinstance(mod, nn.Linear) and adapted(name) and _is_target(name, targets)]
    for name in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = encoder.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout))
    for name, p in encoder.named_parameters():
        if ".LayerNorm." in name and adapted(name):
            p.requires_grad_(True)
    return wrapped


def merge_lora(encoder: nn.Module) -> None:
    """Replace every ``LoRALinear`` by its merged ``nn.Linear`` (in place)."""
    for name, mod in list(encoder.named_modules()):
        if isinstance(mod, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            setattr(encoder.get_submodule(parent_name), child, mod.merged())


def lora_deltas(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The trained deltas: ``lora_A.<linear>``, ``lora_B.<linear>`` (scale folded into B)
    and ``full.<layer norm parameter>``."""
    out: dict[str, torch.Tensor] = {}
    for name, mod in encoder.named_modules():
        if isinstance(mod, LoRALinear):
            out[LORA_A + name] = mod.lora_A.detach().clone()
            out[LORA_B + name] = (mod.lora_B.detach() * mod.scale).clone()
    for name, p in encoder.named_parameters():
        if ".LayerNorm." in name and p.requires_grad:
            out[FULL + name] = p.detach().clone()
    return out


def merge_deltas(
    state_dict: dict[str, np.ndarray], deltas: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Base weights (``BertModel`` names) with ``lora_deltas`` applied."""
    merged = dict(state_dict)
    for key, value in deltas.items():
        if key.startswith(FULL):
            name = key[len(FULL):]
            if name not in merged:
                raise KeyError(f"delta for unknown parameter {name}")
            merged[name] = np.asarray(value, dtype=np.float32)
        elif key.startswith(LORA_A):
            module = key[len(LORA_A):]
            update = np.asarray(deltas[LORA_B + module]) @ np.asarray(value)
            merged[module + ".weight"] = (merged[module + ".weight"] + update).astype(np.float32)
    return merged
