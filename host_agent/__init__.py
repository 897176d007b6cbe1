"""Host aggregator of the headset coach: ingest, per-desk state, alerts, history, reports, dashboard."""
