"""keyspot.quiet_tf: the runtimes' start-up notes dropped from stderr, every other line kept."""

import os
import threading

from keyspot.quiet_tf import notes_dropped

XNNPACK_NOTE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"


def _write_fd2(text: str) -> None:
    # The runtimes write to the descriptor, not to sys.stderr.
    os.write(2, text.encode())


def test_notes_are_dropped_and_every_other_line_passed_on(capfd):
    with notes_dropped():
        _write_fd2(XNNPACK_NOTE)
        _write_fd2("E0000 a real error\n")
        _write_fd2("I0000 port.cc:153] oneDNN custom operations are on. You may see ...\n")
    _write_fd2("after\n")
    assert capfd.readouterr().err == "E0000 a real error\nafter\n"


def test_nested_and_threaded_uses_give_the_descriptor_back(capfd):
    before = os.fstat(2)
    with notes_dropped():
        with notes_dropped():
            _write_fd2(XNNPACK_NOTE + "inner\n")
        _write_fd2("outer\n")

    def speak(i: int) -> None:
        with notes_dropped():
            _write_fd2(XNNPACK_NOTE + f"thread {i}\n")

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    _write_fd2("still stderr\n")
    err = capfd.readouterr().err.splitlines()
    assert err[:2] == ["inner", "outer"] and err[-1] == "still stderr"
    assert sorted(err[2:-1]) == [f"thread {i}" for i in range(4)]
