"""``python -m simulator``: the simulate command without the rest of shiptrack's CLI."""

import logging

from simulator.cli import app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app()
