/*! ModePopup: Mode's offer popup. Contract: embed/README.md */
(function (w, d) {
  'use strict';
  var NAME = 'ModePopup', KEY = 'modepopup:';
  // Document properties can be clobbered by the host page (<img name="currentScript">,
  // <form name="body">): read them through the prototype getters instead.
  var DP = Document.prototype, EP = Element.prototype, TP = EventTarget.prototype;
  var debug = false, base = '', opts = null, data = null, offersReady = null;
  var armed = false, openedOnce = false, ui = null;

  function noop() {}
  function log() {
    if (!debug) return;
    try { w.console.log.apply(w.console, ['ModePopup:'].concat([].slice.call(arguments))); } catch (e) { /* no console */ }
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
  // and HTTP libraries. Bots get no popup and send nothing.
  var BOT = /bot\b|bot[\/_-]|crawl|spider|slurp|archiv|headless|lighthouse|phantom|puppeteer|playwright|selenium|webdriver|python|curl|wget|httpclient|java\/|go-http|axios|node-fetch|okhttp|facebookexternal|bingpreview|mediapartners|adsbot|pingdom|uptime|monitor|scanner|preview|whatsapp|embedly|quora link|^mozilla\/5\.0$/i;
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
  function today() { var t = new Date(); return t.getFullYear() + '-' + (t.getMonth() + 1) + '-' + t.getDate(); }
  function memKey(what) { return KEY + opts.property + ':' + what; }
  function remembered(what, frequency) {
    var ss = storage('sessionStorage'), ls = storage('localStorage');
    if (frequency === 'daily') return !!ls && ls.getItem(memKey(what)) === today();
    return !!ss && ss.getItem(memKey(what)) === '1';
  }
  function remember(what) {
    var ss = storage('sessionStorage'), ls = storage('localStorage');
    if (ss) ss.setItem(memKey(what), '1');
    if (ls && data && data.frequency === 'daily') ls.setItem(memKey(what), today());
  }
  function suppressed() {
    var f = data.frequency;
    // A click ends the popup for the period (for `always`: for the browser session).
    if (remembered('clicked', f === 'always' ? 'session' : f)) return 'clicked';
    if (f !== 'always' && remembered('closed', f)) return 'closed';
    return '';
  }
  function sessionId() {
    var ss = storage('sessionStorage'), id = ss && ss.getItem(KEY + 'sid');
    if (!id) { id = uid(); if (ss) ss.setItem(KEY + 'sid', id); }
    return id;
  }

  // --- network: the offers call, the beacons, the offer image and the Tune pixel only ---------
  function beacon(path, body) {
    if (opts.preview) return log('preview: not sent', path);
    var url = base + path, s = JSON.stringify(body);
    try { if (navigator.sendBeacon && navigator.sendBeacon(url, s)) return; } catch (e) { /* fall back */ }
    w.fetch(url, {method: 'POST', keepalive: true, body: s, credentials: 'omit', mode: 'cors',
      headers: {'Content-Type': 'text/plain'}}).catch(noop);
  }
  function pixel(u) {
    u = safeUrl(u);
    if (!u || opts.preview) return;
    var img = new Image(1, 1);
    img.alt = '';
    img.src = u;
  }
  function loadOffers() {
    var q = opts.placement ? '?placement=' + encodeURIComponent(opts.placement) : '';
    return w.fetch(base + '/api/offers/' + encodeURIComponent(opts.property) + q,
      {credentials: 'omit', mode: 'cors'}).then(function (r) {
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
      if (w.matchMedia && w.matchMedia('(pointer: coarse)').matches) {
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
  var MAX_DOTS = 3;
  var CSS = ':host{all:initial!important;position:fixed!important;inset:0!important;z-index:2147483647!important;' +
    'display:flex!important;align-items:center!important;justify-content:center!important;visibility:visible!important;opacity:1!important}' +
    '*{box-sizing:border-box;margin:0;padding:0;font:inherit;color:inherit}' +
    '.ov{position:absolute;inset:0;background:rgba(0,0,0,.55)}' +
    '.dlg{position:relative;width:calc(100% - 24px);max-width:420px;max-height:calc(100% - 24px);overflow:auto;' +
    'background:var(--bg);color:var(--tx);border-radius:14px;padding:20px;box-shadow:0 10px 40px rgba(0,0,0,.35);' +
    'font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;text-align:center;overflow-wrap:anywhere}' +
    'button{all:unset;box-sizing:border-box;cursor:pointer;min-width:44px;min-height:44px;display:inline-flex;align-items:center;justify-content:center;border-radius:8px}' +
    ':focus-visible{outline:3px solid var(--ac)!important;outline-offset:2px}.dlg:focus{outline:0!important}' +
    '.x{position:absolute;top:4px;right:4px;font-size:28px;line-height:1}' +
    '.logo{display:block;height:32px;max-width:60%;margin:0 auto 12px;object-fit:contain}' +
    '.fig{aspect-ratio:16/9;width:100%;margin:8px 0 14px;border-radius:10px;overflow:hidden;background:#f1f2f4}' +
    '.fig img{display:block;width:100%;height:100%;object-fit:cover}' +
    '.no{display:none}' +
    'h2{font-size:22px;line-height:1.25;font-weight:700;padding:0 28px}' +
    '.tg{color:var(--ac);font-weight:600;margin-top:6px}.ds{margin-top:8px;font-size:15px}' +
    '.cta{display:flex;align-items:center;justify-content:center;min-height:48px;margin-top:16px;padding:10px 16px;' +
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
    var u = {host: host, root: root, i: 0, seen: {}};
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
    u.fig = el('div', 'fig', dlg);
    u.img = el('img', '', u.fig);
    u.img.alt = '';
    on(u.img, 'error', function () { u.fig.className = 'fig no'; });
    u.t = el('h2', '', dlg);
    u.t.id = 'mp-t';
    u.tg = el('p', 'tg', dlg);
    u.ds = el('p', 'ds', dlg);
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
      // Dots while prev + dots + next fit a 320 px phone at 44 px per tap target; beyond, "2 / 7".
      for (var k = 0; k < n && n <= MAX_DOTS; k++) {
        var dot = el('button', 'dot', nav);
        dot.setAttribute('aria-label', 'Offer ' + (k + 1) + ' of ' + n);
        on(dot, 'click', (function (j) { return function () { show(j); }; })(k));
        u.dots.push(dot);
      }
      if (n > MAX_DOTS) {
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
    on(u.ov, 'click', function () { close('closed'); });
    on(u.cta, 'click', function () { remember('clicked'); setTimeout(guard(function () { close(''); }), 0); });
    on(dlg, 'keydown', keydown);
    var x0 = null;
    on(dlg, 'touchstart', function (e) { x0 = e.touches[0].clientX; }, {passive: true});
    on(dlg, 'touchend', function (e) {
      var dx = x0 === null ? 0 : e.changedTouches[0].clientX - x0;
      if (Math.abs(dx) > 40) show(u.i + (dx < 0 ? 1 : -1));
      x0 = null;
    });
    ['pointerdown', 'keydown', 'touchstart'].forEach(function (type) { on(dlg, type, stopAuto); });
    return u;
  }

  function show(i) {
    var n = data.offers.length, o;
    ui.i = i = (i + n) % n;
    o = data.offers[i];
    ui.t.textContent = text(o.title);
    ui.tg.textContent = text(o.tagline);
    ui.ds.textContent = text(o.description);
    ui.cta.textContent = text(o.cta_text) || 'View offer';
    var img = safeUrl(o.image_url);
    ui.fig.className = img ? 'fig' : 'fig no';
    if (img) ui.img.src = img; else ui.img.removeAttribute('src');
    // The click's event id is its own (not the impression's); /c/ counts it once per id.
    var href = safeUrl(o.click_url);
    ui.cta.href = href + (href.indexOf('?') < 0 ? '?' : '&') + 'e=' + uid();
    if (ui.dots) ui.dots.forEach(function (dot, j) { dot.setAttribute('aria-current', j === i ? 'true' : 'false'); });
    if (ui.cnt) ui.cnt.textContent = (i + 1) + ' / ' + n;
    count();
  }

  // An impression is counted only while the offer is really on screen: once per offer per view.
  function count() {
    if (!ui || docGet('visibilityState') === 'hidden') return;
    var o = data.offers[ui.i];
    if (ui.seen[ui.i]) return;
    ui.seen[ui.i] = 1;
    beacon('/api/impression', {token: o.token, event_id: uid(), session_id: sessionId()});
    pixel(o.impression_pixel_url);
  }

  function focusables() {
    return [ui.x, ui.cta].concat(ui.prev ? [ui.prev].concat(ui.dots, [ui.next]) : []);
  }
  function keydown(e) {
    if (e.key === 'Escape') { e.preventDefault(); return close('closed'); }
    if (e.key === 'ArrowRight' && ui.next) return show(ui.i + 1);
    if (e.key === 'ArrowLeft' && ui.prev) return show(ui.i - 1);
    if (e.key !== 'Tab') return;
    var list = focusables(), at = list.indexOf(ui.root.activeElement);
    var to = e.shiftKey ? (at <= 0 ? list.length - 1 : at - 1) : (at < 0 || at === list.length - 1 ? 0 : at + 1);
    e.preventDefault();
    list[to].focus();
  }

  function stopAuto() { if (ui && ui.timer) { clearInterval(ui.timer); ui.timer = 0; log('auto-advance stopped'); } }

  function open() {
    if (ui || !data || !data.offers.length) return log(ui ? 'already open' : 'no offers to show');
    var body = docGet('body') || docGet('documentElement');
    openedOnce = true;
    ui = build();
    ui.back = docGet('activeElement');
    body.appendChild(ui.host);
    show(0);
    ui.dlg.focus();
    on(d, 'visibilitychange', count);
    var every = opts.autoAdvance;
    var calm = w.matchMedia && w.matchMedia('(prefers-reduced-motion: reduce)').matches;
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
    if (u.host.parentNode) u.host.parentNode.removeChild(u.host);
    try { if (u.back && u.back.focus) u.back.focus(); } catch (e) { /* element gone */ }
    log('closed', why || 'after click');
  }

  // --- public API ---------------------------------------------------------------------------
  function init(o) {
    o = o || {};
    if (o.debug) debug = true;
    if (opts) return log('init called again: ignored (one popup per page)');
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.property || '')) return log('init needs a property code');
    opts = {property: o.property, preview: !!o.preview,
      placement: /^(thankyou|timed|exit-intent)$/.test(o.placement) ? o.placement : '',
      frequency: /^(session|daily|always)$/.test(o.frequency) ? o.frequency : '',
      seconds: num(o.seconds), delay: num(o.delay), autoAdvance: num(o.autoAdvance)};
    if (o.base) base = safeUrl(o.base) && new URL(o.base).origin;
    if (!base) return log('no base URL (load popup.js with a <script src> or pass base)');
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

  var existing = w[NAME], loaded = existing && !(existing instanceof w.Node) && existing.loaded;
  var queue = existing && !(existing instanceof w.Node) && existing.q instanceof Array ? existing.q : [];
  var api = {init: guard(init), show: guard(showNow), q: {push: guard(init)}, loaded: 1};
  // popup.js included twice: the first copy stays in charge, so there is still one popup.
  if (loaded) api = existing;
  else try { w[NAME] = api; } catch (e) { return; }
  guard(function () {
    if (me && attr(me, 'data-property')) {
      api.init({property: attr(me, 'data-property'), placement: attr(me, 'data-placement'),
        frequency: attr(me, 'data-frequency'), seconds: attr(me, 'data-seconds'),
        autoAdvance: attr(me, 'data-auto-advance'), base: attr(me, 'data-base'),
        debug: attr(me, 'data-debug') === 'true', preview: attr(me, 'data-preview') === 'true'});
    }
    queue.forEach(function (o) { api.init(o); });
  })();
})(window, document);
