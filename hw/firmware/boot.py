# boot.py: runs at every reset before main.py. Safe-boot escape: hold the safe pin (GP15 by
# default, to GND) while resetting, and main.py will not start the firmware, leaving the REPL free
# for mpremote. boot.py cannot stop main.py from running, so it leaves its decision in hs_boot,
# which main.py reads (modules imported here stay imported for main.py).

import hs_boot

hs_boot.decide()
