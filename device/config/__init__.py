"""The desk agent's configuration: the agent TOML (`agent.py`), the MQTT settings, the headset
calibration file, the remote configs the host sends, and the checks they share."""
