"""The sign-in back-off, shared by every session of the dashboard process.

Each sign-in attempt is keyed by the client's address (``st.context.ip_address``; Streamlit gives None for a
loopback connection, so everything that comes through a reverse proxy on this machine shares one key) and, when
the request carries ``X-Forwarded-For``, by its right-most entry as one more key. That header can be forged, so it
never replaces the connection's own address: a forger who changes the header on each guess still waits for its
connection's back-off. A global key counts every attempt from everywhere and spaces their checks.

The wait before an attempt is checked is its address keys' wait: 0 s with no wrong attempt, then 1 s, 2 s,
4 s... up to :data:`FAIL_DELAY_MAX_S` after each further one. Attempts reserve their turn under one lock, so
attempts from one address made at the same moment (many tabs, many threads) are checked one after another,
each its own wait after the one before; one whose turn would come later than the ceiling is refused unchecked
("try again in N s"). Only the address keys refuse. The global key is a rate limit that only delays: checks
from everywhere together are spaced :data:`GLOBAL_GAP_S` apart, and no attempt waits more than
:data:`GLOBAL_DELAY_MAX_S` for it, so one guesser (or many) cannot lock anyone else out: an address with no
wrong attempt of its own is checked within that ceiling whatever the others do. A right password resets its
address's keys; keys unused for :data:`FORGET_AFTER_S` are forgotten, and at most :data:`MAX_KEYS` are held.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: the wait after the first wrong password, doubled for each further one, capped
FAIL_DELAY_S, FAIL_DELAY_MAX_S = 1.0, 30.0
#: checks from every address together are at least this far apart (the global rate limit: 2 a second) ...
GLOBAL_GAP_S = 0.5
#: ... but no attempt waits longer than this for the global key: it delays, it never refuses
GLOBAL_DELAY_MAX_S = 3.0
#: a key (address or global) with no attempt for this long starts again from no wait
FORGET_AFTER_S = 15 * 60.0
#: the most address keys held; the least recently seen go first (the global key always stays)
MAX_KEYS = 10_000
GLOBAL_KEY = "global"
#: the longest header value read for an address (a longer one is not an address)
MAX_ADDRESS_CHARS = 64
#: request headers a reverse proxy adds: seen on a dashboard bound to loopback, it is reachable from elsewhere
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto")


def failure_delay(failures: int, base: float = FAIL_DELAY_S, ceiling: float = FAIL_DELAY_MAX_S) -> float:
    """Seconds the next attempt waits after ``failures`` wrong ones: 0, then 1, 2, 4... up to ``ceiling``."""
    if failures <= 0:
        return 0.0
    return min(base * 2 ** min(failures - 1, 64), ceiling)


@dataclass
class KeyState:
    failures: int = 0  # wrong attempts, and attempts still being checked
    not_before: float = 0.0  # no attempt of this key is checked earlier (clock seconds)
    seen: float = 0.0  # clock time of its last attempt


@dataclass(frozen=True)
class Verdict:
    ok: bool  # the password was right
    refused: bool  # not checked: its address's turn was further away than the ceiling
    waited: float  # seconds waited before the check (0 when refused)
    failures: int  # the address's wrong attempts (this one included when wrong)
    next_wait: float  # seconds until this address may try again (the retry time when refused)
    turn: float = 0.0  # clock time from which it was checked (its turn; when refused, the turn it was refused)


class LoginThrottle:
    """Per-address and global back-off for sign-in attempts; safe to share between threads.

    ``clock`` and ``sleep`` are injectable so that tests can run the real code without waiting.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        base: float = FAIL_DELAY_S,
        ceiling: float = FAIL_DELAY_MAX_S,
        forget_after: float = FORGET_AFTER_S,
        max_keys: int = MAX_KEYS,
        global_gap: float = GLOBAL_GAP_S,
        global_ceiling: float = GLOBAL_DELAY_MAX_S,
    ) -> None:
        self.clock, self.sleep = clock, sleep
        self.base, self.ceiling, self.forget_after, self.max_keys = base, ceiling, forget_after, max_keys
        self.global_gap, self.global_ceiling = global_gap, global_ceiling
        self._lock = threading.Lock()
        self._keys: dict[str, KeyState] = {}
        self._ticket = 0

    def delay(self, failures: int) -> float:
        return failure_delay(failures, self.base, self.ceiling)

    def attempt(self, keys: Sequence[str], check: Callable[[], bool]) -> Verdict:
        """Wait for this attempt's turn, then run ``check`` (True: the password is right) and record the answer.

        ``keys`` are the client's address keys (:func:`client_keys`); the global key is added here."""
        address = [k for k in dict.fromkeys(keys) if k != GLOBAL_KEY] or ["unknown"]
        with self._lock:
            now = self.clock()
            self._forget(now)
            states = [self._keys.setdefault(k, KeyState()) for k in address]
            glob = self._keys.setdefault(GLOBAL_KEY, KeyState())
            own = max(now, *(s.not_before for s in states))  # the address's turn: refused when too far
            if own - now > self.ceiling:
                return Verdict(False, True, 0.0, states[0].failures, own - now, own)
            # the global turn delays, by no more than its ceiling, and never refuses
            start = max(own, min(max(now, glob.not_before), now + self.global_ceiling))
            saved_global = glob.not_before
            # counted as wrong until checked: attempts made meanwhile queue behind this one
            for s in states:
                s.failures += 1
                s.not_before = max(s.not_before, start + self.delay(s.failures))
                s.seen = now
            glob.failures += 1
            # the next global turn: this one's plus the gap, the backlog held to the ceiling (a storm from many
            # addresses then delays each check by the ceiling, and no more)
            glob.not_before = max(glob.not_before, start) + self.global_gap
            glob.not_before = min(glob.not_before, max(start, now + self.global_ceiling) + self.global_gap)
            glob.seen = now
            self._ticket += 1
            ticket = self._ticket
        if start > now:
            self.sleep(start - now)
        ok = bool(check())
        with self._lock:
            glob = self._keys.setdefault(GLOBAL_KEY, KeyState())
            if ok:
                for k in address:
                    self._keys.pop(k, None)
                glob.failures = max(0, glob.failures - 1)
                if ticket == self._ticket:  # nobody queued behind it: give the global turn back
                    glob.not_before = saved_global
                return Verdict(True, False, start - now, 0, 0.0, start)
            after = self.clock()
            pending = [self._keys.get(k) for k in address]
            failures = pending[0].failures if pending[0] else 0
            next_wait = max(0.0, *(s.not_before - after for s in pending if s is not None))
            return Verdict(False, False, start - now, failures, next_wait, start)

    def state(self) -> dict[str, KeyState]:
        """A consistent copy of every key's state (for tests and diagnostics)."""
        with self._lock:
            return {k: KeyState(s.failures, s.not_before, s.seen) for k, s in self._keys.items()}

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()

    def _forget(self, now: float) -> None:
        stale = [k for k, s in self._keys.items() if now - max(s.seen, s.not_before) > self.forget_after]
        for k in stale:
            del self._keys[k]
        extra = len(self._keys) - self.max_keys
        if extra > 0:
            oldest = sorted((s.seen, k) for k, s in self._keys.items() if k != GLOBAL_KEY)[:extra]
            for _, k in oldest:
                del self._keys[k]


