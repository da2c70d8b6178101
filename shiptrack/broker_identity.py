"""Who may do what on the broker: logins, roles and ACLs for Mosquitto's dynamic-security
plugin (pure: no I/O).

Logins (MQTT usernames):

- ``ingest`` and ``api``: the services. Ingest reads the device, OwnTracks and scanner
  topics and writes the live topics; the API reads the live topics, writes the OwnTracks
  HTTP door's topic and manages the plugin (``$CONTROL/dynamic-security/#``).
- ``device.{id}``, ``scanner.{id}``, ``owntracks.{user}``: one per credential issued over
  the API. The kind in front keeps the three namespaces apart (a device id may contain
  dots and colons, but a username always starts with its kind). Each may publish only its
  own topic, may subscribe to nothing of others (an OwnTracks user: its own subtree), and
  must connect with its own client id (the username): so no issued login can take the
  client id (and so the session) of ingest or the API.
- ``simulator``: ``shiptrack up --simulate N``'s fleet, allowed to publish exactly its N
  devices' topics (one connection for the fleet, as the simulator publishes).

Every topic carries the deployment's ``SHIPTRACK_MQTT_TOPIC_PREFIX``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from shiptrack.errors import InputError
from shiptrack.topics import (
    DEVICE_ID_RE,
    LIVE_POSITIONS,
    OWNTRACKS_FILTER,
    OWNTRACKS_PART_RE,
    POSITION_FILTER,
    SCAN_FILTER,
    device_topic,
)

Kind = Literal["device", "scanner", "owntracks"]
KINDS: tuple[Kind, ...] = ("device", "scanner", "owntracks")
INGEST_USER = "ingest"
API_USER = "api"
SIMULATOR_USER = "simulator"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE = "$CONTROL/dynamic-security/v1/response"
LIVE_ALL = LIVE_POSITIONS.rsplit("/", 1)[0] + "/#"  # shiptrack/v1/live/#
ITERATIONS = 101  # what mosquitto_ctrl and the plugin use for PBKDF2-SHA512
DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": True,
                  "subscribe": False, "unsubscribe": True}

Acl = dict[str, Any]


class IdentityError(InputError):
    """A subject that cannot have a credential (bad id)."""


def check_subject(kind: Kind, subject: str) -> str:
    pattern = OWNTRACKS_PART_RE if kind == "owntracks" else DEVICE_ID_RE
    if pattern.fullmatch(subject) is None:
        raise IdentityError(f"{kind} id must be 1-64 of [A-Za-z0-9_.:-], got {subject!r}")
    return subject


def username(kind: Kind, subject: str) -> str:
    return f"{kind}.{check_subject(kind, subject)}"


def role_name(user: str) -> str:
    return f"shiptrack:{user}"


def topic_of(kind: Kind, subject: str, prefix: str = "") -> str:
    """What the subject publishes to (OwnTracks: the base of its devices' topics)."""
    if kind == "device":
        return device_topic(subject, prefix)
    if kind == "scanner":
        return f"{prefix}shiptrack/v1/scanners/{subject}/scan"
    return f"{prefix}owntracks/{subject}"


def _acl(acltype: str, topic: str, priority: int = 0) -> Acl:
    return {"acltype": acltype, "topic": topic, "priority": priority, "allow": True}


def subject_acls(kind: Kind, subject: str, prefix: str = "") -> list[Acl]:
    topic = topic_of(kind, subject, prefix)
    if kind != "owntracks":
        return [_acl("publishClientSend", topic)]
    return [_acl("publishClientSend", f"{topic}/+"), _acl("publishClientSend", f"{topic}/+/#"),
            _acl("subscribePattern", f"{topic}/#")]


def _subscribe(filters: Iterable[str]) -> list[Acl]:
    out = []
    for topic in filters:
        out += [_acl("subscribePattern", topic), _acl("subscribePattern", f"$share/+/{topic}")]
    return out


def ingest_acls(prefix: str = "") -> list[Acl]:
    inputs = [prefix + POSITION_FILTER, prefix + OWNTRACKS_FILTER, prefix + SCAN_FILTER]
    return [*_subscribe(inputs), _acl("publishClientSend", prefix + LIVE_ALL)]


def api_acls(prefix: str = "") -> list[Acl]:
    control = "$CONTROL/dynamic-security/#"
    return [*_subscribe([prefix + LIVE_ALL]), _acl("publishClientSend", prefix + OWNTRACKS_FILTER),
            _acl("publishClientSend", control), _acl("subscribePattern", control),
            _acl("publishClientReceive", control)]


def simulator_acls(device_ids: Iterable[str], prefix: str = "") -> list[Acl]:
    return [_acl("publishClientSend", device_topic(d, prefix)) for d in device_ids]


def new_password() -> str:
    return secrets.token_urlsafe(24)  # 192 bits, URL-safe (it goes into mqtt:// URLs)


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's stored form: base64 salt and PBKDF2-SHA512 hash, and the iterations."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return {"salt": base64.b64encode(salt).decode(), "password":
            base64.b64encode(digest).decode(), "iterations": ITERATIONS}


