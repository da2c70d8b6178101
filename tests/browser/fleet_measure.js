// One measurement of the fleet layer at a view (see test_ten_thousand_devices_on_the_canvas):
// [lat, lon, zoom, clustering on, also time moving the map]. Returns the figures, and
// what the layer drew next to the same counts worked out with Leaflet's own projection.
async ([lat, lon, zoom, cluster, moves]) => {
    const m = await import('/static/js/state.js');
    const ctx = window.shiptrack;
    const layer = ctx.fleetLayer;
    const frame = () => new Promise((r) => requestAnimationFrame(r));
    layer.setClustering(cluster);
    ctx.map.setView([lat, lon], zoom, {animate: false});
    await new Promise((r) => setTimeout(r, 300));
    const ms = [];
    for (let k = 0; k < 12; k += 1) {
        const t0 = performance.now(); layer.draw(); ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    const fps = async (step) => {
        await frame();
        let n = 0; const start = performance.now(); let t = start;
        while (t - start < 1000) { step(n); n += 1; t = await frame(); }
        return n / ((t - start) / 1000);
    };
    const devs = [...ctx.fleet.devices.values()];
    const live = await fps((n) => {
        const at = Date.now();
        for (let k = 0; k < 300; k += 1) {
            const d = devs[(n * 300 + k) % devs.length];
            m.applyFix(ctx.fleet, d.id, {ts: at + n, lat: d.pos.lat + 1e-5, lon: d.pos.lon,
                speed: d.pos.speed, heading: d.pos.heading}, at);
        }
        layer.schedule();
    });
    const out = {draw_ms: ms[Math.floor(ms.length / 2)], live_fps: live, in_view: layer.inView};
    if (moves) {
        out.idle_fps = await fps(() => {});  // the ceiling: frames/s of this browser doing nothing
        out.drag_fps = await fps(() => { ctx.map._rawPanBy(ctx.L.point(3, 2)); ctx.map.fire('move'); });
        out.pan_fps = await fps(() => ctx.map.panBy([3, 2], {animate: false}));
    }
    ctx.map.setView([lat, lon], zoom, {animate: false});
    layer.draw();
    // what the layer drew, and the same counts worked out with Leaflet's own projection
    const size = ctx.map.getSize();
    const pad = size.multiplyBy(0.25);
    let onCanvas = 0; let inView = 0; let worst = 0;
    const z = ctx.map.getZoom(); const origin = ctx.map.getPixelOrigin();
    for (const d of devs) {
        const p = ctx.map.latLngToContainerPoint([d.pos.lat, d.pos.lon]);
        if (p.x >= -pad.x - 10 && p.y >= -pad.y - 10 && p.x <= size.x + pad.x + 10 && p.y <= size.y + pad.y + 10) onCanvas += 1;
        if (p.x >= 0 && p.y >= 0 && p.x <= size.x && p.y <= size.y) inView += 1;
        if (d.ui.wx !== undefined) {
            const q = ctx.map.project([d.pos.lat, d.pos.lon], z);
            worst = Math.max(worst, Math.abs(d.ui.wx * 2 ** z - q.x), Math.abs(d.ui.wy * 2 ** z - q.y));
        }
    }
    Object.assign(out, {leaflet_on_canvas: onCanvas, leaflet_in_view: inView, layer_in_view: layer.inView,
        markers: layer.drawnMarkers, clusters: layer.drawnClusters,
        clustered_devices: layer.clusteredDevices, labels: layer.drawnLabels, projection_error_px: worst});
    return out;
}
