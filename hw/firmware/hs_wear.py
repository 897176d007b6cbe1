# Wear sensor debouncing: a raw on/off reading becomes a stable state with edges.


class Debouncer:
    """A state changes only after the raw reading has held the other value for hold_ms.

    update(raw_on, now_ms) returns True/False on an edge (the new state), else None. The first
    reading sets the state at once and is reported as an edge, so the desk learns the state.
    """

    def __init__(self, hold_ms):
        self.hold_ms = hold_ms
        self.state = None
        self._pending = None
        self._since = 0

    def update(self, raw_on, now_ms):
        raw_on = bool(raw_on)
        if self.state is None:
            self.state = raw_on
            return raw_on
        if raw_on == self.state:
            self._pending = None
            return None
        if self._pending != raw_on:
            self._pending = raw_on
            self._since = now_ms
        if now_ms - self._since >= self.hold_ms:
            self.state = raw_on
            self._pending = None
            return raw_on
        return None


def is_worn(raw, mode, threshold):
    """raw: an ADC reading (u16) in "adc" mode, a pin value in "digital" mode (0 = switch closed)."""
    if mode == "digital":
        return raw == 0
    return raw >= threshold
