"""Desk-unit agent of the headset coach (runs on the Raspberry Pi). Importing it needs no hardware."""
