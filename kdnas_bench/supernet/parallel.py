"""Data-parallel supernet training: ``torchrun --nproc_per_node N -m kdnas_bench supernet train ...``.

Every process (rank) holds the whole supernet and its own AdamW; each step all ranks draw the same sandwich
(the draws are seeded by the step, never by the rank), each runs it on its contiguous shard of the global
batch, and the gradients are summed across ranks (one all-reduce of every trainable tensor's gradient), so
every rank takes the same optimizer step a single process takes on the whole batch. Each shard's loss is
weighted by its share of the batch's examples (and the hidden-state term by its share of the batch's real
tokens), which makes the sum exactly the single-process loss. Rank 0 is the only writer of the supernet
folder (checkpoints and the finished supernet); the others wait for it at a barrier.

The process group is NCCL when training runs on GPUs (each rank on the GPU of its ``LOCAL_RANK``), gloo on
the CPU. A single process (no ``torchrun``, or ``--nproc_per_node 1``) uses :data:`SINGLE`, which changes
nothing in the training path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from ..distill.inherit import Importance
from ..errors import KdnasError

if TYPE_CHECKING:
    from ..distill.accelerator import Accelerator
    from .model import Supernet


class ParallelError(KdnasError):
    """A data-parallel launch that cannot work (a batch smaller than the number of processes, no GPU per rank)."""


def launched() -> bool:
    """Whether this process is one of several started by ``torchrun`` (``WORLD_SIZE`` above 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@dataclass(frozen=True)
class Group:
    """This process's place among the data-parallel ranks (``world`` 1: a single process, nothing shared)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writer(self) -> bool:
        """Whether this rank writes files and prints (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's contiguous rows of a global batch of ``n`` examples (sizes differ by at most one)."""
        return self.rank * n // self.world, (self.rank + 1) * n // self.world

    def shard(self, batch: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """This rank's rows of a collated global batch (padded to the global batch's width) and their share
        of its examples."""
        n = len(batch["labels"])
        lo, hi = self.bounds(n)
        return {k: v[lo:hi] for k, v in batch.items()}, (hi - lo) / n

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over the ranks (a new tensor; ``value`` itself on one process)."""
        if not self.active:
            return value
        out = value.detach().clone()
        torch.distributed.all_reduce(out)
        return out

    def same(self, value: int, what: str) -> None:
        """One line on every rank when the ranks see different ``value`` (what each found in the supernet
        folder: its ranks must all read one folder, e.g. on a file system every machine mounts)."""
        if not self.active:
            return
        both = torch.tensor([value, -value], dtype=torch.int64)
        if torch.distributed.get_backend() == "nccl":
            both = both.cuda()
        torch.distributed.all_reduce(both, op=torch.distributed.ReduceOp.MAX)
        high, low = int(both[0]), -int(both[1])
        if high != low:
            raise ParallelError(f"the data-parallel processes see different {what} ({low} and {high}): the supernet "
                                "folder must be one folder every process reads (a file system all machines share)")

    def sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Sum every trainable tensor's gradient over the ranks, in one flat all-reduce. A tensor no rank
        touched this step keeps ``grad is None`` (AdamW then skips it, as on one process); one touched on
        some ranks only (a rank with no rows) gets zeros there before the sum."""
        if not self.active:
            return
        ref = params[0]
        seen = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=ref.device)
        torch.distributed.all_reduce(seen)
        used = [p for p, s in zip(params, seen.tolist(), strict=True) if s > 0]
        if not used:
            return
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in used])  # type: ignore[union-attr]
        torch.distributed.all_reduce(flat)
        start = 0
        for p in used:
            n = p.numel()
            p.grad.copy_(flat[start : start + n].view_as(p))  # type: ignore[union-attr]
            start += n

    def share_start(self, net: Supernet) -> None:
        """Make every rank start from rank 0's tensors and importance orders (each rank built them from the
        same teacher and seed, or read them from the same checkpoint: this makes it certain)."""
        if not self.active:
            return

        with torch.no_grad():
            for p in net.parameters():
                torch.distributed.broadcast(p.data, 0)
        device = net.parameters()[0].device
        tensors = {k: v.to(device).clone() for k, v in net.importance.to_tensors().items()}
        for key in sorted(tensors):
            torch.distributed.broadcast(tensors[key], 0)
        net.importance = Importance.from_tensors({k: v.cpu() for k, v in tensors.items()}, net.importance.examples)


SINGLE = Group()


def join(acc: Accelerator) -> tuple[Group, Accelerator]:
    """The data-parallel group this process belongs to, started when ``torchrun`` launched several processes
    and nobody started it yet (NCCL on GPUs, gloo on the CPU), and the accelerator of this rank (on GPUs:
    the one of its ``LOCAL_RANK``). :data:`SINGLE` and ``acc`` unchanged for a single process."""
    dist = torch.distributed
    if launched() and not dist.is_available():
        raise ParallelError("started by torchrun, but this torch was built without torch.distributed: run one process")
    if not (dist.is_available() and (dist.is_initialized() or launched())):
        return SINGLE, acc
    if acc.is_cuda:
        acc = _rank_gpu(acc)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if acc.is_cuda else "gloo")
    group = Group(dist.get_rank(), dist.get_world_size())
    return group, acc


def _rank_gpu(acc: Accelerator) -> Accelerator:
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if local >= torch.cuda.device_count():
        raise ParallelError(f"rank with LOCAL_RANK {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                            "start at most that many processes per node (torchrun --nproc_per_node)")
    torch.cuda.set_device(local)
    return replace(acc, device=torch.device("cuda", local))


def check_batch(group: Group, batch_size: int) -> None:
    """One line when the global batch cannot give every rank at least one example."""
    if group.active and batch_size < group.world:
        raise ParallelError(f"--batch-size {batch_size} is smaller than the {group.world} data-parallel processes: "
                            "each process takes its share of the global batch; pass a batch of at least that size")