def normal_address(value: object) -> str | None:
    """An IP address as one key: IPv4 as is, IPv6 by its /64 network (one host can use every address of
    its /64), an IPv4-mapped IPv6 address as the IPv4 one. None for anything that is not an address."""
    if not isinstance(value, str) or len(value) > MAX_ADDRESS_CHARS:
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def client_keys(remote_ip: object, forwarded_for: Iterable[str] = ()) -> tuple[str, ...]:
    """The back-off keys of a client: its connection's address (``loopback`` when Streamlit reports none, as it
    does for loopback connections, for example from a reverse proxy on this machine), and the right-most
    ``X-Forwarded-For`` entry (the one the nearest proxy added) as a second key when there is one."""
    keys = [f"ip:{normal_address(remote_ip) or ('loopback' if remote_ip is None else 'unknown')}"]
    values = [v for v in forwarded_for if isinstance(v, str)]
    if values:
        last = values[-1][-(MAX_ADDRESS_CHARS * 4) :].split(",")[-1]
        keys.append(f"xff:{normal_address(last) or 'invalid'}")
    return tuple(keys)


def wait_words(seconds: float) -> str:
    return f"{math.ceil(seconds - 1e-9)} s"


#: the process-wide back-off every session of the dashboard shares
THROTTLE = LoginThrottle()
