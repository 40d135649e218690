"""The dashboard's sign-in back-off (dashboard/components/login.py) under guesses made at the same moment from
many threads: every guess from one address waits its own turn, the global rate limit delays (never over its
ceiling) but never refuses, one guesser locks nobody else out, and the shared counts stay consistent. The real
LoginThrottle runs, on a frozen FakeClock (waits recorded, not spent) or on the real clock with short delays."""

from __future__ import annotations

import threading
import time

from dashboard_support import FakeClock

from dashboard.components.login import GLOBAL_DELAY_MAX_S, GLOBAL_KEY, LoginThrottle, client_keys


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
    """The global key counts at least every address's wrong guesses; no address key waits past the ceiling."""
    state = throttle.state()
    glob = state.get(GLOBAL_KEY)
    assert glob is not None or not state, state
    for key, s in state.items():
        assert glob.failures >= s.failures, (key, s, glob)
        if key != GLOBAL_KEY:
            assert s.not_before <= max(s.seen, glob.seen) + 2 * throttle.ceiling, (key, s)


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
    """Real threads, real clock, real sleep (scaled down: global gap 100 ms, global ceiling 300 ms): guesses
    from eight addresses at once are all checked (the global key never refuses), the first turns 100 ms apart,
    none waiting past the global ceiling, each checked no earlier than its turn. A watcher checks the shared
    state while they run."""
    throttle = LoginThrottle(base=0.1, ceiling=2.0, global_gap=0.1, global_ceiling=0.3)
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
    assert len(checked) == 8 and not problems and len(seen) > 2, (out, problems)
    gaps = [b[0] - a[0] for a, b in zip(checked, checked[1:])]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps[:3]), gaps
    assert all(at >= turn for turn, at in checked)  # each really waited for its turn
    assert 0.25 <= took < 20.0 and all(v.waited <= 0.3 + 1e-9 for v, _ in out)  # no wait over the global ceiling
    state = throttle.state()
    assert state[GLOBAL_KEY].failures == 8 and all(s.failures == 1 for k, s in state.items() if k != GLOBAL_KEY)
    consistent(throttle)


def test_one_guesser_locks_nobody_out():
    """Ten minutes of a wrong guess every 0.5 s from one address (the guesses overlap: waits are not spent)
    while a user at another address signs in with the right password every 20 s: the user gets in every time,
    within the global ceiling; the guesser's own checks stay 1, 2, 4... up to 30 s apart and the rest of its
    guesses are refused unchecked."""
    clock = FakeClock(frozen=True)
    throttle = LoginThrottle(clock=clock, sleep=clock.sleep)
    attacker, user = client_keys("203.0.113.9"), client_keys("198.51.100.7")
    turns, user_waits = [], []
    for step in range(1200):
        clock.now = 1000.0 + step * 0.5
        verdict = throttle.attempt(attacker, lambda: False)
        if not verdict.refused:
            turns.append(verdict.turn)
        else:
            assert 30.0 < verdict.next_wait <= 60.0 + GLOBAL_DELAY_MAX_S and not verdict.ok  # one turn queued
        if step % 40 == 0:
            verdict = throttle.attempt(user, lambda: True)
            assert verdict.ok and not verdict.refused, verdict
            user_waits.append(verdict.waited)
        consistent(throttle)
    assert len(user_waits) == 30 and max(user_waits) <= GLOBAL_DELAY_MAX_S
    gaps = [b - a for a, b in zip(turns, turns[1:])]
    assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0], gaps
    assert all(30.0 <= gap <= 30.0 + GLOBAL_DELAY_MAX_S for gap in gaps[5:]), gaps
    assert len(turns) <= 26  # about one guess checked each 30 s: the rest refused


def test_a_storm_from_many_addresses_delays_a_fresh_address_by_the_global_ceiling_at_most():
    """Two hundred addresses guess at the same moment: all are checked (each address's first guess), spaced by
    the global gap until the backlog reaches the global ceiling; a user at a fresh address then waits no more
    than that ceiling and gets in."""
    clock = FakeClock(frozen=True)
    throttle = LoginThrottle(clock=clock, sleep=clock.sleep)
    out = guess_at_once(throttle, [client_keys(f"10.9.{i // 250}.{i % 250}") for i in range(200)])
    assert not any(v.refused for v, _ in out) and max(v.waited for v, _ in out) <= GLOBAL_DELAY_MAX_S
    assert sorted(v.waited for v, _ in out)[:4] == [0.0, 0.5, 1.0, 1.5]
    verdict = throttle.attempt(client_keys("192.0.2.7"), lambda: True)
    assert verdict.ok and 0 < verdict.waited <= GLOBAL_DELAY_MAX_S
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
