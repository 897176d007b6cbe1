# The real hardware layer of the headset MCU (RP2040 + MPU-6050 + wear sensor + WS2812).
# Everything that touches `machine` lives here; hs_app only calls these methods.
# fakehal.py implements the same methods for the virtual headset and the tests.

import select
import sys
import time

import machine


class Hal:
    def __init__(self):
        self.i2c = None
        self.wear_adc = None
        self.wear_pin = None
        self.led = None
        self.wdt = None
        self.cfg = None
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        self._out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else sys.stdout

    def configure(self, cfg):
        """Build the buses and pins that the validated config names."""
        self.cfg = cfg
        self.i2c = machine.I2C(cfg["i2c_id"], sda=machine.Pin(cfg["i2c_sda"]), scl=machine.Pin(cfg["i2c_scl"]),
                               freq=cfg["i2c_freq"])
        if cfg["wear_mode"] == "adc":
            self.wear_adc = machine.ADC(machine.Pin(cfg["wear_pin"]))
        else:
            self.wear_pin = machine.Pin(cfg["wear_pin"], machine.Pin.IN, machine.Pin.PULL_UP)
        if cfg["led_pin"] >= 0:
            import neopixel

            self.led = neopixel.NeoPixel(machine.Pin(cfg["led_pin"]), cfg["led_count"])
        if cfg["watchdog_ms"] > 0:
            self.wdt = machine.WDT(timeout=cfg["watchdog_ms"])

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def unique_id(self):
        return machine.unique_id()

    def mp_version(self):
        v = sys.implementation.version
        return "%d.%d.%d" % (v[0], v[1], v[2])

    def read_wear(self):
        """ADC mode: a u16 reading; digital mode: the pin value (0 = switch closed = worn)."""
        if self.wear_adc is not None:
            return self.wear_adc.read_u16()
        if self.wear_pin is not None:
            return self.wear_pin.value()
        return 0

    def set_led(self, rgb):
        led = self.led
        if led is None:
            return False
        for i in range(len(led)):
            led[i] = (rgb[0], rgb[1], rgb[2])
        led.write()
        return True

    def read_serial(self):
        """Whatever bytes the desk sent, without blocking (b"" when none)."""
        data = b""
        while self._poll.poll(0) and len(data) < 256:
            chunk = self._in.read(1)
            if not chunk:
                break
            data += chunk if isinstance(chunk, bytes) else chunk.encode()
        return data

    def write_serial(self, data):
        self._out.write(data)

    def take_connect(self):
        """USB CDC DTR is not visible from MicroPython here: the desk asks with get_info."""
        return False

    def feed_watchdog(self):
        if self.wdt is not None:
            self.wdt.feed()

    def idle(self):
        time.sleep_ms(2)
