"""What the desk shows and sends: cues, LEDs, minute rollups, call summaries, the spool and the MQTT publisher."""
