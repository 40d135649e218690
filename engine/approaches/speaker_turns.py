"""Who says what in a call: its turns, read from any ``Name:`` prefix, and the call split into the customer's side
and the agent's side (``pooling="speakers"`` of the embeddings approach embeds each side apart).

* A turn starts at a line whose start is a speaker's name (letters first, in any script; up to 40 characters
  of letters, digits, spaces, ``.'-``) followed by a colon and a space or the line's end: ``Agent:``,
  ``Customer:``, ``Maya:``, ``Speaker 2:``, ``José Ñúñez:``. A line without one continues the turn before it
  (lines before the first prefix belong to the first speaker). CRLF, blank lines and empty turns are fine.
* The agent is the speaker whose name says so (``agent``, ``rep``, ``sales``...); else, when a speaker's name says
  *customer* (``customer``, ``client``, ``prospect``...), the first other speaker; else whoever speaks first
  (the one who opens the call). Every other speaker is on the customer's side.
* :func:`speaker_sides` gives ``(customer text, agent text)``; a side nobody spoke on is ``""`` (the caller
  falls back to the whole call), and a call with no prefixed line at all gives ``None``.
"""

from __future__ import annotations

import re

#: A speaker prefix at a line's start: a name that starts with a letter (any script), then ``:`` and a space
#: or the line's end (so ``https://...`` and ``12:30`` are not speakers).
PREFIX = re.compile(r"^\s*([^\W\d_][\w .'\-]{0,39}?)\s*:(?:\s+|$)(.*)$")
AGENT_WORDS = frozenset(
    "agent rep representative sales salesperson seller advisor adviser consultant ae sdr bdr operator host "
    "interviewer support associate".split()
)
CUSTOMER_WORDS = frozenset("customer client prospect caller lead buyer guest user interviewee".split())


def parse_turns(text: str) -> list[tuple[str | None, str]]:
    """``(speaker, words)`` per turn in order; ``speaker`` is ``None`` only when no line of the call has a prefix.
    Empty turns are dropped; consecutive lines of one speaker stay separate turns."""
    turns: list[tuple[str | None, str]] = []
    pending: list[str] = []  # lines before the first prefix
    for line in str(text).splitlines():
        match = PREFIX.match(line)
        if match:
            speaker, words = " ".join(match.group(1).split()), match.group(2).strip()
            if pending:
                turns.append((speaker, " ".join(pending)))
                pending = []
            if words:
                turns.append((speaker, words))
            elif not any(s == speaker for s, _ in turns):
                turns.append((speaker, ""))  # remembered as a speaker (the call's order), dropped below
            continue
        line = line.strip()
        if not line:
            continue
        if turns:
            turns.append((turns[-1][0], line))
        else:
            pending.append(line)
    if not turns:
        return [(None, " ".join(pending))] if pending else []
    return turns


def _words(name: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", name.casefold()))


def agent_of(speakers: list[str]) -> str | None:
    """The agent among ``speakers`` (in order of first turn); see the module's rules."""
    if not speakers:
        return None
    for speaker in speakers:
        if _words(speaker) & AGENT_WORDS:
            return speaker
    if any(_words(s) & CUSTOMER_WORDS for s in speakers):
        return next((s for s in speakers if not _words(s) & CUSTOMER_WORDS), None)
    return speakers[0]


def speaker_sides(text: str) -> tuple[str, str] | None:
    """``(customer text, agent text)``: each side's turns, one a line; ``None`` when no line has a prefix."""
    turns = parse_turns(text)
    if not turns or turns[0][0] is None:
        return None
    speakers = list(dict.fromkeys(s for s, _ in turns))
    agent = agent_of(speakers)
    customer = [w for s, w in turns if s != agent and w]
    agent_side = [w for s, w in turns if s == agent and w]
    return "\n".join(customer), "\n".join(agent_side)


def speaker_pieces(texts: list[str]) -> list[list[str]]:
    """``[customer side, agent side]`` per call for ``pooling="speakers"``; a side nobody spoke on, and both
    sides of a call without prefixes, are the whole call (today's path), so every row has two pieces."""
    out = []
    for text in texts:
        sides = speaker_sides(text)
        whole = str(text)
        if sides is None:
            out.append([whole, whole])
        else:
            out.append([side or whole for side in sides])
    return out
