"""The broker rule both sides keep (mqtt_schema.broker): TLS is on by one rule on the desk and the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqtt_schema.broker import uses_tls


@pytest.mark.parametrize(("url", "ca"), [("mqtt://b:1883", None), ("mqtts://b:8883", None),
                                         ("mqtt://b:1883", "ca.pem"), ("mqtts://b:8883", "ca.pem")])
def test_tls_is_on_by_the_same_rule_as_on_the_desk(tmp_path: Path, url: str, ca: str | None) -> None:
    from device.config.mqtt_settings import MqttSettings
    from host_agent.config import parse_config

    (tmp_path / "ca.pem").write_text("x")
    desk = MqttSettings.from_table({"url": url, **({"ca_cert": ca} if ca else {})}, base_dir=tmp_path)
    host = parse_config({"broker": {"url": url, **({"ca_cert": str(tmp_path / ca)} if ca else {})}}).broker
    assert desk.tls == host.tls == (url.startswith("mqtts") or ca is not None)
    assert uses_tls(url, ca) == desk.tls
