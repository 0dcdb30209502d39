// The notice board's map: Leaflet (vendored under vendor/), no tile server (it must work
// offline): the district outlines are the base layer and each cell a coloured dot. The data
// come from the page's JSON blocks; this file is the only script (the CSP allows no inline one).
(function () {
  "use strict";
  var box = document.getElementById("zw-map");
  if (!box || !window.L) { return; }
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : { type: "FeatureCollection", features: [] };
  }
  var cells = data("zw-cells");
  var districts = data("zw-districts");
  var map = L.map(box, { attributionControl: false, zoomSnap: 0.25 });
  var outlines = L.geoJSON(districts, {
    style: { color: "#607d8b", weight: 1.5, fillColor: "#cfd8dc", fillOpacity: 0.35 },
    onEachFeature: function (feature, layer) { layer.bindTooltip(feature.properties.name); }
  }).addTo(map);
  var colours = { certified: "#2e7d32", in_notice: "#ef6c00" };
  var dots = L.geoJSON(cells, {
    pointToLayer: function (feature, latlng) {
      return L.circleMarker(latlng, {
        radius: 6, weight: 1, color: "#fff",
        fillColor: colours[feature.properties.status] || "#555", fillOpacity: 0.9
      });
    },
    onEachFeature: function (feature, layer) {
      var p = feature.properties;
      var link = document.createElement("a");
      link.href = p.url;
      link.textContent = p.name;
      var popup = document.createElement("div");
      popup.appendChild(link);
      popup.appendChild(document.createElement("br"));
      popup.appendChild(document.createTextNode(p.kind));
      layer.bindPopup(popup);
    }
  }).addTo(map);
  var bounds = dots.getLayers().length ? dots.getBounds() : outlines.getBounds();
  if (bounds.isValid()) { map.fitBounds(bounds.pad(0.15)); } else { map.setView([30.58, 114.3], 11); }
  box.setAttribute("data-ready", String(dots.getLayers().length));
}());
