"""Settings: one class, read from ``SHIPTRACK_*`` environment variables.

A ``None`` URL means "use the embedded server" (``shiptrack up``); the services run alone
(``shiptrack ingest``/``api``/``simulate``) require them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIPTRACK_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL/TimescaleDB URL; unset: embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://[user:pass@]host[:port] (mqtts:// for TLS)"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    embedded_mqtt_port: int = Field(
        default=1883, ge=1, le=65535,
        description="port of the embedded broker of shiptrack up (taken: a free one, kept)",
    )
    admin_token: str | None = None

    # Additive settings (documented in README): not in the SPEC's table.
    data_dir: str | None = Field(
        default=None, description="where embedded servers keep data; default per-user dir"
    )
    mqtt_topic_prefix: str = Field(
        default="", description="prefix before every topic (multi-tenant brokers, tests)"
    )
    mqtt_client_id: str = Field(
        default="shiptrack-ingest", description="ingest's persistent-session client id"
    )
    mqtt_shared_group: str = Field(
        default="", description="MQTT 5 shared-subscription group for several ingest processes"
    )
    ingest_batch_size: int = Field(default=5000, ge=1, le=60000)
    ingest_batch_ms: int = Field(default=50, ge=1, le=10_000)
    ingest_receive_maximum: int = Field(default=20000, ge=1, le=65535)
    max_speed_kmh: float = Field(default=300.0, gt=0)
    outlier_confirm_fixes: int = Field(
        default=3, ge=1, le=100,
        description="consecutive agreeing fixes that move a device to where it reappeared",
    )
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    ws_queue_limit: int = Field(default=1000, ge=10)
    ws_stall_seconds: float = Field(default=10.0, gt=0)
    ws_ping_seconds: float = Field(default=20.0, gt=0)
    log_level: str = "INFO"

    # API (issue 5): CORS, public tracking, webhook delivery.
    cors_origins: str = Field(
        default="", description="comma-separated origins allowed by CORS, or *; empty: off"
    )
    tracking_days_after_delivery: float = Field(
        default=7.0, ge=0, description="a tracking link answers this long after delivery"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_give_up_hours: float = Field(default=72.0, gt=0)

    # Tracking (issue 4): geofences, shipments, milestones, exceptions.
    public_url: str | None = Field(
        default=None, description="base URL of the web pages, for absolute tracking_url"
    )
    geofence_dwell_s: float = Field(default=300.0, ge=0, description="inside this long: dwell")
    geofence_debounce_s: float = Field(
        default=15.0, ge=0, description="a new side must hold this long to count"
    )
    geofence_margin_m: float = Field(
        default=10.0, gt=0, le=1000, description="least edge band (a fix's accuracy widens it)"
    )
    tracking_reload_s: float = Field(
        default=0.0, ge=0,
        description="least time between ingest's looks for geofence/shipment changes "
        "(one tiny query; 0: before every batch)",
    )
    tracking_sweep_s: float = Field(default=5.0, gt=0, description="offline sweep period")
    offline_after_s: float = Field(default=900.0, gt=0, description="no fix this long: offline")
    shipment_radius_m: float = Field(
        default=250.0, gt=0, le=100_000, description="default radius of an origin/destination"
    )
    in_transit_m: float = Field(default=1000.0, ge=0, description="from pickup to in_transit")
    out_for_delivery_m: float = Field(default=10_000.0, ge=0)
    delivery_dwell_s: float = Field(default=120.0, ge=0)
    sensor_excursion_s: float = Field(default=600.0, ge=0)
    route_corridor_m: float = Field(default=1000.0, gt=0, le=100_000)
    route_deviation_grace_s: float = Field(default=300.0, ge=0)
    long_stop_s: float = Field(default=1800.0, gt=0)
    stop_radius_m: float = Field(default=150.0, gt=0)

    # ETA (issue 7): see shiptrack/eta and docs/ETA.md.
    eta_change_minutes: float = Field(
        default=10.0, gt=0, description="shipment.eta_changed when the ETA moves more than this"
    )
    at_risk_basis: Literal["late_probability", "eta_high", "eta"] = Field(
        default="late_probability",
        description="at_risk from late_probability (SHIPTRACK_AT_RISK_PROBABILITY), or when "
        "eta_high / eta passes promised_by"
    )
    at_risk_probability: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="at_risk once late_probability (the chance of arriving after "
        "promised_by) reaches this"
    )
    eta_history: str | None = Field(
        default=None,
        description="learned ETA history (shiptrack eta-learn, or eta-eval --save-history)",
    )

    # Device identity and least privilege (issue 13): see docs/DESIGN.md.
    mqtt_dynsec: bool = Field(
        default=False, description="the broker runs Mosquitto's dynamic-security plugin and "
        "the API's MQTT login manages it: device credentials over the API",
    )
    mqtt_allow_anonymous: bool = Field(
        default=False, description="shiptrack up: no device identity on the embedded broker",
    )
    webhook_allow_private: bool = Field(
        default=False, description="allow webhooks to loopback, link-local, private addresses",
    )
    ws_ticket_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="lifetime of a single-use WebSocket ticket",
    )
    auth_fail_limit: int = Field(
        default=30, ge=0, description="bad credentials per client per auth_fail_window_s "
        "before 429 (0: off)",
    )
    auth_fail_window_s: float = Field(default=60.0, gt=0)
    tracking_key: str | None = Field(
        default=None, description="key that makes tracking tokens (kept as digests); unset: "
        "from the admin token (shiptrack up/api keep a generated one in the data dir)",
    )
    # Dashboards (issue 17): map tiles, and the sender's brand on the customer page.
    map_tiles_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="XYZ tile URL template of the pages' maps; empty: the built-in base "
        "layer only",
    )
    map_tiles_attribution: str = Field(
        default="© OpenStreetMap contributors",
        description="attribution shown on the maps for those tiles (plain text)",
    )
    map_tiles_max_zoom: int = Field(default=19, ge=1, le=24)
    brand_name: str = Field(default="", max_length=200,
                            description="sender's name on the customer page")
    brand_logo_url: str = Field(default="", description="sender's logo (an image URL)")
    brand_contact_email: str = Field(default="", description="whom customers write to")
    brand_contact_phone: str = Field(default="", description="whom customers call")
    brand_contact_url: str = Field(default="", description="sender's help page")
    device_mqtt_url: str = Field(
        default="", description="broker URL shown to devices on the dashboard; default: "
        "SHIPTRACK_MQTT_URL without its credentials")

    # Hostile input (issue 10): see docs/RELIABILITY.md.
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="HTTP bodies over this get 413, unread"
    )

    # Notifications (issue 15): consignee subscriptions, outbox, channels (docs/DESIGN.md).
    smtp_url: str | None = Field(
        default=None,
        description="smtp://[user:pass@]host[:port] (?starttls=true) or smtps://; unset: "
        "e-mails wait in the outbox",
    )
    mail_from: str = Field(default="shiptrack <shiptrack@localhost>",
                           description="From: of notification e-mails")
    notify_templates_dir: str | None = Field(
        default=None, description="directory whose templates override the built-in ones")
    sms_url: str = Field(default="https://api.twilio.com",
                         description="base URL of the Twilio Messages API (or compatible)")
    sms_account_sid: str | None = None
    sms_auth_token: str | None = None
    sms_from: str | None = Field(default=None, description="sender number of SMS")
    notify_eta_change_minutes: float = Field(
        default=60.0, gt=0, description="eta_changed notification when the ETA moved this much")
    notify_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    notify_retry_base_seconds: float = Field(default=30.0, gt=0)
    notify_retry_max_seconds: float = Field(default=3600.0, gt=0)
    notify_give_up_hours: float = Field(
        default=72.0, gt=0, description="a recipient refusing temporarily this long: given up")
    notify_confirm_days: float = Field(
        default=7.0, gt=0, description="a customer's sign-up not confirmed this long ends")
    notify_signups_per_hour: int = Field(
        default=10, ge=1, description="customer-page sign-ups per client address per hour")

    # Parcel carriers (issue 14): webhook secrets, karrio accounts, polling.
    carrier_secret_easypost: str | None = Field(
        default=None, description="EasyPost webhook secret: pushes must carry X-Hmac-Signature"
    )
    carrier_secret_aftership: str | None = Field(
        default=None, description="AfterShip webhook secret: pushes must carry "
        "aftership-hmac-sha256"
    )
    carrier_accounts: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='JSON: {"<carrier>": {"connector": "<karrio connector>", <its credentials>,'
        ' "server_url"?, "requests_per_minute"?}}; shipments of these carriers are polled',
    )
    carrier_poll_s: float = Field(
        default=1800.0, gt=0, description="poll interval of a shipment under way (x4 before "
        "pickup, /2 at the door)"
    )

    # Partitioned ingest (issue 18): NATS JetStream, each device on one worker
    # (docs/SCALING.md).
    ingest_mode: Literal["mosquitto", "nats"] = Field(
        default="mosquitto", description="mosquitto: one ingest process on an MQTT broker; "
        "nats: partitioned workers on NATS JetStream (devices publish to its MQTT listener)",
    )
    nats_url: str | None = Field(
        default=None, description="nats://host:port of the NATS JetStream server (nats "
        "mode); unset: shiptrack up starts an embedded nats-server",
    )
    partitions: int = Field(
        default=64, ge=1, le=4096, description="partitions of the device ids (nats mode); "
        "fixed for the life of a stream: change it only on an empty one",
    )
    nats_lease_s: float = Field(
        default=6.0, gt=0, le=300, description="a worker silent this long loses its "
        "partitions (heartbeat every third of it)",
    )
    nats_ack_wait_s: float = Field(
        default=30.0, gt=0, description="JetStream redelivers a fix unacked this long",
    )
    nats_worker_id: str = Field(
        default="", description="this worker's name among the live ones; empty: host-pid",
    )
    nats_stream_max_age_h: float = Field(
        default=72.0, gt=0, description="JetStream keeps the partitioned fixes this long",
    )
    relay_client_id: str = Field(
        default="shiptrack-relay", min_length=1, description="shiptrack relay's "
        "persistent-session client id on the devices' MQTT broker",
    )

    def carrier_secret(self, provider: str) -> str | None:
        """``SHIPTRACK_CARRIER_SECRET_<PROVIDER>``, or None."""
        value = getattr(self, f"carrier_secret_{provider}", None)
        return value if isinstance(value, str) and value else None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (CLI) overrides where not None."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]
