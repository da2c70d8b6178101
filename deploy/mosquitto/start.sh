#!/bin/sh
# Entrypoint of the compose "mosquitto" service: writes the password file from environment
# variables (no secret is committed), then runs the broker in the foreground.
#
#   MQTT_INGEST_PASSWORD   user "ingest": the ingest service
#   MQTT_API_PASSWORD      user "api": the API's live streams
#   MQTT_DEVICE_PASSWORD   user "$MQTT_DEVICE_USER" (default "device"): trackers, simulator
#
# MOSQUITTO_CONFIG and MOSQUITTO_PASSWORD_FILE override the paths (used by the tests).
set -eu

config="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"
pwfile="${MOSQUITTO_PASSWORD_FILE:-/mosquitto/passwd/passwd}"

: "${MQTT_INGEST_PASSWORD:?set MQTT_INGEST_PASSWORD}"
: "${MQTT_API_PASSWORD:?set MQTT_API_PASSWORD}"
: "${MQTT_DEVICE_PASSWORD:?set MQTT_DEVICE_PASSWORD}"

umask 077
mkdir -p "$(dirname "$pwfile")"
rm -f "$pwfile"
mosquitto_passwd -c -b "$pwfile" ingest "$MQTT_INGEST_PASSWORD"
mosquitto_passwd -b "$pwfile" api "$MQTT_API_PASSWORD"
mosquitto_passwd -b "$pwfile" "${MQTT_DEVICE_USER:-device}" "$MQTT_DEVICE_PASSWORD"

# Started as root (the image's default): the broker drops to user "mosquitto", which must
# own its password file and be able to write persistence to the data volume.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$(dirname "$pwfile")"
    if [ -d /mosquitto/data ]; then chown -R mosquitto:mosquitto /mosquitto/data; fi
fi

exec mosquitto -c "$config"
