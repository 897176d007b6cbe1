# A small MPU-6050 driver over a machine.I2C-like object (readfrom_mem / writeto_mem).
#
# Full scale +-2 g (16384 LSB/g) and +-250 deg/s (131 LSB/(deg/s)), DLPF about 44 Hz.

import struct

WHO_AM_I = 0x75
PWR_MGMT_1 = 0x6B
SMPLRT_DIV = 0x19
CONFIG = 0x1A
GYRO_CONFIG = 0x1B
ACCEL_CONFIG = 0x1C
ACCEL_XOUT_H = 0x3B
KNOWN_IDS = (0x68, 0x69, 0x70, 0x72, 0x98)  # MPU-6050 (AD0 low/high) and common clones
ACCEL_LSB_PER_G = 16384.0
GYRO_LSB_PER_DPS = 131.0


class ImuError(Exception):
    pass


class MPU6050:
    def __init__(self, i2c, addr=0x68):
        self.i2c = i2c
        self.addr = addr
        self.gyro_bias = [0.0, 0.0, 0.0]

    def _write(self, reg, value):
        self.i2c.writeto_mem(self.addr, reg, bytes([value]))

    def who_am_i(self):
        return self.i2c.readfrom_mem(self.addr, WHO_AM_I, 1)[0]

    def init(self):
        """Wake the chip and set ranges; raise ImuError when it does not answer as an MPU-6050."""
        try:
            ident = self.who_am_i()
        except OSError:
            raise ImuError("no IMU at I2C address " + hex(self.addr))
        if ident not in KNOWN_IDS:
            raise ImuError("unexpected WHO_AM_I " + hex(ident))
        self._write(PWR_MGMT_1, 0x01)  # wake, clock from the X gyro PLL
        self._write(SMPLRT_DIV, 19)  # 1 kHz / (1 + 19) = 50 Hz
        self._write(CONFIG, 0x03)  # DLPF ~44 Hz
        self._write(GYRO_CONFIG, 0x00)  # +-250 deg/s
        self._write(ACCEL_CONFIG, 0x00)  # +-2 g

    def read(self):
        """One sample: ((ax, ay, az) in g, (gx, gy, gz) in deg/s minus the gyro bias), device axes."""
        raw = self.i2c.readfrom_mem(self.addr, ACCEL_XOUT_H, 14)
        v = struct.unpack(">hhhhhhh", raw)
        accel = (v[0] / ACCEL_LSB_PER_G, v[1] / ACCEL_LSB_PER_G, v[2] / ACCEL_LSB_PER_G)
        b = self.gyro_bias
        gyro = (v[4] / GYRO_LSB_PER_DPS - b[0], v[5] / GYRO_LSB_PER_DPS - b[1], v[6] / GYRO_LSB_PER_DPS - b[2])
        return accel, gyro
