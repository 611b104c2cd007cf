/* offerloop in-app prompts: shows each new in-app message as a small prompt and reports impressions and
 * clicks back as events. Served by offerloop itself (no CDN). Usage:
 *   <script src="https://YOUR-OFFERLOOP/v1/inapp.js" data-token="INBOX_TOKEN" data-write-key="WRITE_KEY"
 *           data-user-id="USER_ID" defer></script>
 * The inbox token comes from your backend (POST /v1/inbox/tokens with the secret key). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.EventSource) { return; }
  var base = new URL(script.src).origin;
  var token = script.getAttribute("data-token");
  var writeKey = script.getAttribute("data-write-key");
  var userId = script.getAttribute("data-user-id");
  if (!token) { return; }

  function track(event, props) {
    if (!writeKey || !userId) { return; }
    fetch(base + "/v1/track", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Authorization": "Basic " + btoa(writeKey + ":") },
      body: JSON.stringify({ userId: userId, event: event, properties: props,
                             messageId: "inapp-" + event.replace(/\s/g, "-") + "-" + props.outbox_id })
    }).catch(function () { /* the prompt works without the report */ });
  }

  function markRead(id) {
    fetch(base + "/v1/inbox/" + id + "/read?token=" + encodeURIComponent(token), { method: "POST" })
      .catch(function () {});
  }

  function show(item) {
    var box = document.createElement("div");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-live", "polite");
    box.setAttribute("aria-label", item.title || "Message");
    box.style.cssText = "position:fixed;right:1rem;bottom:1rem;max-width:22rem;padding:1rem;background:#fff;" +
      "color:#111;border:1px solid #888;border-radius:.5rem;box-shadow:0 2px 12px rgba(0,0,0,.2);" +
      "font:15px/1.4 system-ui,sans-serif;z-index:2147483647";
    if (item.title) {
      var title = document.createElement("strong");
      title.textContent = item.title;
      box.appendChild(title);
      box.appendChild(document.createElement("br"));
    }
    var text = document.createElement("span");
    text.textContent = item.text;
    box.appendChild(text);
    if (item.url) {
      var link = document.createElement("a");
      link.href = item.url;
      link.textContent = "Open";
      link.style.cssText = "display:inline-block;margin-top:.5rem;margin-right:1rem;color:#0645ad";
      link.addEventListener("click", function () { track("In-App Clicked", { outbox_id: item.id }); markRead(item.id); });
      box.appendChild(document.createElement("br"));
      box.appendChild(link);
    }
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { markRead(item.id); box.remove(); });
    box.appendChild(close);
    document.body.appendChild(box);
    track("In-App Shown", { outbox_id: item.id });
  }

  var seen = {};
  var stream = new EventSource(base + "/v1/inbox/stream?token=" + encodeURIComponent(token));
  stream.addEventListener("message", function (e) {
    var item = JSON.parse(e.data);
    if (seen[item.id] || item.read_at) { return; }
    seen[item.id] = true;
    show(item);
  });
}());
