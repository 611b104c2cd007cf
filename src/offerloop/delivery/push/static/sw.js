/* offerloop web push service worker (served by offerloop at /v1/push/sw.js; no third-party code).
 *
 * Registered by subscribe.js as  /v1/push/sw.js?key=<write key>&userId=<id>&anonymousId=<id>
 * A push's JSON payload: {title, body, icon, badge, image, url, tag, data}. A click opens `url` and is
 * reported to /v1/track as the event "Push Notification Clicked" with the write key (HTTP Basic user).
 */
"use strict";

var params = new URL(self.location.href).searchParams;
var WRITE_KEY = params.get("key") || "";
var USER_ID = params.get("userId") || null;
var ANONYMOUS_ID = params.get("anonymousId") || null;
var TRACK_URL = new URL("../track", self.location.href).href;

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var message = {};
  try { message = event.data ? event.data.json() : {}; } catch (e) { message = { body: event.data.text() }; }
  var options = {
    body: message.body || "",
    icon: message.icon, badge: message.badge, image: message.image, tag: message.tag,
    data: { url: message.url || null, tag: message.tag || null, data: message.data || null }
  };
  event.waitUntil(self.registration.showNotification(message.title || "", options));
});

function track(name, properties) {
  if (!WRITE_KEY || !(USER_ID || ANONYMOUS_ID)) { return Promise.resolve(); }
  var body = { type: "track", event: name, properties: properties, timestamp: new Date().toISOString(),
               messageId: "push-" + Date.now() + "-" + Math.random().toString(36).slice(2) };
  if (USER_ID) { body.userId = USER_ID; }
  if (ANONYMOUS_ID) { body.anonymousId = ANONYMOUS_ID; }
  return fetch(TRACK_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Basic " + btoa(WRITE_KEY + ":") },
    body: JSON.stringify(body),
    keepalive: true
  }).catch(function () { /* a lost click report must not break the click */ });
}

self.addEventListener("notificationclick", function (event) {
  var note = event.notification;
  var info = note.data || {};
  note.close();
  var opened = info.url ? self.clients.openWindow(info.url) : Promise.resolve();
  event.waitUntil(Promise.all([
    opened,
    track("Push Notification Clicked", { url: info.url, tag: info.tag, title: note.title, data: info.data })
  ]));
});
