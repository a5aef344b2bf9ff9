"""One way for every dataset source to run its per-file work on worker
processes, crash-safe.

Decoders and synthesisers run native code; a corrupt file can crash one
(libsndfile has had such bugs). Here a crash kills a worker, never the
stage, and never hangs it (multiprocessing.Pool waits forever for a task
whose worker died): the jobs that were still open are run again one at a
time, each in a fresh process after a crash, so the one that crashes is
found and reported as its own result.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from keyspot.cpu import cores


def count(workers: int, jobs: int, chunk: int = 1) -> int:
    """Processes to start: `workers` (0: every core), no more than there are chunks."""
    return max(1, min(workers or cores(), -(-jobs // chunk)))


def run(work: Callable, jobs: Sequence, *, workers: int, initializer: Callable, initargs: tuple,
        crashed: Callable, chunk: int = 1, on_result: Callable | None = None) -> list:
    """`work(job)` for every job, on worker processes set up by
    `initializer(*initargs)`; the results in the order of `jobs`, whatever
    order the workers finish in.

    `work` and `initializer` are module-level functions (they are pickled by
    name). `chunk` jobs go to a worker at a time. A job whose worker dies
    twice, the second time alone in a fresh process, gets `crashed(job)` as
    its result. `on_result(job, result)` sees each result as it arrives, for
    progress and messages. An exception that `work` raises stops the run.
    """
    jobs = list(jobs)
    results: list = [None] * len(jobs)
    report = on_result or (lambda job, result: None)
    reopen: list[int] = []
    pool = ProcessPoolExecutor(count(workers, len(jobs), chunk), initializer=initializer, initargs=initargs)
    try:
        starts = {pool.submit(_run_chunk, work, jobs[i:i + chunk]): i for i in range(0, len(jobs), chunk)}
        for future in as_completed(starts):
            start = starts[future]
            try:
                for i, result in enumerate(future.result(), start):
                    results[i] = result
                    report(jobs[i], result)
            except BrokenProcessPool:
                reopen += range(start, min(start + chunk, len(jobs)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if reopen:
        print(f"fetch: a worker died; running the {len(reopen)} jobs it left one at a time to find the cause",
              file=sys.stderr)
    single = None
    try:
        for i in sorted(reopen):
            single = single or ProcessPoolExecutor(1, initializer=initializer, initargs=initargs)
            try:
                results[i] = single.submit(work, jobs[i]).result()
            except BrokenProcessPool:
                results[i] = crashed(jobs[i])
                single.shutdown()
                single = None
            report(jobs[i], results[i])
    finally:
        if single is not None:
            single.shutdown(wait=True, cancel_futures=True)
    return results


def _run_chunk(work: Callable, jobs: list) -> list:
    return [work(job) for job in jobs]
