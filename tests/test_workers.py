"""keyspot.data.workers: the one worker pool of every dataset source."""

from __future__ import annotations

import os

from keyspot.data import workers

_offset = 0


def _init(offset: int) -> None:
    global _offset
    _offset = offset


def _square(job: int) -> int:
    if job == 13:
        os._exit(3)   # as a decoder crash would: the worker dies without a word
    return job * job + _offset


def test_results_come_in_job_order_and_a_crash_is_only_its_own_result(capsys):
    seen = []
    results = workers.run(_square, list(range(40)), workers=3, initializer=_init, initargs=(1,), chunk=4,
                          crashed=lambda job: f"crashed on {job}", on_result=lambda job, r: seen.append(job))
    assert results == [f"crashed on {j}" if j == 13 else j * j + 1 for j in range(40)]
    assert sorted(seen) == list(range(40))
    assert "a worker died" in capsys.readouterr().err


def test_one_worker_still_runs_apart_from_the_caller():
    results = workers.run(_square, [2, 13, 3], workers=1, initializer=_init, initargs=(0,),
                          crashed=lambda job: None)
    assert results == [4, None, 9] and _offset == 0


def test_count_never_starts_more_processes_than_chunks():
    assert workers.count(8, 3, chunk=1) == 3
    assert workers.count(8, 100, chunk=64) == 2
    assert workers.count(0, 0) == 1
    assert workers.count(0, 10_000) == len(os.sched_getaffinity(0))


def test_every_core_means_the_cores_this_process_may_use():
    """`workers: 0` counts the cores of the process's CPU affinity (what a
    container or `taskset` leaves it), not the machine's."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert workers.count(0, 100) == 1
    finally:
        os.sched_setaffinity(0, allowed)
