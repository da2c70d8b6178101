"""Built-in hubs: real European cities the simulated fleet drives between."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.geo import LatLon


@dataclass(frozen=True, slots=True)
class Hub:
    name: str
    lat: float
    lon: float

    @property
    def point(self) -> LatLon:
        return (self.lat, self.lon)


CITIES: tuple[Hub, ...] = (
    Hub("Berlin", 52.5200, 13.4050),
    Hub("Hamburg", 53.5511, 9.9937),
    Hub("Hannover", 52.3759, 9.7320),
    Hub("Leipzig", 51.3397, 12.3731),
    Hub("Dresden", 51.0504, 13.7373),
    Hub("Munich", 48.1351, 11.5820),
    Hub("Frankfurt", 50.1109, 8.6821),
    Hub("Cologne", 50.9375, 6.9603),
    Hub("Stuttgart", 48.7758, 9.1829),
    Hub("Prague", 50.0755, 14.4378),
    Hub("Warsaw", 52.2297, 21.0122),
    Hub("Poznan", 52.4064, 16.9252),
    Hub("Vienna", 48.2082, 16.3738),
    Hub("Copenhagen", 55.6761, 12.5683),
    Hub("Amsterdam", 52.3676, 4.9041),
    Hub("Brussels", 50.8503, 4.3517),
    Hub("Paris", 48.8566, 2.3522),
    Hub("Zurich", 47.3769, 8.5417),
    Hub("Milan", 45.4642, 9.1900),
)

BERLIN: LatLon = CITIES[0].point
