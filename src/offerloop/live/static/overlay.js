// The live drop overlay: opens this viewer's stream and keeps the offer, countdown and units left current.
// No dependencies, no CDN: served by offerloop with the page.
(function () {
  "use strict";
  var root = document.querySelector(".ol-overlay");
  if (!root || !window.EventSource) return;
  var el = function (name) { return root.querySelector(".ol-" + name); };
  var viewer = root.dataset.viewer || new URLSearchParams(location.search).get("viewer");
  if (!viewer) {
    try { viewer = localStorage.getItem("offerloop.viewer"); } catch (e) { viewer = null; }
    if (!viewer) {
      var bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      viewer = "v-" + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { localStorage.setItem("offerloop.viewer", viewer); } catch (e) { /* private mode: a new id per visit */ }
    }
  }
  var query = "viewer=" + encodeURIComponent(viewer);
  if (root.dataset.currency) query += "&currency=" + encodeURIComponent(root.dataset.currency);
  var base = "/v1/live/" + encodeURIComponent(root.dataset.workspace) + "/" + encodeURIComponent(root.dataset.drop);
  var skew = 0; // server clock minus ours, so every viewer counts down to the same instant
  var closesAt = Date.parse(root.dataset.closesAt);
  var state = root.dataset.state;

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    var left = Math.max(0, Math.floor((closesAt - (Date.now() + skew)) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el("countdown").textContent = state === "live" || state === "scheduled" ? (h ? h + ":" : "") + two(m) + ":" + two(s) : "";
  }
  function show(frame) {
    var drop = frame.drop, offer = frame.offer;
    state = drop.state;
    root.dataset.state = state;
    closesAt = Date.parse(drop.closes_at);
    skew = Date.parse(frame.server_time) - Date.now();
    el("title").textContent = offer.title;
    el("copy").textContent = offer.description || "";
    el("price").textContent = offer.formatted;
    el("state").textContent = state.replace("_", " ");
    el("left").textContent = String(drop.units_left);
    var buy = el("buy");
    buy.href = frame.go_url;
    buy.hidden = state !== "live";
    tick();
  }
  var source = new EventSource(base + "/stream?" + query);
  source.addEventListener("drop", function (event) { show(JSON.parse(event.data)); });
  setInterval(tick, 1000);
})();
