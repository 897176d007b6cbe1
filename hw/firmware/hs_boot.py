# The safe-boot decision shared by boot.py and main.py.

SAFE = False
REASON = ""


def _safe_pin():
    try:
        import hs_config

        cfg, _ = hs_config.load()
        return cfg["safe_pin"]
    except Exception:  # a broken config must never block the escape hatch
        return 15


def decide():
    """Set SAFE when the safe pin is held low now (called from boot.py at reset)."""
    global SAFE, REASON
    try:
        import machine

        pin = machine.Pin(_safe_pin(), machine.Pin.IN, machine.Pin.PULL_UP)
        if pin.value() == 0:
            SAFE = True
            REASON = "safe pin held at reset"
    except ImportError:
        pass
