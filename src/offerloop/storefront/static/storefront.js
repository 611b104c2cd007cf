// offerloop hosted pages: the thank-you page's status refreshes itself until nothing is left to wait for.
// Written for offerloop (no library). The region is aria-live, so a screen reader hears each change.
(function () {
  "use strict";
  var region = document.querySelector("[data-poll]");
  if (!region) { return; }
  var url = region.getAttribute("data-poll");
  var delay = 1500;
  var tries = 0;
  function done() {
    var status = region.querySelector(".status");
    return status !== null && status.getAttribute("data-done") === "true";
  }
  function poll() {
    tries += 1;
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          var before = region.querySelector(".status");
          var next = new DOMParser().parseFromString(html, "text/html").querySelector(".status");
          if (next !== null && (before === null || before.outerHTML !== next.outerHTML)) {
            region.replaceChildren(document.importNode(next, true));
          }
        }
        if (!done() && tries < 1200) {
          delay = Math.min(delay * 1.2, 10000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () { window.setTimeout(poll, 10000); });
  }
  if (!done()) { window.setTimeout(poll, delay); }
})();
