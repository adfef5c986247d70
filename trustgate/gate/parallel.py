"""Spreading the units of a large input over forked worker processes (`--jobs`).

Owns: deciding when workers are worth their start-up, forking them (each
inherits the compiled checks and builds its own engines), handing out chunks
of units to them and to this process from one shared counter, and
evaluating here whatever a worker that died did not send back. Leaves out:
evaluating a unit (the caller's `run_unit`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from trustgate.errors import Error
from trustgate.gate.verdict import problem_result
from trustgate.manifests import loader
from trustgate.model import DocumentResult, InputProblem, Source

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


PARALLEL_MIN_BYTES = 512 * 1024  # bytes; below this, starting workers costs more than it saves
PARALLEL_MIN_UNITS = 8  # files; each worker needs a share worth its start-up
# Chunks per process: each process takes the next chunk when it is done with one, so
# the last chunk taken bounds how long one process waits for the others (~1/64 of a
# process's share); a chunk costs one lock and nothing else.
CHUNKS_PER_JOB = 64
LOCK_TIMEOUT_S = 30.0  # seconds; the chunk counter's lock is held for a few instructions

# Units each process reads, then evaluates, together (`prepare`, then `run_unit` for each): an
# engine's code stays in the processor's caches from one document to the next (Gate's `_Batches`).
BATCH_UNITS = 32

RunUnit = Callable[[loader.Unit], list[DocumentResult]]
Prepare = Callable[[Sequence[loader.Unit]], None]
Parts = dict[int, list[list[DocumentResult]]]  # chunk index -> each of its units' results


def run_units(
    units: Sequence[loader.Unit], run_unit: RunUnit, *, jobs: int, prepare: Prepare | None = None
) -> list[DocumentResult]:
    """Every unit's results, in unit order; in `jobs` processes when the input is large enough.

    A unit whose evaluation raises an `Error` reports it as its own result (rule
    `input/error`), the same with one process or many, and the other units go on.
    `prepare`, when given, is called with each batch of up to BATCH_UNITS units before
    `run_unit` is called for each of them, in the process that evaluates them.
    """
    if jobs > 1 and len(units) >= PARALLEL_MIN_UNITS and _total_bytes(units) >= PARALLEL_MIN_BYTES:
        import multiprocessing  # only for large inputs: start-up time counts for small ones

        if "fork" in multiprocessing.get_all_start_methods():
            return _run_parallel(units, run_unit, jobs, prepare)
    return [r for unit_results in _each(units, run_unit, prepare) for r in unit_results]


def _each(
    units: Sequence[loader.Unit], run_unit: RunUnit, prepare: Prepare | None
) -> list[list[DocumentResult]]:
    out = []
    for start in range(0, len(units), BATCH_UNITS):
        batch = units[start : start + BATCH_UNITS]
        if prepare is not None:
            prepare(batch)
        for unit in batch:
            try:
                out.append(run_unit(unit))
            except Error as e:  # keep the other units' results; this one reports the error
                out.append([problem_result(InputProblem(Source(unit.path), "input/error", e.diagnostics()))])
    return out


def _run_parallel(
    units: Sequence[loader.Unit], run_unit: RunUnit, jobs: int, prepare: Prepare | None
) -> list[DocumentResult]:
    """Evaluate in `jobs - 1` forked workers and this process, then join in unit order.

    Every process takes the next chunk from a counter in shared memory until
    none is left, so a slow chunk (a kustomization, a large file) delays only
    the process that took it. A worker sends each chunk's results as soon as
    it has them, and this process reads them between its own chunks, so that
    what is left to do once the last chunk is evaluated is small. A worker
    that dies (killed, out of memory, a bug) sends no more: the chunks it took
    and did not send are evaluated here, so nothing is lost, and a bug raises
    here as it would have with one process.
    """
    import multiprocessing
    import pickle  # here, as multiprocessing: no run on a small input needs either
    from multiprocessing.connection import Connection, wait

    context = multiprocessing.get_context("fork")
    count = min(len(units), jobs * CHUNKS_PER_JOB)
    bounds = [len(units) * i // count for i in range(count + 1)]
    chunks = [units[bounds[i] : bounds[i + 1]] for i in range(count)]
    counter = context.RawValue("i", 0)  # the next chunk to take, in shared memory
    lock = context.Lock()

    def take() -> int:
        """The next chunk to evaluate; `count` when none is left.

        A process killed while it held the lock (a window of a few instructions)
        would hold it for ever: after LOCK_TIMEOUT_S every process stops taking,
        and this one evaluates whatever was not sent.
        """
        if not lock.acquire(timeout=LOCK_TIMEOUT_S):
            return count
        try:
            index: int = counter.value
            counter.value = index + 1
        finally:
            lock.release()
        return min(index, count)

    processes = []
    open_readers: list[Connection] = []
    for _ in range(min(jobs, count) - 1):  # no worker without a chunk to take
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(chunks, run_unit, prepare, take, writer), daemon=True)
        process.start()  # a fork: the arguments are inherited, never pickled
        writer.close()  # the worker holds the only writer: its end (or death) ends our reading
        processes.append(process)
        open_readers.append(reader)
    parts: Parts = {}

    def receive(timeout: float | None) -> None:
        for reader in wait(open_readers, timeout):
            assert isinstance(reader, Connection)
            try:
                index, part = pickle.loads(reader.recv_bytes())
            except (EOFError, OSError):  # done, or died (perhaps within a message)
                reader.close()
                open_readers.remove(reader)
            else:
                parts[index] = part

    try:
        while (index := take()) < count:
            parts[index] = _each(chunks[index], run_unit, prepare)
            receive(0)
        while open_readers:
            receive(None)
    except BaseException:  # a bug here, or Ctrl-C: the workers' results are not wanted
        for process in processes:
            process.terminate()
        raise
    finally:
        for reader in open_readers:
            reader.close()
        for process in processes:
            process.join()
    for index in range(count):
        if index not in parts:  # taken by a worker that died
            parts[index] = _each(chunks[index], run_unit, prepare)
    return [r for index in range(count) for unit_results in parts[index] for r in unit_results]


def _worker(
    chunks: Sequence[Sequence[loader.Unit]],
    run_unit: RunUnit,
    prepare: Prepare | None,
    take: Callable[[], int],
    out: Connection,
) -> None:
    """A forked worker: take chunks until none is left, sending each one's results.

    A thread writes to the pipe, so that evaluating never waits for the parent
    to read. On an exception that is not an `Error` (a bug) the worker stops
    quietly: the parent evaluates its unsent chunks again and raises the same
    exception there, with the one traceback the user sees.
    """
    import pickle
    import queue
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends the workers
    outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def send() -> None:
        with contextlib.suppress(OSError):  # the parent stopped reading: it has failed
            while (message := outbox.get()) is not None:
                out.send_bytes(message)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while (index := take()) < len(chunks):  # `take` answers len(chunks) when none is left
            part = _each(chunks[index], run_unit, prepare)
            outbox.put(pickle.dumps((index, part), pickle.HIGHEST_PROTOCOL))
    except Exception:  # not hidden: the parent redoes the chunks not sent, and raises the same
        pass
    finally:
        outbox.put(None)
        sender.join()
        out.close()


def _total_bytes(units: Sequence[loader.Unit]) -> int:
    """The input's size, counted only up to PARALLEL_MIN_BYTES (no need to stat every file)."""
    total = 0
    for unit in units:
        if total >= PARALLEL_MIN_BYTES:
            break
        if unit.kind == "file":
            with contextlib.suppress(OSError):  # unreadable files report themselves later
                total += os.path.getsize(unit.path)
        elif unit.kind == "kustomize":
            total += PARALLEL_MIN_BYTES // 4  # rendering is slow: worth a worker
        else:
            total += len(unit.data or b"")
    return total
