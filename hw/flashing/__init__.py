"""The facilities flashing tool's logic: firmware manifest, board sessions, batch runs, inventory."""
