// Install page: copy the snippet. Playground: open the popup on demand, forget its memory.
(function () {
  'use strict';
  function say(text) {
    document.querySelectorAll('.embed-copy-status').forEach(function (el) { el.textContent = text; });
  }
  document.querySelectorAll('[data-copy-target]').forEach(function (button) {
    button.addEventListener('click', function () {
      var text = document.getElementById(button.getAttribute('data-copy-target')).textContent;
      navigator.clipboard.writeText(text).then(function () { say('Copied.'); },
        function () { say('Copy failed: select the snippet and copy it by hand.'); });
    });
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
})();
