# main.py: start the headset firmware unless boot.py asked for a safe boot.

import hs_boot

if hs_boot.SAFE:
    print("headset firmware not started:", hs_boot.REASON)
else:
    import hal
    import hs_app

    hs_app.run(hal.Hal())
