/*! ModePopup: Mode's offer popup. Contract: embed/README.md */
(function (w, d) {
  'use strict';
  var NAME = 'ModePopup', KEY = 'modepopup:';
  // Document properties can be clobbered by the host page (<img name="currentScript">,
  // <form name="body">): read them through the prototype getters instead.
  var DP = Document.prototype, EP = Element.prototype, TP = EventTarget.prototype;
  var debug = false, base = '', opts = null, data = null, offersReady = null;
  var armed = false, openedOnce = false, ui = null, sid = '', logged = [];

  function noop() {}
  function log() {
    if (!debug) return;
    var said = [].slice.call(arguments);
    // Kept on the page too, so the admin playground can show why nothing appears (a bot, say).
    logged.push(said.join(' '));
    try { w.console.log.apply(w.console, ['ModePopup:'].concat(said)); } catch (e) { /* no console */ }
  }
  // Every entry point from the page or the browser goes through this: the popup never throws.
  function guard(f) {
    return function () {
      try { return f.apply(this, arguments); } catch (e) { log('error', e && e.message); }
    };
  }
  function docGet(prop) {
    try { return Object.getOwnPropertyDescriptor(DP, prop).get.call(d); } catch (e) { return null; }
  }
  function on(target, type, f, o) { TP.addEventListener.call(target, type, guard(f), o); }
  function el(tag, cls, parent) {
    var node = DP.createElement.call(d, tag);
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function attr(node, name) {
    try { return EP.getAttribute.call(node, name); } catch (e) { return null; }
  }
  function safeUrl(u) {
    try {
      var url = new URL(String(u));
      return /^https?:$/.test(url.protocol) ? url.href : '';
    } catch (e) { return ''; }
  }
  function num(v) { var n = parseFloat(v); return n >= 0 ? n : -1; }
  function text(v) { return typeof v === 'string' ? v : ''; }
  function uid() {
    var b = new Uint8Array(16), s = '';
    w.crypto.getRandomValues(b);
    for (var i = 0; i < 16; i++) s += (b[i] + 256).toString(16).slice(1);
    return s;
  }

  // Condensed from the `isbot` npm package's patterns: crawlers, previews, headless browsers
  // and HTTP libraries. Bots get no popup and send nothing. (`bot\b` also covers "bot/" and
  // "bot-", e.g. AdsBot-Google; `preview` covers BingPreview.)
  var BOT = /bot\b|bot_|crawl|spider|slurp|archiv|headless|lighthouse|phantom|puppeteer|playwright|selenium|webdriver|python|curl|wget|httpclient|java\/|go-http|axios|node-fetch|okhttp|facebookexternal|mediapartners|pingdom|uptime|monitor|scanner|preview|whatsapp|embedly|quora link|^mozilla\/5\.0$/i;
  function isBot() { return BOT.test(navigator.userAgent || ''); }

  // --- the script tag, captured while it runs (currentScript is null later) -----------------
  var me = docGet('currentScript');
  if (!(me instanceof HTMLScriptElement)) me = null;
  try { base = new URL(me.src).origin; } catch (e) { base = ''; }

  // --- frequency memory: sessionStorage / localStorage, never cookies -----------------------
  function storage(kind) {
    try {
      var s = w[kind], k = KEY + 't';
      s.setItem(k, k); s.removeItem(k);
      return s;
    } catch (e) { return null; }
  }
  function today() { return new Date().toDateString(); }     // the visitor's local calendar day
  function memKey(what) { return KEY + opts.property + ':' + what; }
  function remembered(what, frequency) {
    var daily = frequency === 'daily', s = storage(daily ? 'localStorage' : 'sessionStorage');
    return !!s && s.getItem(memKey(what)) === (daily ? today() : '1');
  }
  function remember(what) {
    var ss = storage('sessionStorage'), ls = storage('localStorage');
    if (ss) ss.setItem(memKey(what), '1');
    if (ls && data.frequency === 'daily') ls.setItem(memKey(what), today());
  }
  function suppressed() {
    var f = data.frequency;
    // A click ends the popup for the period (for `always`: for the browser session).
    if (remembered('clicked', f === 'always' ? 'session' : f)) return 'clicked';
    if (f !== 'always' && remembered('closed', f)) return 'closed';
    return '';
  }
  // One id per tab session (the unit of the server's experiment assignment), the same for the
  // offers call and the beacons even where storage is blocked.
  function sessionId() {
    if (sid) return sid;
    var ss = storage('sessionStorage');
    sid = ss && ss.getItem(KEY + 'sid');
    if (!/^[\w-]{8,64}$/.test(sid)) { sid = uid(); if (ss) ss.setItem(KEY + 'sid', sid); }
    return sid;
  }

  // --- network: the offers call, the beacons, the offer image and the Tune pixel only ---------
  function beacon(path, body) {
    if (opts.preview) return log('preview: not counted', path);
    var url = base + path, s = JSON.stringify(body);
    try { if (navigator.sendBeacon(url, s)) return; } catch (e) { /* no sendBeacon: fall back */ }
    w.fetch(url, {method: 'POST', keepalive: true, body: s, credentials: 'omit',
      headers: {'Content-Type': 'text/plain'}}).catch(noop);
  }
  function pixel(u) {
    u = safeUrl(u);
    if (!u || opts.preview) return;
    new Image().src = u;
  }
  function loadOffers() {
    var q = '?sid=' + sessionId() + (opts.placement ? '&placement=' + opts.placement : '');
    return w.fetch(base + '/api/offers/' + opts.property + q,
      {credentials: 'omit'}).then(function (r) {
      if (!r.ok) throw new Error('offers answered ' + r.status);
      return r.json();
    }).then(guard(function (j) {
      var list = (j && j.offers) || [];
      data = {
        placement: opts.placement || j.placement, frequency: opts.frequency || j.frequency,
        delay: opts.delay >= 0 ? opts.delay : +j.delay_ms || 0, theme: j.theme || {},
        offers: list.filter(function (o) {
          // Tampered or broken answers: offers without a token or an http(s) link are dropped.
          return o && typeof o.token === 'string' && safeUrl(o.click_url) && text(o.title);
        })
      };
      log('offers', data.offers.length, data.placement, data.frequency);
      return data;
    }));
  }

  // --- placements ---------------------------------------------------------------------------
  function auto() {
    if (openedOnce) return;
    var why = suppressed();
    if (why) return log('not shown: already ' + why);
    open();
  }
  function arm() {
    var start = Date.now(), p = data.placement;
    if (p === 'timed') {
      setTimeout(guard(auto), opts.seconds >= 0 ? opts.seconds * 1000 : data.delay);
    } else if (p === 'exit-intent') {
      var ready = function () { return Date.now() - start > 1000; };
      // Desktop: the pointer leaves through the top edge (towards the tab bar / address bar).
      on(d, 'mouseout', function (e) {
        if (!e.relatedTarget && e.clientY <= 0 && ready()) auto();
      });
      // Touch: a fast scroll up after reading down the page, or coming back to the tab.
      if (w.matchMedia('(pointer: coarse)').matches) {
        var lastY = w.scrollY, runY = lastY, runT = 0, maxY = 0, wasHidden = false;
        on(w, 'scroll', function () {
          var y = w.scrollY, t = Date.now();
          maxY = Math.max(maxY, y);
          // An upward run is measured over at most 250 ms: more than 100 px in it is fast.
          if (y >= lastY || t - runT > 250) { runY = lastY; runT = t; }
          if (ready() && maxY > 300 && runY - y > 100) auto();
          lastY = y;
        }, {passive: true});
        on(d, 'visibilitychange', function () {
          if (docGet('visibilityState') === 'hidden') wasHidden = true;
          else if (wasHidden && ready()) auto();
        });
      }
    } else {
      // thankyou: once the page's HTML is parsed, after the property's delay.
      var go = function () { setTimeout(guard(auto), data.delay); };
      if (docGet('readyState') === 'loading') on(d, 'DOMContentLoaded', go); else go();
    }
  }

  // --- the popup ----------------------------------------------------------------------------
  var CSS = ':host{all:initial!important;position:fixed!important;inset:0!important;z-index:2147483647!important;' +
    'display:grid!important;place-items:center!important}' +
    '*{box-sizing:border-box;margin:0;padding:0;font:inherit;color:inherit}' +
    '.ov{position:absolute;inset:0;background:rgba(0,0,0,.55)}' +
    '.dlg{position:relative;display:flex;flex-direction:column;width:calc(100% - 24px);max-width:420px;max-height:calc(100% - 24px);overflow:auto;' +
    'background:var(--bg);color:var(--tx);border-radius:14px;padding:20px;box-shadow:0 10px 40px rgba(0,0,0,.35);' +
    'font:16px/1.45 system-ui,sans-serif;text-align:center;overflow-wrap:anywhere}' +
    'button{all:unset;box-sizing:border-box;cursor:pointer;min-width:44px;min-height:44px;display:inline-grid;place-items:center;border-radius:8px}' +
    ':focus-visible{outline:3px solid var(--ac)!important;outline-offset:2px}.dlg:focus{outline:0!important}' +
    // The close button keeps its own backing: it sits over the image's corner, which may be dark.
    '.x{position:absolute;top:6px;right:6px;font-size:28px;line-height:1;background:var(--bg);border-radius:50%;' +
    'box-shadow:0 1px 6px rgba(0,0,0,.35)}' +
    '.logo{height:32px;max-width:60%;margin:0 auto 12px;object-fit:contain}' +
    // The offer's image and texts scroll inside a body whose height open() fixes (see fit()).
    '.bd{display:grid;overflow:auto}.in{margin:auto 0}' +
    // Four lines of each text at most. `clip` cuts without making a scroll container (nothing can
    // scroll the cut text into view); `hidden` is for browsers without it.
    'h2,.tg,.ds{display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:4;overflow:hidden;overflow:clip}' +
    '.fig{aspect-ratio:16/9;width:100%;margin:8px 0 14px;border-radius:10px;overflow:hidden;background:#f1f2f4}' +
    '.fig img{display:block;width:100%;height:100%;object-fit:cover}' +
    '.no{display:none}' +
    'h2{font-size:22px;line-height:1.25;font-weight:700;padding:0 28px}' +
    '.tg{color:var(--ac);font-weight:600;margin-top:6px}.ds{margin-top:8px;font-size:15px}' +
    '.cta{display:grid;place-items:center;min-height:48px;margin-top:16px;padding:10px 16px;' +
    'border-radius:10px;background:var(--pr);color:var(--ct);font-weight:700;font-size:17px;text-decoration:none}' +
    '.nav{display:flex;flex-wrap:wrap;align-items:center;justify-content:center;margin-top:10px;font-size:24px}' +
    '.cnt{min-width:64px;font-size:15px}' +
    '.dot::before{content:"";width:10px;height:10px;border-radius:50%;border:2px solid var(--ac)}' +
    '.dot[aria-current=true]::before{background:var(--ac)}';

  function color(v, fallback) { return /^#[0-9a-f]{6}$/i.test(v) ? v : fallback; }
  function styles(root) {
    var t = data.theme;
    var css = ':host{--pr:' + color(t.primary, '#d6246e') + ';--ac:' + color(t.accent, '#1f5fbf') +
      ';--bg:' + color(t.background, '#ffffff') + ';--tx:' + color(t.text, '#1b1f24') +
      ';--ct:' + color(t.cta_text, '#ffffff') + '}' + CSS;
    try {
      // Constructable stylesheets are not subject to the host page's style-src CSP.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      el('style', '', root).textContent = css;
    }
  }

  function build() {
    var host = el('mode-popup'), root = host.attachShadow({mode: 'open'});
    styles(root);
    var u = {host: host, root: root, i: 0, seen: {}, used: 0};
    u.ov = el('div', 'ov', root);
    var dlg = u.dlg = el('div', 'dlg', root);
    dlg.setAttribute('role', 'dialog');
    dlg.setAttribute('aria-modal', 'true');
    dlg.setAttribute('aria-labelledby', 'mp-t');
    dlg.tabIndex = -1;
    u.x = el('button', 'x', dlg);
    u.x.setAttribute('aria-label', 'Close');
    u.x.textContent = '\u00d7';
    var logo = safeUrl(data.theme.logo_url);
    if (logo) { var l = el('img', 'logo', dlg); l.alt = ''; l.src = logo; }
    u.bd = el('div', 'bd', dlg);
    var box = el('div', 'in', u.bd);
    u.fig = el('div', 'fig', box);
    u.img = el('img', '', u.fig);
    u.img.alt = '';
    on(u.img, 'error', function () { u.fig.className = 'fig no'; });
    u.t = el('h2', '', box);
    u.t.id = 'mp-t';
    u.tg = el('p', 'tg', box);
    u.ds = el('p', 'ds', box);
    u.cta = el('a', 'cta', dlg);
    u.cta.target = '_blank';
    u.cta.rel = 'noopener';
    var n = data.offers.length;
    if (n > 1) {
      var nav = el('div', 'nav', dlg);
      u.prev = el('button', '', nav);
      u.prev.setAttribute('aria-label', 'Previous offer');
      u.prev.textContent = '\u2039';
      u.dots = [];
      // Dots (up to 3) while prev + dots + next fit a 320 px phone at 44 px per tap target; beyond, "2 / 7".
      for (var k = 0; k < n && n < 4; k++) {
        var dot = el('button', 'dot', nav);
        dot.setAttribute('aria-label', 'Offer ' + (k + 1) + ' of ' + n);
        on(dot, 'click', (function (j) { return function () { show(j); }; })(k));
        u.dots.push(dot);
      }
      if (n > 3) {
        u.cnt = el('span', 'cnt', nav);
        u.cnt.setAttribute('aria-live', 'polite');
      }
      u.next = el('button', '', nav);
      u.next.setAttribute('aria-label', 'Next offer');
      u.next.textContent = '\u203a';
      on(u.prev, 'click', function () { show(u.i - 1); });
      on(u.next, 'click', function () { show(u.i + 1); });
    }
    on(u.x, 'click', function () { close('closed'); });
    // Any press (mouse, pen, touch) or key stops auto-advance; a press also says where it began.
    on(root, 'pointerdown', function (e) {
      stopAuto();
      u.down = e.target;
      if (e.target !== u.ov) u.used = Date.now();
    });
    on(u.ov, 'click', function () {
      // Only a press that starts on the overlay closes, and never just after a control was used:
      // the second click of a double click on "next" is no request to close.
      if (u.down === u.ov && Date.now() - u.used > 700) close('closed');
    });
    on(u.cta, 'click', function (e) {
      if (opts.preview) { e.preventDefault(); return log('preview: not counted', 'click'); }
      remember('clicked');
      setTimeout(guard(function () { close(''); }), 0);
    });
    on(dlg, 'keydown', keydown);
    var x0 = 0;         // where the touch began: every touchend follows its touchstart
    on(dlg, 'touchstart', function (e) { x0 = e.touches[0].clientX; }, {passive: true});
    on(dlg, 'touchend', function (e) {
      var dx = e.changedTouches[0].clientX - x0;
      if (Math.abs(dx) > 40) show(u.i + (dx < 0 ? 1 : -1));
    });
    return u;
  }

  // The texts and image frame of offer i (not its image: fit() measures without loading any).
  function fill(i) {
    var o = data.offers[i], img = safeUrl(o.image_url);
    ui.t.textContent = text(o.title);
    ui.tg.textContent = text(o.tagline);
    ui.ds.textContent = text(o.description);
    ui.cta.textContent = text(o.cta_text) || 'View offer';
    ui.fig.className = img ? 'fig' : 'fig no';
    return img;
  }
  // The dialog is centred, so its height must not change from offer to offer: every offer is
  // laid out in turn before anything is painted, and the body and the button keep the tallest
  // one's height. The close button, the call to action and the arrows then stay where they are.
  function fit() {
    var h = 0, c = 0, bd = ui.bd.style, cta = ui.cta.style;
    bd.height = cta.minHeight = '';
    for (var j = 0; j < data.offers.length; j++) {
      fill(j);
      h = Math.max(h, ui.bd.scrollHeight);
      c = Math.max(c, ui.cta.offsetHeight);
    }
    bd.height = h + 1 + 'px';       // + 1: scrollHeight is rounded, the content may be a fraction taller
    cta.minHeight = c + 'px';
    fill(ui.i);
  }

  function show(i) {
    var n = data.offers.length;
    ui.i = i = (i + n) % n;
    var img = fill(i), href = safeUrl(data.offers[i].click_url);
    if (img) ui.img.src = img; else ui.img.removeAttribute('src');
    // The click's event id is its own (not the impression's); /c/ counts it once per id. A
    // preview (the admin playground) never links to /c/: it would count a click.
    ui.cta.href = opts.preview ? '#' : href + (href.indexOf('?') < 0 ? '?' : '&') + 'e=' + uid();
    if (ui.dots) ui.dots.forEach(function (dot, j) { dot.setAttribute('aria-current', j === i); });
    if (ui.cnt) ui.cnt.textContent = (i + 1) + ' / ' + n;
    count();
  }

  // An impression is counted only while the offer is really on screen: once per offer per view.
  // The first one of a view says so ("view": 1), so the server can count popup views too.
  function count() {
    if (!ui || docGet('visibilityState') === 'hidden') return;
    var o = data.offers[ui.i];
    if (ui.seen[ui.i]) return;
    ui.seen[ui.i] = 1;
    beacon('/api/impression', {token: o.token, event_id: uid(), session_id: sessionId(), view: ui.v ? 0 : ui.v = 1});
    pixel(o.impression_pixel_url);
  }

  function keydown(e) {
    stopAuto();
    if (e.key === 'Escape') { e.preventDefault(); return close('closed'); }
    if (e.key === 'ArrowRight' && ui.next) return show(ui.i + 1);
    if (e.key === 'ArrowLeft' && ui.prev) return show(ui.i - 1);
    if (e.key !== 'Tab') return;
    // Tab and Shift+Tab cycle through the controls only (from the dialog itself: first or last).
    var list = [ui.x, ui.cta].concat(ui.prev ? [ui.prev].concat(ui.dots, [ui.next]) : []);
    var at = list.indexOf(ui.root.activeElement), n = list.length;
    e.preventDefault();
    list[(e.shiftKey ? (at > 0 ? at : n) - 1 : at + 1) % n].focus();
  }

  function stopAuto() { if (ui && ui.timer) { clearInterval(ui.timer); ui.timer = 0; log('auto-advance stopped'); } }

  function open() {
    if (ui || !data || !data.offers.length) return log(ui ? 'already open' : 'no offers to show');
    var body = docGet('body') || docGet('documentElement');
    if (!openedOnce) {
      on(d, 'visibilitychange', count);
      on(w, 'resize', function () { if (ui) fit(); });
    }
    openedOnce = true;
    ui = build();
    ui.back = docGet('activeElement');
    body.appendChild(ui.host);
    fit();
    show(0);
    ui.dlg.focus();
    var every = opts.autoAdvance;
    var calm = w.matchMedia('(prefers-reduced-motion: reduce)').matches;
    if (every > 0 && data.offers.length > 1 && !calm) {
      ui.timer = setInterval(guard(function () { show(ui.i + 1); }), Math.max(3, every) * 1000);
    }
    log('shown');
  }

  function close(why) {
    if (!ui) return;
    stopAuto();
    if (why) remember(why);
    var u = ui;
    ui = null;
    u.host.remove();
    try { if (u.back && u.back.focus) u.back.focus(); } catch (e) { /* element gone */ }
    log('closed', why || 'after click');
  }

  // --- public API ---------------------------------------------------------------------------
  function init(o) {
    o = o || {};
    if (o.debug) debug = true;
    if (opts) return log('init called again: ignored');
    if (!/^[\w-]{1,32}$/.test(o.property || '')) return log('init needs a property code');
    opts = {property: o.property, preview: !!o.preview,
      placement: /^(thankyou|timed|exit-intent)$/.test(o.placement) ? o.placement : '',
      frequency: /^(session|daily|always)$/.test(o.frequency) ? o.frequency : '',
      seconds: num(o.seconds), delay: num(o.delay), autoAdvance: num(o.autoAdvance)};
    if (o.base) base = safeUrl(o.base) && new URL(o.base).origin;
    if (!base) return log('no base URL: pass base');
    if (isBot()) return log('bot user agent: nothing shown or sent');
    offersReady = loadOffers();
    offersReady.then(guard(function () {
      if (!data.offers.length) return log('no offers to show');
      if (!armed) { armed = true; arm(); }
    }))['catch'](function (e) { log('offers failed', e && e.message); });
  }
  function showNow() {
    if (!offersReady) return log('show() before init()');
    offersReady.then(guard(open))['catch'](noop);
  }

  var existing = w[NAME] instanceof w.Node ? null : w[NAME], loaded = existing && existing.loaded;
  var queue = existing && existing.q instanceof Array ? existing.q : [];
  var api = {init: guard(init), show: guard(showNow), q: {push: guard(init)}, log: logged, loaded: 1};
  // popup.js included twice: the first copy stays in charge, so there is still one popup.
  if (loaded) api = existing;
  else try { w[NAME] = api; } catch (e) { return; }
  guard(function () {
    var o = {};
    'property placement frequency seconds auto-advance base debug preview'.split(' ').forEach(function (name) {
      o[name.replace('-a', 'A')] = attr(me, 'data-' + name);
    });
    o.debug = o.debug === 'true';
    o.preview = o.preview === 'true';
    if (o.property) api.init(o);
    queue.forEach(function (o) { api.init(o); });
  })();
})(window, document);
