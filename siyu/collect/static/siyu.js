/*! siyu.js 1.0.0 — tracking snippet for siyu (H5 pages and mini-programs).
 * Copyright the siyu authors. Licensed under the Apache License, Version 2.0:
 * http://www.apache.org/licenses/LICENSE-2.0 (SPDX-License-Identifier: Apache-2.0)
 */
(function (root) {
  'use strict';
  var VERSION = '1.0.0';
  var MAX_BATCH = 1000;
  var MAX_BYTES = 500000;
  var BEACON_BYTES = 60000;
  var wxApi = typeof wx !== 'undefined' && wx.request ? wx : null;
  var K = { aid: 'siyu.anonymousId', uid: 'siyu.userId', queue: 'siyu.queue' };
  var cfg = null;
  var queue = [];
  var timer = null;
  var sending = null;
  var failures = 0;
  var stats = { sent: 0, dropped: 0, rejected: 0, retries: 0 };

  function load(key) {
    try {
      var raw = wxApi ? wxApi.getStorageSync(key) : root.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) { return null; }
  }
  function save(key, value) {
    try {
      var raw = JSON.stringify(value);
      if (wxApi) wxApi.setStorageSync(key, raw); else root.localStorage.setItem(key, raw);
    } catch (e) { /* storage full or blocked: the queue still lives in memory */ }
  }

  function uuid() {
    var c = root.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (ch) {
      var r = (Math.random() * 16) | 0;
      return (ch === 'x' ? r : (r & 3) | 8).toString(16);
    });
  }

  function base64(text) {
    if (typeof btoa === 'function') return btoa(text);
    var abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', out = '';
    for (var i = 0; i < text.length; i += 3) {
      var n = (text.charCodeAt(i) << 16) | (text.charCodeAt(i + 1) << 8) | text.charCodeAt(i + 2);
      out += abc[(n >> 18) & 63] + abc[(n >> 12) & 63] +
        (i + 1 < text.length ? abc[(n >> 6) & 63] : '=') + (i + 2 < text.length ? abc[n & 63] : '=');
    }
    return out;
  }

  function campaign(query) {
    var found = null;
    var names = { source: 'source', medium: 'medium', campaign: 'name', term: 'term', content: 'content' };
    Object.keys(names).forEach(function (key) {
      var value = query('utm_' + key);
      if (value) (found = found || {})[names[key]] = value;
    });
    return found;
  }

  function context() {
    var ctx = { channel: cfg.channel, library: { name: 'siyu.js', version: VERSION } };
    if (wxApi) {
      var launch = {};
      try { launch = wxApi.getLaunchOptionsSync ? wxApi.getLaunchOptionsSync() || {} : {}; } catch (e) { /* old base library */ }
      var q = launch.query || {};
      ctx.miniprogram = { path: launch.path };
      if (launch.scene != null) ctx.miniprogram.scene = String(launch.scene);
      ctx.campaign = campaign(function (k) { return q[k]; });
    } else if (root.location) {
      var params = new URLSearchParams(root.location.search);
      ctx.userAgent = root.navigator && root.navigator.userAgent;
      ctx.page = {
        url: root.location.href, path: root.location.pathname, search: root.location.search,
        title: root.document && root.document.title, referrer: root.document && root.document.referrer
      };
      ctx.campaign = campaign(function (k) { return params.get(k); });
    }
    if (!ctx.campaign) delete ctx.campaign;
    return ctx;
  }

  function enqueue(message) {
    if (!cfg) throw new Error('siyu: call siyu.init({writeKey, endpoint}) first');
    message.messageId = uuid();
    message.anonymousId = load(K.aid);
    var userId = load(K.uid);
    if (userId != null && message.userId === undefined) message.userId = userId;
    message.timestamp = new Date().toISOString();
    message.context = context();
    try { JSON.stringify(message); } catch (e) { stats.dropped++; return; } // a cycle, a BigInt
    queue.push(message);
    if (queue.length > cfg.maxQueue) stats.dropped += queue.splice(0, queue.length - cfg.maxQueue).length;
    save(K.queue, queue);
    if (queue.length >= cfg.flushAt) flush();
    else schedule(cfg.flushIntervalMs);
  }

  function schedule(delay) {
    if (!timer && !sending) timer = setTimeout(function () { timer = null; flush(); }, delay);
  }

  // The oldest messages, at most flushAt (and 1,000) of them and about `limit` bytes of JSON.
  function head(limit) {
    var batch = [], size = 0;
    for (var i = 0; i < queue.length && batch.length < Math.min(cfg.flushAt, MAX_BATCH); i++) {
      size += JSON.stringify(queue[i]).length + 1;
      if (batch.length && size > limit) break;
      batch.push(queue[i]);
    }
    return batch;
  }

  function forget(batch) {
    var ids = new Set(batch.map(function (m) { return m.messageId; }));
    queue = queue.filter(function (m) { return !ids.has(m.messageId); });
    save(K.queue, queue);
  }

  function post(body) {
    var url = cfg.endpoint + '/v1/batch';
    var header = { 'Content-Type': 'application/json', Authorization: 'Basic ' + base64(cfg.writeKey + ':') };
    if (wxApi) {
      return new Promise(function (resolve, reject) {
        wxApi.request({
          url: url, method: 'POST', data: body, header: header, dataType: 'json',
          success: function (r) { resolve({ status: r.statusCode, body: r.data }); },
          fail: reject
        });
      });
    }
    return root.fetch(url, { method: 'POST', headers: header, body: body }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (b) { return { status: r.status, body: b }; });
    });
  }

  async function drain() {
    while (queue.length) {
      var batch = head(MAX_BYTES);
      var answer;
      try {
        answer = await post(JSON.stringify({ batch: batch, sentAt: new Date().toISOString() }));
      } catch (e) {
        answer = { status: 0 };
      }
      var status = answer.status;
      if (status >= 200 && status < 300) {
        var rejected = (answer.body && answer.body.rejected) || [];
        stats.sent += batch.length - rejected.length;
        stats.rejected += rejected.length;
        failures = 0;
      } else if (status === 0 || status === 429 || status >= 500) {
        if (++failures <= cfg.maxRetries) {
          stats.retries++;
          var backoff = Math.min(cfg.maxBackoffMs, cfg.retryBaseMs * Math.pow(2, failures - 1));
          return backoff * (0.5 + Math.random() / 2);
        }
        stats.dropped += batch.length;
        failures = 0;
      } else {
        stats.dropped += batch.length;
      }
      forget(batch);
    }
    return 0;
  }

  /** Send what is queued; resolves once the queue is empty or a retry is scheduled. */
  function flush() {
    if (!cfg) return Promise.resolve();
    if (sending) return sending;
    if (timer) { clearTimeout(timer); timer = null; }
    sending = drain().then(function (retryIn) {
      sending = null;
      if (retryIn) schedule(retryIn);
      else if (queue.length) return flush();
    }, function () { sending = null; });
    return sending;
  }

  // Leaving the page: hand the queue to the browser. The messages stay queued, so what the
  // beacon fails to deliver is sent on the next visit (the server skips known messageIds).
  function beacon() {
    var nav = root.navigator;
    if (!cfg || !queue.length || !nav || !nav.sendBeacon) return;
    var body = { batch: head(BEACON_BYTES), sentAt: new Date().toISOString(), writeKey: cfg.writeKey };
    try { nav.sendBeacon(cfg.endpoint + '/v1/batch', new Blob([JSON.stringify(body)], { type: 'text/plain' })); } catch (e) { /* best effort */ }
  }

  var siyu = {
    VERSION: VERSION,
    init: function (options) {
      if (!options || !options.writeKey || !options.endpoint) throw new Error('siyu.init needs writeKey and endpoint');
      var first = !cfg;
      cfg = Object.assign({
        channel: wxApi ? 'miniprogram' : 'web', flushAt: 20, flushIntervalMs: 5000, maxQueue: 1000,
        maxRetries: 10, retryBaseMs: 1000, maxBackoffMs: 60000
      }, options);
      cfg.endpoint = String(cfg.endpoint).replace(/\/+$/, '');
      if (!load(K.aid)) save(K.aid, uuid());
      if (!first) return siyu;
      queue = load(K.queue) || [];
      if (wxApi && wxApi.onAppHide) wxApi.onAppHide(function () { flush(); });
      if (!wxApi && root.addEventListener) {
        root.addEventListener('pagehide', beacon);
        if (root.document) root.document.addEventListener('visibilitychange', function () {
          if (root.document.visibilityState === 'hidden') beacon();
        });
      }
      if (queue.length) schedule(0);
      return siyu;
    },
    track: function (event, properties) { enqueue({ type: 'track', event: event, properties: properties || {} }); },
    identify: function (userId, traits) {
      if (typeof userId === 'object' && userId) { traits = userId; userId = undefined; }
      if (userId != null) save(K.uid, String(userId));
      enqueue({ type: 'identify', traits: traits || {} });
    },
    page: function (name, properties) {
      if (typeof name === 'object' && name) { properties = name; name = undefined; }
      enqueue({ type: 'page', name: name, properties: properties || {} });
    },
    alias: function (newId) {
      var previous = load(K.uid) || load(K.aid);
      save(K.uid, String(newId));
      enqueue({ type: 'alias', previousId: previous, userId: String(newId) });
    },
    flush: flush,
    reset: function () { save(K.uid, null); save(K.aid, uuid()); },
    anonymousId: function () { return load(K.aid); },
    stats: function () { return Object.assign({ queued: queue.length }, stats); }
  };

  root.siyu = siyu;
  if (typeof module === 'object' && module.exports) module.exports = siyu;
})(typeof globalThis !== 'undefined' ? globalThis : this);
