"""The one exception hierarchy of shiptrack: every error raised on purpose derives from
``ShiptrackError``. The classes beside their rule live in its module (named below); the
edges translate them: ``api/errors.py`` into HTTP answers (``ANSWERS``: one mapping),
the CLI (``shiptrack/app/cli.py``) into a one-line message and exit status 2.

    ShiptrackError
    ├── ConfigError            bad or missing configuration
    ├── StorageError           the database is unreachable (migrate.connect)
    ├── EmbeddedError          an embedded server could not start
    ├── BrokerError            the MQTT broker is unreachable or refused (ingest at start)
    │   ├── api.broker_admin.BrokerAdminError     a dynamic-security command failed
    │   ├── api.mqtt_publisher.BrokerUnavailable  the API's publisher is not connected
    │   ├── simulator.publisher.SimulatorError    the simulator cannot connect
    │   └── simulator.rawmqtt.RawMqttError        the load generator's connection failed
    ├── InputError             input that breaks a domain rule; also a ValueError (API: 422)
    │   ├── shiptrack.shipments.ShipmentError
    │   ├── shiptrack.geofences.GeofenceError              (API: 422 invalid_geometry)
    │   ├── shiptrack.notify.subscription.SubscriptionError
    │   ├── shiptrack.carriers.updates.UpdateError          (API: 422 bad_update)
    │   ├── shiptrack.broker_identity.IdentityError
    │   ├── shiptrack.eta.route.RouteError
    │   ├── shiptrack.eta.trips.TripError
    │   ├── shiptrack.eta.convert.ConvertError
    │   ├── simulator.roads.NoRoute
    │   └── api.streams.ClientMessageError       a stream client's message (an error frame)
    │       └── api.ws_fleet.FilterError
    ├── shiptrack.decode.Invalid          a payload refused, with its dead-letter reason
    ├── shiptrack.carriers.polling.PollError  a carrier's tracking API failed
    ├── simulator.provision.ProvisionError    the API refused the simulator's setup
    ├── ingest.pipeline.FenceLost         this worker may no longer commit for the batch
    │   └── ingest.ownership.PartitionsLost   its partitions were taken over
    ├── ingest.pipeline._FenceFailed      a fence failed otherwise (wraps the original)
    ├── api.errors.ApiError               an HTTP error answer raised by a route
    └── api.input_guard.Refused           a request refused before it reaches a route
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


class InputError(ShiptrackError, ValueError):
    """Input refused by a rule of the domain; a ``ValueError`` too, for the code (and
    the libraries, e.g. pydantic validators) that catch it as one."""
