"""Named SQL about the database itself: is it there, and which storage it runs."""

from __future__ import annotations

PING = "SELECT 1"
# 'timescale' or 'plain' (set by the migrations)
STORAGE_MODE = "SELECT value FROM shiptrack_meta WHERE key = 'storage_mode'"
