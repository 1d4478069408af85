// Install page: copy the snippet (Postback page: the URL). Playground: open the popup on demand, forget its memory, list
// what the popup reports.
(function () {
  'use strict';
  function say(text) {
    document.querySelectorAll('.embed-copy-status').forEach(function (el) { el.textContent = text; });
  }
  // Delegated: the Postback page's panel (and its Copy button) is replaced by htmx after a test.
  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-copy-target]');
    if (!button) return;
    var text = document.getElementById(button.getAttribute('data-copy-target')).textContent;
    navigator.clipboard.writeText(text).then(function () { say('Copied.'); },
      function () { say('Copy failed: select the text and copy it by hand.'); });
  });
  var show = document.getElementById('embed-show');
  if (show) show.addEventListener('click', function () {
    if (window.ModePopup && window.ModePopup.show) window.ModePopup.show(); else say('The script has not loaded yet.');
  });
  var forget = document.getElementById('embed-forget');
  if (forget) forget.addEventListener('click', function () {
    [window.localStorage, window.sessionStorage].forEach(function (store) {
      try {
        Object.keys(store).forEach(function (key) { if (key.indexOf('modepopup:') === 0) store.removeItem(key); });
      } catch (e) { /* storage blocked: nothing to forget */ }
    });
    say('Memory cleared: reload to see the popup again.');
  });
  // The playground runs the popup with debug on: what it reports (why it shows nothing, what a
  // preview does not count) is listed on the page, where Mike looks, not only in the console.
  var lines = document.getElementById('embed-log'), listed = 0;
  if (lines) setInterval(function () {
    var log = (window.ModePopup && window.ModePopup.log) || [];
    for (; listed < log.length; listed++) {
      var item = document.createElement('li');
      item.textContent = log[listed];
      lines.appendChild(item);
      if (log[listed].indexOf('bot user agent') === 0) explainBot();
    }
  }, 250);
  function explainBot() {
    var note = document.getElementById('embed-bot');
    note.textContent = 'This browser looks like a bot to the popup (its user agent: ' + navigator.userAgent +
      '), so the popup shows nothing and sends nothing here, as for crawlers and headless browsers on' +
      ' publisher pages. Open the playground in an ordinary browser to see it.';
    note.hidden = false;
  }
})();
