"""Headset MCU firmware (MicroPython). Only headset_link is imported by CPython code."""
