"""Named SQL of ``shiptrack eta-learn`` (``shiptrack.eta.learn``): the finished trips (a
delivered shipment's in-transit span on its device) and the positions it replays."""

from __future__ import annotations

SPANS = """
SELECT s.id, s.device_id, m.started, coalesce(m.delivered, s.delivered_at), s.route
FROM shipments s
JOIN (SELECT shipment_id,
             min(ts) FILTER (WHERE kind IN ('picked_up', 'in_transit', 'out_for_delivery'))
                 AS started,
             max(ts) FILTER (WHERE kind = 'delivered') AS delivered
      FROM shipment_milestones GROUP BY shipment_id) m ON m.shipment_id = s.id
WHERE s.status = 'delivered' AND m.started IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR m.started >= %(since)s::timestamptz)
ORDER BY s.device_id, m.started, s.id
"""

POSITIONS = """
SELECT device_id, ts, lat, lon FROM positions
WHERE NOT outlier AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s::timestamptz)
ORDER BY device_id, ts
"""
