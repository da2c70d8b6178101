#!/bin/sh
# Entrypoint of the compose "mosquitto" service: checks that the dynamic-security file
# (written by the "broker-config" service) is there, gives it and the data volume to the
# broker's user, then runs the broker in the foreground. No secret is committed and none
# is passed to this container: the file holds only salted hashes.
#
# MOSQUITTO_CONFIG and MOSQUITTO_DYNSEC_FILE override the paths (used by the tests).
set -eu

config="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"
dynsec="${MOSQUITTO_DYNSEC_FILE:-/mosquitto/dynsec/dynamic-security.json}"

if [ ! -s "$dynsec" ]; then
    echo "no $dynsec: run the broker-config service first (docker compose up does)" >&2
    exit 1
fi

# Started as root (the image's default): the broker drops to user "mosquitto", which must
# be able to rewrite the plugin's file and write persistence to the data volume.
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$(dirname "$dynsec")"
    chmod 0700 "$(dirname "$dynsec")"
    if [ -d /mosquitto/data ]; then chown -R mosquitto:mosquitto /mosquitto/data; fi
fi

exec mosquitto -c "$config"
