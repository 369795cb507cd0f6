"""The Backend protocol: build (or export) a model for an arch, prepare inputs for a shape, run it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...space import Arch, Shape
from ..timing import Clock


@runtime_checkable
class Backend(Protocol):
    """One way of running a student on one device. ``load`` does all the untimed work (building or
    exporting the model, placing inputs on the device); ``run`` is exactly what gets timed."""

    name: str
    device: str  # "cpu" or "cuda"
    threads: int

    def load(self, arch: Arch, shape: Shape) -> Any: ...

    def run(self, handle: Any) -> object: ...

    def sync(self) -> None: ...

    def clock(self) -> Clock: ...

    def close(self) -> None: ...
