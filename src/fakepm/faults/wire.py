"""Byte-level faults: how the I/O loop cuts, slices, delays and ends the backend's output.

A WireShaper is sans-I/O: `shape(data)` turns one write into a list of
`(delay_before_seconds, chunk, then)` where `then` is None, "close" (FIN) or "reset" (RST).
The loop (loop.py) sends the chunks in order with loop timers between them; once a piece
says close/reset, later output is dropped. Slices, a dribble and a delay are one-off: once
`spent`, the loop drops the shaper and output flows normally again.
"""

from __future__ import annotations

SLICE_PAUSE = 0.003  # between slices, so that each slice leaves as its own TCP segment


class WireShaper:
    def __init__(self, kind: str, value, *, then: str | None = None):
        self.kind = kind  # "slice" | "cut" | "dribble" | "delay" | "close_after"
        self.value = value
        self.then = then  # for cut: "close" | "reset"
        self.sent = 0  # bytes shaped so far
        self.done = False  # nothing more leaves (after a cut / close)

    def shape(self, data: bytes) -> list:
        if self.done:
            return []
        k = self.kind
        if k == "cut":
            room = self.value - self.sent
            if len(data) < room:
                self.sent += len(data)
                return [(0.0, data, None)]
            self.done = True
            self.sent += room
            return [(0.0, data[:room], self.then or "close")]
        if k == "slice":
            return self._slice(data)
        if k == "dribble":  # the next write only (one statement's answer, usually)
            self.kind = "pass"
            seconds, pieces = self.value
            n = max(1, min(pieces, len(data)))
            step = -(-len(data) // n)
            gap = seconds / n
            out = [(gap, data[i:i + step], None) for i in range(0, len(data), step)]
            self.sent += len(data)
            return out
        if k == "delay":  # delay the next write once, then pass through
            self.kind = "pass"
            return [(float(self.value), data, None)]
        if k == "close_after":  # send what comes, then close after `value` seconds of silence
            self.done = True
            return [(0.0, data, None), (float(self.value), b"", "close")]
        return [(0.0, data, None)]

    def _slice(self, data: bytes) -> list:
        spec = self.value
        start = self.sent
        end = start + len(data)
        if "offsets" in spec:
            cuts = [o for o in spec["offsets"] if start < o < end]
        else:
            every, limit = spec["every"], spec["limit"]
            first = (start // every + 1) * every
            cuts = list(range(first, min(end, limit + 1), every))
        out = []
        prev = start
        for c in cuts + [end]:
            if c > prev:
                out.append((SLICE_PAUSE if out else 0.0, data[prev - start:c - start], None))
                prev = c
        self.sent = end
        last = spec["offsets"][-1] if "offsets" in spec else spec["limit"]
        if end >= last:
            self.kind = "pass"
        return out

    @property
    def spent(self) -> bool:
        """Nothing left to shape: the loop drops the shaper."""
        return self.kind == "pass"
