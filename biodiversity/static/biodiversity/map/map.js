/* The public biodiversity map: asks the map API for the visible box on every pan, zoom or
   filter change and draws what it answers (points, or clusters with counts). Everything it
   shows comes from that public API: it never holds a sighting's true point. */
(function () {
  "use strict";
  var el = document.getElementById("map");
  var center = (el.dataset.center || "30.58,114.30").split(",").map(Number);
  var map = L.map(el, { preferCanvas: false }).setView(center, 11);
  var tileUrl = el.dataset.tileUrl;
  if (tileUrl) {
    L.tileLayer(tileUrl, { attribution: el.dataset.tileAttribution || "", maxZoom: 19 }).addTo(map);
  }
  // District outlines: the base layer that works offline (no tile server needed).
  var districts = JSON.parse(document.getElementById("districts").textContent);
  L.geoJSON(districts, {
    style: { color: "#3c7a52", weight: 2, fillColor: "#cfe3d3", fillOpacity: 0.35 },
    onEachFeature: function (feature, layer) {
      layer.bindTooltip(feature.properties.name, { permanent: true, direction: "center", className: "district-label" });
    }
  }).addTo(map);

  var layer = L.layerGroup().addTo(map);
  var status = document.getElementById("status");
  var form = document.getElementById("filters");
  var pending = null;
  var seq = 0;

  function params() {
    var b = map.getBounds();
    var clamp = function (v, lo, hi) { return Math.max(lo, Math.min(hi, v)); };
    var q = new URLSearchParams();
    q.set("bbox", [clamp(b.getWest(), -180, 179.999), clamp(b.getSouth(), -90, 89.999),
                   clamp(b.getEast(), -179.999, 180), clamp(b.getNorth(), -89.999, 90)]
                  .map(function (v) { return v.toFixed(5); }).join(","));
    q.set("zoom", String(map.getZoom()));
    new FormData(form).forEach(function (value, key) { if (value) { q.set(key, value); } });
    return q;
  }

  function draw(data) {
    layer.clearLayers();
    var total = 0;
    data.features.forEach(function (f) {
      var ll = [f.geometry.coordinates[1], f.geometry.coordinates[0]];
      var p = f.properties;
      if (p.kind === "cluster") {
        total += p.count;
        var size = 26 + Math.min(30, Math.round(Math.log(p.count + 1) * 6));
        L.marker(ll, {
          icon: L.divIcon({ className: "cluster-icon", html: String(p.count), iconSize: [size, size] }),
          title: p.count + " " + el.dataset.labelSightings
        }).on("click", function () { map.setView(ll, Math.min(map.getZoom() + 2, 18)); }).addTo(layer);
      } else {
        total += 1;
        var marker = L.circleMarker(ll, {
          radius: 7, weight: 2, color: "#fff",
          fillColor: p.obscured ? "#b5651d" : (p.quality_grade === "research" ? "#1f5135" : "#4a90c2"),
          fillOpacity: 0.9, className: "sighting-point"
        });
        var label = document.createElement("div");
        var name = document.createElement("strong");
        name.textContent = (p.chinese_name || "") + " " + (p.scientific_name || "");
        label.appendChild(name);
        if (p.obscured) {
          label.appendChild(document.createElement("br"));
          label.appendChild(document.createTextNode(el.dataset.labelObscured));
        }
        marker.bindPopup(label).addTo(layer);
      }
    });
    status.textContent = total + " " + el.dataset.labelSightings + (data.clustered ? " (" + el.dataset.labelClusters + ")" : "");
    el.dataset.loaded = String(seq);
    el.dataset.features = String(data.features.length);
    el.dataset.clustered = String(data.clustered);
  }

  function load() {
    if (pending) { pending.abort(); }
    pending = new AbortController();
    var mine = ++seq;
    fetch(el.dataset.api + "?" + params().toString(), { signal: pending.signal, headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (mine === seq && data.features) { draw(data); } })
      .catch(function (e) { if (e.name !== "AbortError") { status.textContent = String(e); } });
  }

  map.on("moveend", load);
  form.addEventListener("change", load);
  load();
})();