# ---- control commands (sent by the API to $CONTROL/dynamic-security/v1) ---------------


def issue_commands(kind: Kind, subject: str, password: str, prefix: str = "") -> list[dict[str,
                                                                                       Any]]:
    """Replace any login of the subject with a new one (its old password stops working)."""
    user = username(kind, subject)
    role = role_name(user)
    return [
        {"command": "deleteClient", "username": user},
        {"command": "deleteRole", "rolename": role},
        {"command": "createRole", "rolename": role, "acls": subject_acls(kind, subject, prefix)},
        {"command": "createClient", "username": user, "password": password, "clientid": user,
         "roles": [{"rolename": role}]},
    ]


def revoke_commands(kind: Kind, subject: str) -> list[dict[str, Any]]:
    """Delete the login (the plugin closes its open connections) and its role."""
    user = username(kind, subject)
    return [{"command": "deleteClient", "username": user},
            {"command": "deleteRole", "rolename": role_name(user)}]


def control_message(commands: list[dict[str, Any]]) -> tuple[str, bytes]:
    """The payload (with a correlation id per command) and the id prefix to match."""
    token = uuid.uuid4().hex
    tagged = [{**c, "correlationData": f"{token}:{i}"} for i, c in enumerate(commands)]
    return token, json.dumps({"commands": tagged}).encode()


# Errors of commands that only clear the way: not failures.
HARMLESS = {"deleteClient": "Client not found", "deleteRole": "Role not found"}


def control_errors(commands: list[dict[str, Any]], response: dict[str, Any],
                   token: str) -> list[str] | None:
    """None while ``response`` is not (all of) the answer to our message, else the errors."""
    answers = {r.get("correlationData"): r for r in response.get("responses", [])
               if isinstance(r, dict)}
    mine = [answers.get(f"{token}:{i}") for i in range(len(commands))]
    if any(a is None for a in mine):
        return None
    errors = []
    for command, answer in zip(commands, mine, strict=True):
        assert answer is not None
        error = answer.get("error")
        if error and HARMLESS.get(command["command"]) != error:
            errors.append(f"{command['command']}: {error}")
    return errors


# ---- the plugin's file: made and updated by `shiptrack broker-config` / `shiptrack up` --


def _client(user: str, password: str, clientid: str | None = None) -> dict[str, Any]:
    client = {"username": user, **hash_password(password), "roles": [{"rolename":
                                                                       role_name(user)}]}
    if clientid:
        client["clientid"] = clientid
    return client


def service_config(existing: dict[str, Any] | None, passwords: dict[str, str],
                   prefix: str = "", simulated: Iterable[str] = ()) -> dict[str, Any]:
    """The plugin's config with the service logins (``passwords``: user -> password) and
    their roles set afresh; every other client and role (issued credentials) is kept."""
    doc: dict[str, Any] = dict(existing or {})
    acls = {INGEST_USER: ingest_acls(prefix), API_USER: api_acls(prefix)}
    sims = list(simulated)
    if sims:  # else no simulator login at all
        acls[SIMULATOR_USER] = simulator_acls(sims, prefix)
    services = {INGEST_USER, API_USER, SIMULATOR_USER}
    clients = [c for c in doc.get("clients", []) if c.get("username") not in services]
    roles = [r for r in doc.get("roles", []) if r.get("rolename") not in
             {role_name(u) for u in services}]
    for user in sorted(u for u in acls if u in passwords):
        clients.append(_client(user, passwords[user]))
        roles.append({"rolename": role_name(user), "acls": acls[user]})
    doc.update(clients=clients, roles=roles, groups=doc.get("groups", []),
               defaultACLAccess=DEFAULT_ACCESS)
    return doc
