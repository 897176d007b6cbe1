# The headset firmware's main logic: sample the IMU, filter, stream posture, report wear edges,
# answer the desk over the headset link. Hardware is reached only through `hal` (see hal.py for
# the real one, fakehal.py for the virtual headset and the tests), so this module runs unchanged
# on the RP2040, under MicroPython's WebAssembly port and under CPython.
#
# The loop is step()-driven: main.py calls run(), which calls step() forever; the virtual headset
# calls step() itself with a fake clock.

import headset_link as link
import hs_config
import hs_filter
import hs_mpu6050
import hs_wear

FW_VERSION = "1.0.0"
CAL_MS = 1000  # gyro bias calibration window
CAL_MAX_SPREAD_DPS = 3.0  # more spread than this while calibrating = the head moved


class App:
    """One headset. `hal` gives: ticks_ms, ticks_diff, i2c, read_wear, set_led, read_serial,
    write_serial, take_connect, feed_watchdog, unique_id, mp_version, configure, idle."""

    def __init__(self, hal, cfg, cfg_errors=None, fw_version=FW_VERSION):
        self.hal = hal
        self.cfg = cfg
        self.cfg_errors = cfg_errors or []
        self.fw_version = fw_version
        self.seq = link.Sequencer()
        self.lines = link.LineBuffer()
        self.orientation = hs_config.parse_orientation(cfg["orientation"])
        self.filter = hs_filter.ComplementaryFilter(cfg["filter_alpha"])
        self.wear = hs_wear.Debouncer(cfg["wear_debounce_ms"])
        self.imu = hs_mpu6050.MPU6050(hal.i2c, cfg["imu_addr"])
        self.imu_error = ""
        self.sample_ms = 1000 // cfg["sample_hz"]
        self.stream_ms = 1000 // cfg["stream_hz"]
        self.started_ms = hal.ticks_ms()
        self.last_sample = None
        self.last_stream = None
        self.last_accel = (0.0, 0.0, 0.0)
        self.last_wear_raw = -1
        self.cal = None  # type: list | None  # [request n, start ms, sums, sums of squares, count]
        self.rx_errors = 0
        self.ident = bytes_hex(hal.unique_id())

    # -- output
    def send(self, t, **fields):
        try:
            self.hal.write_serial(link.encode(self.seq.message(t, **fields)))
        except link.LinkError:
            self.rx_errors += 1

    def boot(self):
        """Start the IMU and say hello. Config problems are reported as log lines."""
        try:
            self.imu.init()
        except hs_mpu6050.ImuError as exc:
            self.imu_error = str(exc)
        except OSError as exc:
            self.imu_error = _os_error_text(exc)
        self.hello()
        for err in self.cfg_errors:
            self.send(link.LOG, msg=("config: " + err)[:120])
        if self.imu_error:
            self.send(link.LOG, msg=("imu: " + self.imu_error)[:120])

    def hello(self):
        self.send(link.HELLO, fw=self.fw_version, id=self.ident, mp=self.hal.mp_version(),
                  proto=link.PROTOCOL_VERSION)

    # -- input
    def handle_line(self, line):
        try:
            msg = link.decode(line)
        except link.LinkError:
            self.rx_errors += 1
            return
        t = msg["t"]
        n = msg["n"]
        if t == link.PING:
            self.send(link.PONG, re=n)
        elif t == link.GET_INFO:
            self.send_info(n)
        elif t == link.LED:
            ok = self.hal.set_led(msg["rgb"])
            if ok:
                self.send(link.ACK, re=n, ok=True)
            else:
                self.send(link.ACK, re=n, ok=False, err="no headset LED")
        elif t == link.CALIBRATE:
            if self.imu_error:
                self.send(link.ACK, re=n, ok=False, err="imu not working")
            else:
                self.cal = [n, self.hal.ticks_ms(), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 0]
        else:
            self.rx_errors += 1  # an MCU -> desk type sent to us

    def send_info(self, req):
        """The info reply; a config summary that would not fit in one line is left out."""
        msg = self.seq.message(link.INFO, re=req, fw=self.fw_version, id=self.ident, mp=self.hal.mp_version(),
                               proto=link.PROTOCOL_VERSION, up_s=self.uptime_s(), st=self.self_test(),
                               cfg=self.cfg_summary())
        try:
            line = link.encode(msg)
        except link.LinkError:
            del msg["cfg"]
            line = link.encode(msg)
        self.hal.write_serial(line)

    def cfg_summary(self):
        c = self.cfg
        return {"site": c["site"], "desk": c["desk"], "or": c["orientation"], "bad": len(self.cfg_errors)}

    def uptime_s(self):
        return self.hal.ticks_diff(self.hal.ticks_ms(), self.started_ms) // 1000

    def self_test(self):
        """IMU answering with gravity near 1 g, wear sensor readable. Values, not verdicts alone."""
        ax, ay, az = self.last_accel
        g = (ax * ax + ay * ay + az * az) ** 0.5
        imu_ok = (not self.imu_error) and self.last_sample is not None and 0.8 <= g <= 1.2
        return {"imu": imu_ok, "g": round(g, 3), "wear": self.last_wear_raw}

    # -- the loop
    def _due(self, last, period, now):
        return last is None or self.hal.ticks_diff(now, last) >= period

    def step(self):
        """One pass of the main loop; call it often (every few ms)."""
        hal = self.hal
        now = hal.ticks_ms()
        if hal.take_connect():  # the desk (re)opened the port: who we are, and the wear state now
            self.hello()
            if self.wear.state is not None:
                self.send(link.WEAR, on=self.wear.state)
        data = hal.read_serial()
        if data:
            for line in self.lines.feed(data):
                self.handle_line(line)
        if not self.imu_error and self._due(self.last_sample, self.sample_ms, now):
            self._sample(now)
        raw = hal.read_wear()
        self.last_wear_raw = raw
        edge = self.wear.update(hs_wear.is_worn(raw, self.cfg["wear_mode"], self.cfg["wear_threshold"]), now)
        if edge is not None:
            self.send(link.WEAR, on=edge)
        if not self.imu_error and self.last_sample is not None and self._due(self.last_stream, self.stream_ms, now):
            self.last_stream = now
            self.send(link.IMU, p=round(self.filter.pitch, 2), r=round(self.filter.roll, 2), ms=now)
        hal.feed_watchdog()

    def _sample(self, now):
        try:
            accel, gyro = self.imu.read()
        except OSError as exc:
            self.imu_error = _os_error_text(exc)
            self.send(link.LOG, msg="imu: read failed")
            return
        dt = 0.0 if self.last_sample is None else self.hal.ticks_diff(now, self.last_sample) / 1000.0
        self.last_sample = now
        self.last_accel = accel
        body_a = hs_filter.remap(accel, self.orientation)
        body_g = hs_filter.remap(gyro, self.orientation)
        self.filter.update(body_a, body_g, dt)
        if self.cal is not None:
            self._calibrate(now, gyro)

    def _calibrate(self, now, gyro):
        cal = self.cal
        if cal is None:
            return
        req, start, sums, squares, count = cal
        for i in range(3):
            # the stored bias was already subtracted: add it back for the raw rate
            raw = gyro[i] + self.imu.gyro_bias[i]
            sums[i] += raw
            squares[i] += raw * raw
        count += 1
        cal[4] = count
        if self.hal.ticks_diff(now, start) < CAL_MS:
            return
        self.cal = None
        spread = 0.0
        mean = [0.0, 0.0, 0.0]
        for i in range(3):
            mean[i] = sums[i] / count
            var = squares[i] / count - mean[i] * mean[i]
            if var > spread:
                spread = var
        if spread ** 0.5 > CAL_MAX_SPREAD_DPS:
            self.send(link.ACK, re=req, ok=False, err="head moved during calibration")
            return
        self.imu.gyro_bias = mean
        self.send(link.ACK, re=req, ok=True)


def _os_error_text(exc):
    """The same text on MicroPython and CPython (their str(OSError) differ)."""
    return "I2C error " + str(exc.args[0] if exc.args else "")


def bytes_hex(data):
    out = ""
    for b in data:
        out += "0123456789abcdef"[b >> 4] + "0123456789abcdef"[b & 15]
    return out


def make_app(hal, config_path=hs_config.CONFIG_PATH):
    """Load and validate the board's config, build the App and boot it."""
    cfg, errors = hs_config.load(config_path)
    hal.configure(cfg)
    app = App(hal, cfg, errors)
    app.boot()
    return app


def run(hal):
    """The firmware's forever loop (main.py). Never returns on hardware."""
    app = make_app(hal)
    while True:
        app.step()
        hal.idle()
