"""The key of a profile dataset and of its predictor: (device id, backend, threads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetKey:
    device_id: str
    backend: str
    threads: int

    @property
    def relpath(self) -> Path:
        """``<device_id>/<backend>-t<threads>``: the folder under profiles/ and predictors/."""
        return Path(self.device_id) / f"{self.backend}-t{self.threads}"

    def __str__(self) -> str:
        return f"{self.device_id} {self.backend} t{self.threads}"
