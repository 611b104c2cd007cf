/* offerloop web push subscription helper (served by offerloop at /v1/push/subscribe.js; no CDN).
 *
 *   <script src="https://offers.example.com/v1/push/subscribe.js"></script>
 *   offerloopPush.subscribe({ writeKey: "wk_...", userId: "u_42", token: "<buyer token>" })
 *     .then(function (result) { ... })                                 // {id, resolved, ...}
 *   offerloopPush.subscribe({ writeKey: "wk_...", anonymousId: "a_7" })  // a visitor not signed in
 *
 * A signed-in buyer's subscription needs a buyer token: your backend mints it for the buyer with the secret
 * key (POST /v1/inbox/tokens) and puts it in the page. The write key is public, so a userId alone proves
 * nothing (it is refused: 403 buyer_token_required). userId and anonymousId also label the click reports.
 * A subscription made with an anonymousId alone stops receiving pushes once its visitor has a userId: call
 * subscribe again with the token when the visitor signs in.
 *   offerloopPush.unsubscribe({ writeKey: "wk_..." })
 *
 * Must run on a page of the same origin as offerloop (a service worker is same-origin only).
 */
(function (global) {
  "use strict";
  var script = document.currentScript;
  var BASE = script ? new URL(".", script.src).href : "/v1/push/";

  function b64urlToBytes(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }

  function api(path, writeKey, method, body) {
    return fetch(new URL(path, BASE).href, {
      method: method,
      headers: { "Content-Type": "application/json", "Authorization": "Basic " + btoa(writeKey + ":") },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) { throw new Error((json.error && json.error.message) || response.statusText); }
        return json;
      });
    });
  }

  function register(options) {
    var query = new URLSearchParams({ key: options.writeKey });
    if (options.userId) { query.set("userId", options.userId); }
    if (options.anonymousId) { query.set("anonymousId", options.anonymousId); }
    return navigator.serviceWorker.register(new URL("sw.js?" + query.toString(), BASE).href)
      .then(function () { return navigator.serviceWorker.ready; });
  }

  function subscribe(options) {
    if (!("serviceWorker" in navigator) || !("PushManager" in global)) {
      return Promise.reject(new Error("this browser does not support web push"));
    }
    return Promise.all([register(options), api("vapid", options.writeKey, "GET")]).then(function (both) {
      var registration = both[0];
      return Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") { throw new Error("notifications were not allowed"); }
        return registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: b64urlToBytes(both[1].public_key)
        });
      });
    }).then(function (subscription) {
      var body = { subscription: subscription.toJSON() };
      if (options.token) { body.token = options.token; }
      else if (options.userId) { body.userId = options.userId; }
      else if (options.anonymousId) { body.anonymousId = options.anonymousId; }
      return api("subscriptions", options.writeKey, "POST", body);
    });
  }

  function unsubscribe(options) {
    return navigator.serviceWorker.ready.then(function (registration) {
      return registration.pushManager.getSubscription();
    }).then(function (subscription) {
      if (!subscription) { return { deleted: false }; }
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () {
        return api("subscriptions", options.writeKey, "DELETE", { endpoint: endpoint });
      });
    });
  }

  global.offerloopPush = { subscribe: subscribe, unsubscribe: unsubscribe };
})(window);
