"""Hardware of the headset coach: firmware, pin maps, the facilities flashing and provisioning tool."""
