# Device config of the headset MCU: defaults, validation, loading from the board's file.
#
# Runs on MicroPython and CPython (the virtual headset, tests). The file is /hs_config.json on the
# board, written by `headset-flash flash`. A missing or broken file never stops the firmware: each
# bad key falls back to its default and the problem is reported (in the hello "log" and in info).

import json

CONFIG_PATH = "hs_config.json"
ORIENTATION_AXES = "xyz"

# key -> default. Units: *_hz in hertz, *_ms in milliseconds, thresholds in raw ADC units (u16).
DEFAULTS = {
    "site": "",
    "desk": "",
    "model": "generic",
    # Device axes pointing (forward, left, up) on the head, e.g. "+x+y+z" or "-y+x+z".
    "orientation": "+x+y+z",
    "sample_hz": 50,
    "stream_hz": 10,
    "filter_alpha": 0.98,  # complementary filter weight of the gyro path, 0..1
    "i2c_id": 0,
    "i2c_sda": 4,
    "i2c_scl": 5,
    "i2c_freq": 400000,
    "imu_addr": 0x68,
    "wear_mode": "adc",  # "adc" (IR proximity / capacitive front end) or "digital" (switch to GND)
    "wear_pin": 26,
    "wear_threshold": 30000,  # adc: raw u16 at or above = worn
    "wear_debounce_ms": 300,
    "led_pin": -1,  # WS2812 data pin, -1 = no headset LED
    "led_count": 1,
    "safe_pin": 15,  # held low at reset: skip main.py (safe boot)
    "watchdog_ms": 5000,  # 0 = no watchdog
}

_INT_RANGES = {
    "sample_hz": (5, 200),
    "stream_hz": (1, 50),
    "i2c_id": (0, 1),
    "i2c_sda": (0, 29),
    "i2c_scl": (0, 29),
    "i2c_freq": (10000, 1000000),
    "imu_addr": (0x68, 0x69),
    "wear_pin": (0, 29),
    "wear_threshold": (0, 65535),
    "wear_debounce_ms": (0, 10000),
    "led_pin": (-1, 29),
    "led_count": (1, 64),
    "safe_pin": (0, 29),
    "watchdog_ms": (0, 8388),
}


def parse_orientation(text):
    """Parse "+x+y+z"-style text into ((axis, sign) for forward, left, up); raise ValueError.

    The mapping must be a proper rotation (right-handed), or the gyro would integrate backwards.
    """
    if not isinstance(text, str) or len(text) != 6:
        raise ValueError("orientation must look like '+x+y+z'")
    out = []
    for i in range(3):
        sign = text[2 * i]
        axis = text[2 * i + 1]
        if sign not in "+-" or axis not in ORIENTATION_AXES:
            raise ValueError("orientation must look like '+x+y+z'")
        out.append((ORIENTATION_AXES.index(axis), 1 if sign == "+" else -1))
    if len(set([a for a, _ in out])) != 3:
        raise ValueError("orientation names an axis twice")
    # Determinant of the signed permutation matrix: must be +1.
    m = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    for row in range(3):
        m[row][out[row][0]] = out[row][1]
    det = (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )
    if det != 1:
        raise ValueError("orientation is left-handed (a mirror image), not a rotation")
    return tuple(out)


def _check(key, value):
    """Return an error text for one key's value, or None when it is fine."""
    default = DEFAULTS[key]
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            return key + ": expected " + type(default).__name__
    if isinstance(default, int):
        if not isinstance(value, int):
            return key + ": expected an integer"
        lo, hi = _INT_RANGES[key]
        if value < lo or value > hi:
            return key + ": " + str(value) + " is outside " + str(lo) + ".." + str(hi)
        return None
    if isinstance(default, float):
        if not isinstance(value, (int, float)):
            return key + ": expected a number"
        if key == "filter_alpha" and not (0.0 <= value <= 1.0):
            return key + ": must be within 0..1"
        return None
    if not isinstance(value, str):
        return key + ": expected a string"
    if key == "orientation":
        try:
            parse_orientation(value)
        except ValueError as exc:
            return key + ": " + str(exc)
    if key == "wear_mode" and value not in ("adc", "digital"):
        return key + ": must be 'adc' or 'digital'"
    if len(value) > 32:
        return key + ": longer than 32 characters"
    return None


def validate(raw):
    """Merge `raw` (a dict from the file) over the defaults.

    Returns (config, errors): every bad or unknown key is left at its default and named in errors.
    """
    cfg = {}  # type: dict
    for key in DEFAULTS:
        cfg[key] = DEFAULTS[key]
    errors = []
    if not isinstance(raw, dict):
        return cfg, ["config is not a JSON object"]
    for key in raw:
        if key not in DEFAULTS:
            errors.append(str(key) + ": unknown key")
            continue
        err = _check(key, raw[key])
        if err is None:
            value = raw[key]
            if isinstance(DEFAULTS[key], float):
                value = float(value)
            cfg[key] = value
        else:
            errors.append(err)
    if cfg["stream_hz"] > cfg["sample_hz"]:
        errors.append("stream_hz: higher than sample_hz")
        cfg["stream_hz"] = DEFAULTS["stream_hz"]
        cfg["sample_hz"] = DEFAULTS["sample_hz"]
    return cfg, errors


def loads(text):
    """Validate config text; a file that is not JSON gives the defaults and one error."""
    try:
        raw = json.loads(text)
    except ValueError:
        cfg, _ = validate({})
        return cfg, ["config file is not valid JSON"]
    return validate(raw)


def load(path=CONFIG_PATH):
    """Read and validate the board's config file; missing file = defaults with one error."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        cfg, _ = validate({})
        return cfg, ["no config file (" + path + "): using defaults"]
    return loads(text)
