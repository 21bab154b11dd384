"""``axisor_bus.side_by_side``: items run side by side in threads, what they queue leaves together at the end."""

from __future__ import annotations

import contextvars
import threading

import pytest

from axisor_bus.side_by_side import run_side_by_side, send_or_hold, sends_grouped


def test_outside_a_group_a_send_goes_at_once():
    sent: list[list[int]] = []
    send_or_hold(sent.append, [1, 2])
    assert sent == [[1, 2]]


def test_inside_a_group_each_kind_is_sent_once_at_the_end_in_order():
    notes: list[list[int]] = []
    other: list[list[int]] = []
    with sends_grouped():
        send_or_hold(notes.append, [3])
        send_or_hold(other.append, [9])
        send_or_hold(notes.append, [1, 2])
        assert (notes, other) == ([], [])
    assert (notes, other) == ([[3, 1, 2]], [[9]])
    send_or_hold(notes.append, [4])  # the group is closed: sent at once again
    assert notes == [[3, 1, 2], [4]]


def test_what_was_held_is_sent_even_when_the_group_ends_in_an_error():
    sent: list[list[int]] = []

    def fails_after_queueing() -> None:
        with sends_grouped():
            send_or_hold(sent.append, [5])
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails_after_queueing()
    assert sent == [[5]]


def test_items_run_in_threads_and_share_the_callers_group():
    sent: list[list[int]] = []
    names: set[str] = set()
    barrier = threading.Barrier(4, timeout=10)  # all four at once, or the test fails: they do run side by side

    def work(item: int) -> None:
        barrier.wait()
        names.add(threading.current_thread().name)
        send_or_hold(sent.append, [item])

    with sends_grouped():
        run_side_by_side([1, 2, 3, 4], work, threads=4)
        assert sent == []
    assert len(sent) == 1
    assert sorted(sent[0]) == [1, 2, 3, 4]
    assert len(names) == 4
    assert all(name.startswith("side-by-side") for name in names)


def test_an_item_that_raises_is_raised_after_every_item_ran():
    done: list[int] = []

    def work(item: int) -> None:
        if item == 1:
            raise ValueError("one")
        done.append(item)

    with pytest.raises(ValueError, match="one"):
        run_side_by_side([1, 2, 3], work, threads=3)
    assert sorted(done) == [2, 3]


def test_one_thread_runs_the_items_here_in_order():
    seen: list[tuple[int, str]] = []
    run_side_by_side([1, 2, 3], lambda item: seen.append((item, threading.current_thread().name)), threads=1)
    assert seen == [(i, threading.current_thread().name) for i in (1, 2, 3)]


def test_a_thread_still_running_after_its_group_ended_sends_at_once():
    sent: list[list[int]] = []
    started, release = threading.Event(), threading.Event()

    def late() -> None:
        started.set()
        release.wait(10)
        send_or_hold(sent.append, [7])  # its group was sent meanwhile: not held for nobody

    with sends_grouped():
        thread = threading.Thread(target=contextvars.copy_context().run, args=(late,))
        thread.start()
        started.wait(10)
    release.set()
    thread.join(10)
    assert sent == [[7]]
