"""bf16 safetensors checkpoints of one training run: fp32 master weights, saved in bf16, stepped between saves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codec_values import bf16_bits


class Run:
    """A model of `layers` weight tensors of `values` each (N(0, 0.02)) and one small norm vector."""

    def __init__(self, layers: int = 6, values: int = 150_000, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.master = {f"layer{i:02d}.weight": self.rng.normal(0.0, 0.02, values) for i in range(layers)}
        self.master["norm.weight"] = 1.0 + self.rng.normal(0.0, 0.01, 256)

    def step(self, size: float = 1.4e-5, only: list[str] | None = None) -> None:
        """An optimizer step: every weight (or those of `only`) moves by `size` x N(0, 1).
        1.4e-5 changes about a quarter of the bf16 values (docs/codecs.md)."""
        for name in only if only is not None else list(self.master):
            self.master[name] = self.master[name] + size * self.rng.standard_normal(self.master[name].size)

    def insert(self, name: str, values: int) -> None:
        """A new tensor; safetensors orders tensors by name, so it lands mid-file for a mid name."""
        self.master[name] = self.rng.normal(0.0, 0.02, values)

    def save(self, path: Path) -> bytes:
        """Write the checkpoint as bf16 safetensors (torch's writer); return the file's bytes."""
        import torch
        from safetensors.torch import save_file

        tensors = {
            name: torch.from_numpy(bf16_bits(w).view(np.int16).copy()).view(torch.bfloat16)
            for name, w in self.master.items()
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path))
        return path.read_bytes()
