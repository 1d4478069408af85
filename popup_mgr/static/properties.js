// Properties page: each property's theme preview follows its colour inputs as Mike picks them.
// Colours go in through the CSSOM (style.setProperty), which the admin's CSP allows; inline style
// attributes would not be.
(function () {
  'use strict';
  var VARS = {primary: '--pp-primary', accent: '--pp-accent', background: '--pp-background',
              text: '--pp-text', cta_text: '--pp-cta-text'};

  function paint(form) {
    var preview = form.querySelector('.theme-preview');
    if (!preview) return;
    Object.keys(VARS).forEach(function (key) {
      var input = form.querySelector('input[name="theme_' + key + '"]');
      if (input && /^#[0-9a-fA-F]{6}$/.test(input.value)) preview.style.setProperty(VARS[key], input.value);
    });
  }

  function paintAll() { document.querySelectorAll('form.property-card').forEach(paint); }

  document.addEventListener('input', function (event) {
    var form = event.target.closest('form.property-card');
    if (form && event.target.type === 'color') paint(form);
  });
  // A saved card comes back from the server (htmx swap) with a fresh, unpainted preview.
  document.addEventListener('htmx:afterSettle', paintAll);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', paintAll);
  else paintAll();
})();
