# Head pitch/roll from an accelerometer and a gyro: mounting orientation + complementary filter.
#
# Body frame: x forward (nose), y left, z up. Pitch is + when the head tilts forward, roll is +
# when the right ear goes down; both in degrees. Accelerations in g, rates in deg/s.

import math

RAD2DEG = 180.0 / math.pi


def remap(vec, orientation):
    """Device-axis vector -> body frame, using parse_orientation()'s ((axis, sign), ...)."""
    return (
        vec[orientation[0][0]] * orientation[0][1],
        vec[orientation[1][0]] * orientation[1][1],
        vec[orientation[2][0]] * orientation[2][1],
    )


def accel_angles(ax, ay, az):
    """Pitch and roll (deg) from the gravity direction of a body-frame acceleration (g)."""
    pitch = math.atan2(-ax, math.sqrt(ay * ay + az * az)) * RAD2DEG
    roll = math.atan2(ay, az) * RAD2DEG
    return pitch, roll


class ComplementaryFilter:
    """alpha * (angle + rate * dt) + (1 - alpha) * accel angle, per axis.

    Pitch rate is the body y rate, roll rate the body x rate (deg/s). The first update takes the
    accelerometer angles as they are.
    """

    def __init__(self, alpha=0.98):
        self.alpha = alpha
        self.pitch = 0.0
        self.roll = 0.0
        self.started = False

    def update(self, accel, gyro, dt_s):
        """accel (g) and gyro (deg/s) in the body frame; dt_s in seconds. Returns (pitch, roll)."""
        ap, ar = accel_angles(accel[0], accel[1], accel[2])
        if not self.started or dt_s <= 0 or dt_s > 1.0:
            self.pitch = ap
            self.roll = ar
            self.started = True
            return self.pitch, self.roll
        a = self.alpha
        self.pitch = a * (self.pitch + gyro[1] * dt_s) + (1.0 - a) * ap
        self.roll = a * (self.roll + gyro[0] * dt_s) + (1.0 - a) * ar
        # Keep within the protocol's -180..180 range.
        if self.roll > 180.0:
            self.roll -= 360.0
        elif self.roll < -180.0:
            self.roll += 360.0
        return self.pitch, self.roll
