"""The per-board config file (hs_config.json) written at flash time, validated by the firmware's
own rules (hw/firmware/hs_config.py) before it leaves the laptop.

Ids (``site``, ``desk``, and the headset ``model``, which names the model's calibration file) follow
the MQTT contract's id rule (:func:`mqtt_schema.topics.check_id`), because the desk publishes under
``hsc/v1/{site}/{desk}/...`` what the headset reports.

A re-flash keeps the board's config: the values already on the board stay unless a flag gives a new
one (a firmware update over a batch of deployed headsets must not wipe each one's desk). A config
on the board that cannot be kept as it is (not JSON, bad entries, an id the contract refuses) is
refused with the flag to pass; ``replace=True`` (``--replace-config``) writes the flags alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hw.errors import FlashError, UsageError
from hw.flashing.manifest import CONFIG_NAME
from hw.virtual_headset.firmware import load_firmware
from mqtt_schema.errors import SchemaError
from mqtt_schema.topics import check_id, desk_filter

ID_KEYS = ("site", "desk", "model")
"""Config keys whose values are ids by the MQTT contract's rule (``[a-z0-9-]{1,32}``)."""


def check_contract_id(key: str, value: Any, what: str) -> None:
    """Raise :class:`SchemaError` (naming ``what``) unless ``value`` is a valid id for ``key``."""
    check_id(value, what)
    if key == "desk":
        desk_filter("+", value)  # the contract's reserved desk words (alert, alert-log)


def requested_config(**values: Any) -> dict[str, Any]:
    """The config values given on the command line (None = not given), checked before anything
    is written anywhere: ids by the MQTT contract's rule, everything by the firmware's rules.

    Raises :class:`UsageError` naming the flag.
    """
    raw = {k: v for k, v in values.items() if v is not None}
    for key in ID_KEYS:
        if key in raw:
            try:
                check_contract_id(key, raw[key], f"--{key}")
            except SchemaError as exc:
                raise UsageError(str(exc)) from None
    _cfg, errors = load_firmware()["hs_config"].validate(raw)
    if errors:
        raise UsageError("device config: " + "; ".join(errors))
    return raw


def encode(raw: Mapping[str, Any]) -> bytes:
    """The bytes of hs_config.json (sorted keys: the same settings give the same file and hash)."""
    return (json.dumps(dict(raw), sort_keys=True, indent=1) + "\n").encode()


def board_config(port: str, on_board: bytes | None, requested: Mapping[str, Any],
                 replace: bool = False) -> dict[str, Any]:
    """The config to write to the board at ``port``: ``on_board`` (the board's hs_config.json, None
    when it has none) updated with ``requested``; ``requested`` alone when ``replace``.

    Raises :class:`FlashError` naming the port, the problem and the flag that gets past it.
    """
    if replace or on_board is None:
        return dict(requested)
    fresh = "pass --replace-config to write a new one from the flags given"
    try:
        old = json.loads(on_board)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FlashError(f"{port}: the board's {CONFIG_NAME} is not valid JSON, so its settings cannot be kept; "
                         f"{fresh}") from None
    if not isinstance(old, dict):
        raise FlashError(f"{port}: the board's {CONFIG_NAME} is not a JSON object, so its settings cannot be kept; "
                         f"{fresh}")
    kept = {k: v for k, v in old.items() if k not in requested}
    _cfg, errors = load_firmware()["hs_config"].validate(kept)
    if errors:
        raise FlashError(f"{port}: the board's {CONFIG_NAME} has entries the firmware refuses "
                         f"({'; '.join(errors)}), so it cannot be kept; {fresh}")
    for key in ID_KEYS:
        if kept.get(key, "") != "":  # "" is the firmware's default: not set
            try:
                check_contract_id(key, kept[key], key)
            except SchemaError as exc:
                raise FlashError(f"{port}: the board's {CONFIG_NAME} cannot be kept: {exc}; "
                                 f"pass --{key} to set a valid one") from None
    merged = {**old, **requested}
    _cfg, errors = load_firmware()["hs_config"].validate(merged)
    if errors:  # e.g. a new --stream-hz above the board's sample_hz
        raise FlashError(f"{port}: the flags and the board's {CONFIG_NAME} do not fit together "
                         f"({'; '.join(errors)}); {fresh}")
    return merged
