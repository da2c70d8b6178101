"""The one exception hierarchy of shiptrack.

    ShiptrackError
    ├── ConfigError        bad or missing configuration
    ├── StorageError       the database refused or is unreachable
    ├── EmbeddedError      an embedded server could not start
    └── BrokerError        the MQTT broker is unreachable at start
"""


class ShiptrackError(Exception):
    """Base of every error shiptrack raises on purpose."""


class ConfigError(ShiptrackError):
    pass


class StorageError(ShiptrackError):
    pass


class EmbeddedError(ShiptrackError):
    pass


class BrokerError(ShiptrackError):
    pass
