"""warmup.own_memory: a forked child that owns its memory takes no copy-on-write faults
when it then touches the parent's objects (what a request does to the worker's)."""

import os
import resource

import pytest

from cni_rkt.worker import warmup

SHARED = [object() for _ in range(200_000)]  # ~200 pages of objects the child will touch


def faults_touching_shared_objects(own_first: bool) -> int:
    """Fork; in the child optionally own_memory(), then count minor faults while touching
    every object of SHARED (iteration writes each reference count)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if own_first:
                warmup.own_memory()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for item in SHARED:
                item.__class__  # a read that still writes the refcount of `item`
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            os.write(write_end, str(faults).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        faults = int(pipe.read() or "-1")
    os.waitpid(pid, 0)
    return faults


def test_a_child_that_owns_its_memory_copies_no_pages_on_the_request_path():
    if warmup.own_memory() == 0:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE (Linux 5.14+)")
    shared = faults_touching_shared_objects(own_first=False)
    owned = faults_touching_shared_objects(own_first=True)
    assert shared > 100  # the parent's pages are copied one fault at a time
    assert owned < shared / 10
