# A fake hardware layer for the headset firmware: an MPU-6050 register model and a wear sensor
# that replay a posture trace, a byte-queue serial port, an LED that remembers its colour.
#
# Written in the MicroPython subset: the virtual headset runs it under CPython and, after a
# "flash", under MicroPython's WebAssembly port next to the flashed firmware. Not flashed to boards.

import math
import struct

import hs_config

WORN_RAW = 52000  # ADC u16 with the headset on (IR proximity sees skin)
OFF_RAW = 1500
RAMP_S = 0.5  # posture changes between segments ramp over this long


class Trace:
    """Segments [t0_s, t1_s, pitch_deg, roll_deg, worn]; after the last one the last holds."""

    def __init__(self, segments):
        self.segments = [list(s) for s in segments]

    def at(self, t_s):
        segs = self.segments
        if not segs:
            return 0.0, 0.0, True
        prev = segs[0]
        for seg in segs:
            if t_s < seg[1] or seg is segs[-1]:
                p, r = float(seg[2]), float(seg[3])
                into = t_s - seg[0]
                if seg is not segs[0] and 0.0 <= into < RAMP_S:
                    f = into / RAMP_S
                    p = prev[2] + (p - prev[2]) * f
                    r = prev[3] + (r - prev[3]) * f
                return p, r, bool(seg[4])
            prev = seg
        return 0.0, 0.0, True


class FakeI2C:
    """An MPU-6050 at `addr` whose accel/gyro registers follow the trace at the clock's time."""

    def __init__(self, hal, addr=0x68):
        self.hal = hal
        self.addr = addr
        self.regs = {0x75: 0x68, 0x6B: 0x40}  # WHO_AM_I, PWR_MGMT_1 (asleep after power-up)
        self.present = True
        self.gyro_bias = (0.6, -0.4, 0.25)  # deg/s, as a real part has
        self.noise = 12345

    def _check(self, addr):
        if not self.present or addr != self.addr:
            raise OSError(19)  # ENODEV, as machine.I2C raises for a missing device

    def writeto_mem(self, addr, reg, buf):
        self._check(addr)
        self.regs[reg] = buf[0]

    def _rand(self):
        self.noise = (self.noise * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.noise / 0x7FFFFFFF) - 0.5

    def readfrom_mem(self, addr, reg, n):
        self._check(addr)
        if reg != 0x3B or n != 14:
            return bytes([self.regs.get(reg + i, 0) for i in range(n)])
        if self.regs.get(0x6B, 0) & 0x40:
            return bytes(14)  # asleep: the data registers stay zero
        t = self.hal.now_s()
        p, r, _ = self.hal.trace.at(t)
        p0, r0, _ = self.hal.trace.at(t - 0.02)
        rad = math.pi / 180.0
        body_a = (-math.sin(p * rad), math.cos(p * rad) * math.sin(r * rad), math.cos(p * rad) * math.cos(r * rad))
        body_g = ((r - r0) / 0.02, (p - p0) / 0.02, 0.0)
        dev_a = self.hal.to_device(body_a)
        dev_g = self.hal.to_device(body_g)
        vals = []
        for i in range(3):
            vals.append(_clamp(int((dev_a[i] + 0.004 * self._rand()) * 16384)))
        vals.append(0)  # temperature
        for i in range(3):
            vals.append(_clamp(int((dev_g[i] + self.gyro_bias[i] + 0.05 * self._rand()) * 131)))
        return struct.pack(">hhhhhhh", vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6])


def _clamp(v):
    return -32768 if v < -32768 else (32767 if v > 32767 else v)


class FakeHal:
    """The HAL interface of hal.py, backed by a trace and a clock.

    clock_ms(): the board's milliseconds since boot. mounting: how the IMU really sits on the
    head, in the config's orientation syntax (the firmware's own config should say the same).
    """

    def __init__(self, segments, clock_ms, unique_id=b"\xe6\x61\x41\x03\xe7\x45\x2d\x2f",
                 mp_version="1.27.0", mounting="+x+y+z", has_led=True):
        self.trace = Trace(segments)
        self.clock_ms = clock_ms
        self.uid = unique_id
        self.version = mp_version
        self.mounting = hs_config.parse_orientation(mounting)
        self.has_led = has_led
        self.i2c = FakeI2C(self)
        self.rx = b""
        self.tx = []
        self.led = None
        self.watchdog_feeds = 0
        self.wear_override = None
        self.cfg = None
        self.host_connects = 0  # bumped by the virtual headset when the desk opens the port
        self._seen_connects = 0

    def configure(self, cfg):
        """The real HAL builds its buses from the config; the fake only keeps it."""
        self.cfg = cfg

    def now_s(self):
        return self.clock_ms() / 1000.0

    def to_device(self, body):
        dev = [0.0, 0.0, 0.0]
        for i in range(3):
            axis, sign = self.mounting[i]
            dev[axis] = body[i] * sign
        return dev

    def ticks_ms(self):
        return int(self.clock_ms())

    def ticks_diff(self, a, b):
        return a - b

    def unique_id(self):
        return self.uid

    def mp_version(self):
        return self.version

    def read_wear(self):
        worn = self.trace.at(self.now_s())[2] if self.wear_override is None else self.wear_override
        return WORN_RAW if worn else OFF_RAW

    def set_led(self, rgb):
        if not self.has_led:
            return False
        self.led = (rgb[0], rgb[1], rgb[2])
        return True

    def read_serial(self):
        data = self.rx
        self.rx = b""
        return data

    def write_serial(self, data):
        self.tx.append(data)

    def take_tx(self):
        out = b"".join(self.tx)
        self.tx = []
        return out

    def take_connect(self):
        """True once per time the host opened the port (DTR on a real USB CDC port)."""
        if self.host_connects != self._seen_connects:
            self._seen_connects = self.host_connects
            return True
        return False

    def feed_watchdog(self):
        self.watchdog_feeds += 1

    def idle(self):
        pass
