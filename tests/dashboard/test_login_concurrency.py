"""The dashboard's sign-in back-off (dashboard/components/login.py) under guesses made at the same moment from
many threads: every guess waits its own turn, none is checked beside another, the global wait is never below an
address's, and the shared counts stay consistent. The real LoginThrottle runs; one test on a frozen FakeClock
(waits recorded, not spent), one on the real clock with short delays."""

from __future__ import annotations

import threading
import time

from dashboard_support import FakeClock

from dashboard.components.login import GLOBAL_KEY, LoginThrottle, client_keys


def guess_at_once(throttle: LoginThrottle, keys_per_thread: list[tuple[str, ...]], right: set[int] = frozenset()):
    """Every thread makes one guess as soon as all are ready; returns [(verdict, clock time of its check)]."""
    ready = threading.Barrier(len(keys_per_thread))
    out: list = [None] * len(keys_per_thread)

    def guess(i: int) -> None:
        checked = []
        ready.wait()
        verdict = throttle.attempt(keys_per_thread[i], lambda: checked.append(throttle.clock()) or i in right)
        out[i] = (verdict, checked[0] if checked else None)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(len(keys_per_thread))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(o is not None for o in out)
    return out


def consistent(throttle: LoginThrottle) -> None:
    """The global key counts at least every address's wrong guesses and holds them back at least as long."""
    state = throttle.state()
    glob = state.get(GLOBAL_KEY)
    assert glob is not None or not state, state
    for key, s in state.items():
        assert glob.failures >= s.failures, (key, s, glob)
        assert glob.not_before >= s.not_before, (key, s, glob)


def test_twenty_guesses_at_once_take_turns_or_are_refused():
    """Twenty sessions, each with a forged X-Forwarded-For of its own, guess at the same moment: five are checked,
    at 0, 1, 3, 7 and 15 s (each its own back-off after the one before), the rest are refused unchecked."""
    clock = FakeClock(frozen=True)
    throttle = LoginThrottle(clock=clock, sleep=clock.sleep)
    keys = [client_keys(None, [f"198.51.100.{i}"]) for i in range(20)]
    out = guess_at_once(throttle, keys)
    checked = sorted(v.waited for v, _ in out if not v.refused)  # each turn: how long after the moment it began
    assert checked == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert sorted(clock.take()) == [1.0, 3.0, 7.0, 15.0]
    refused = [v for v, at in out if v.refused]
    assert len(refused) == 15 and all(v.next_wait == 31.0 and not v.ok for v in refused)
    assert all(at is None for v, at in out if v.refused)  # a refused guess is never checked
    state = throttle.state()
    assert state[GLOBAL_KEY].failures == 5 and state["ip:loopback"].failures == 5
    assert sum(s.failures for k, s in state.items() if k.startswith("xff:")) == 5
    consistent(throttle)


def test_parallel_guesses_on_the_real_clock_each_wait_their_turn():
    """Real threads, real clock, real sleep (1 s scaled down to 100 ms, ceiling 2 s): guesses from eight addresses
    at once get turns at least 100, 200, 400, 800 ms apart, each checked no earlier than its turn; the other three
    would wait over the ceiling and are refused. A watcher checks the shared state while they run."""
    throttle = LoginThrottle(base=0.1, ceiling=2.0)
    keys = [client_keys(f"203.0.113.{i}") for i in range(8)]
    stop, seen, problems = threading.Event(), [], []

    def watch() -> None:
        while not stop.is_set():
            try:
                consistent(throttle)
            except AssertionError as e:  # raised in this thread, reported by the test
                problems.append(e)
            seen.append(1)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    began = time.monotonic()
    try:
        out = guess_at_once(throttle, keys)
    finally:
        stop.set()
        watcher.join()
    took = time.monotonic() - began
    checked = sorted((v.turn, at) for v, at in out if not v.refused)
    assert len(checked) == 5 and not problems and len(seen) > 10, (out, problems)
    gaps = [b[0] - a[0] for a, b in zip(checked, checked[1:])]
    assert all(gap >= least - 1e-9 for gap, least in zip(gaps, (0.1, 0.2, 0.4, 0.8))), gaps
    assert all(at >= turn for turn, at in checked)  # each really waited for its turn
    assert all(v.refused and 2.0 < v.next_wait for v, _ in out if v.turn > checked[-1][0])
    assert 1.5 <= took < 20.0 and all(v.waited <= 2.0 for v, _ in out)  # no wait over the ceiling
    state = throttle.state()
    assert state[GLOBAL_KEY].failures == 5 and sum(s.failures for k, s in state.items() if k != GLOBAL_KEY) == 5
    consistent(throttle)


def test_a_right_password_after_a_storm_works_once_its_turn_comes():
    """Many addresses guess wrong at once, then the user with the password tries until not refused: it waits no
    longer than the ceiling, gets in, and its own address holds no count afterwards."""
    clock = FakeClock(frozen=True)
    throttle = LoginThrottle(clock=clock, sleep=clock.sleep)
    guess_at_once(throttle, [client_keys(None, [f"10.9.0.{i}"]) for i in range(12)])
    clock.frozen = False
    user = client_keys(None, ["192.0.2.7"])
    verdict = throttle.attempt(user, lambda: True)
    assert verdict.refused and verdict.next_wait > 30.0
    clock.now += verdict.next_wait - 30.0
    verdict = throttle.attempt(user, lambda: True)
    assert verdict.ok and verdict.waited == 30.0
    assert "xff:192.0.2.7" not in throttle.state() and "ip:loopback" not in throttle.state()
    consistent(throttle)
