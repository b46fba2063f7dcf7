"""Training under `torchrun`: DistributedDataParallel, one shard of every batch per rank.

Every rank draws the same global batch (same seed, same batcher) and trains on its own
contiguous slice of rows; DDP averages the gradients, so a step equals the single-process
step on the whole batch (up to float summation order; dropout masks are drawn per rank, so
with dropout the runs agree in distribution, not bit for bit). Rank 0 alone evaluates,
logs, reports and writes checkpoints; the carried recurrent state of every rank is gathered
into last.pt, so a run resumes on any number of processes. gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rnnedge.errors import InputError

State = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: rank, world size, rank on its node."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def current_ranks() -> Ranks:
    """The job's ranks once `join` ran (a single process otherwise)."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return Ranks()
    dist = torch.distributed
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def join(device: torch.device, batch_size: int) -> torch.device:
    """Under torchrun (WORLD_SIZE > 1): join the process group; the device this rank uses."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return device
    if batch_size % world:
        raise InputError(
            f"--batch-size {batch_size} does not split over {world} processes; "
            f"give a multiple of {world} (the global batch is shared out)"
        )
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def leave() -> None:
    """Close the job's process group once every rank has finished training.

    Without it a rank could exit while gloo's threads were still up and die at exit in
    C++ ('terminate called without an active exception', exit -6: seen once in CI on 2
    cores, after both ranks had trained). The barrier keeps a fast rank until the others
    are done; a single process has nothing to close.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def shard_rows(value: Any, size: int, ranks: Ranks, dim: int = 0) -> Any:
    """This rank's contiguous slice of a tensor whose axis `dim` has the global batch `size`."""
    if isinstance(value, torch.Tensor) and value.dim() > dim and value.shape[dim] == size:
        return value.chunk(ranks.world, dim)[ranks.rank]
    return value


class ShardedBatcher:
    """A task's batcher seen by one rank: the global batch, cut to this rank's rows."""

    def __init__(self, batcher: Any, ranks: Ranks) -> None:
        self.inner, self.ranks = batcher, ranks
        self.carries_state = batcher.carries_state

    def next_batch(self) -> tuple:
        batch = self.inner.next_batch()
        size = next(t.shape[0] for t in batch if isinstance(t, torch.Tensor))
        return tuple(shard_rows(t, size, self.ranks) for t in batch)

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)


def wrap(task: Any, model: nn.Module, device: torch.device, ranks: Ranks) -> None:
    """Let `task` train through DDP on its shard; the engine keeps the bare `model`."""
    if ranks.world == 1:
        return
    ids = [device.index] if device.type == "cuda" else None
    # No buffers to broadcast (recurrent nets have none), so rank 0's evaluation forward
    # passes call no collective the other ranks would have to join.
    task.model = nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
    task.batcher = ShardedBatcher(task.batcher, ranks)


def gather_state(carried: State | None, ranks: Ranks) -> State | None:
    """Every rank's carried state [layers, B/world, H] joined into [layers, B, H]."""
    if ranks.world == 1 or carried is None:
        return carried
    gathered = []
    for piece in carried:
        parts = [torch.empty_like(piece) for _ in range(ranks.world)]
        torch.distributed.all_gather(parts, piece.contiguous())
        gathered.append(torch.cat(parts, dim=1))
    return tuple(gathered)


def shard_state(carried: State, ranks: Ranks) -> State:
    """This rank's rows [layers, B/world, H] of a checkpoint's global carried state."""
    if ranks.world == 1:
        return carried
    return tuple(shard_rows(s, s.shape[1], ranks, dim=1) for s in carried)
