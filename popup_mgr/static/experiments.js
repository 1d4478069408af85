/* The experiment form: show the fields of the chosen mode, and a live preview of each arm
   (the campaign's creative with the arm's own fields over it). Text goes in via textContent. */
(function () {
  'use strict';
  var form = document.getElementById('experiment-form');
  if (!form) return;
  var campaigns = JSON.parse(document.getElementById('experiment-campaigns').textContent || '{}');

  function mode() {
    var checked = form.querySelector('input[name=mode]:checked');
    return checked ? checked.value : 'campaigns';
  }

  function campaignOf(slot) {
    var select = mode() === 'creatives' ? form.querySelector('select[name=campaign_id]')
      : slot.querySelector('select[name$=campaign_id]');
    return campaigns[select && select.value] || null;
  }

  function hasOwnCreative(slot) {
    return Array.prototype.some.call(slot.querySelectorAll('[data-field]'), function (node) {
      return node.value.trim() !== '';
    });
  }

  function preview(slot) {
    var campaign = campaignOf(slot), stage = slot.querySelector('.arm-preview');
    // In a creative test, arms C and D take part only once they change something.
    var optional = mode() === 'creatives' && Number(slot.getAttribute('data-slot')) >= 2;
    stage.hidden = !campaign || (optional && !hasOwnCreative(slot));
    if (!campaign) return;
    slot.querySelectorAll('[data-preview]').forEach(function (node) {
      var field = node.getAttribute('data-preview');
      var own = slot.querySelector('[data-field=' + field + ']');
      var value = (own && own.value.trim()) || campaign[field] || '';
      if (field === 'image_url') {
        var ok = /^https?:\/\//i.test(value);
        node.parentNode.hidden = !ok;
        if (ok) node.setAttribute('src', value); else node.removeAttribute('src');
      } else {
        node.textContent = value || (field === 'cta_text' ? 'View Offer' : '');
      }
    });
  }

  var shownMode = null;

  function refresh() {
    var m = mode();
    form.querySelectorAll('[data-mode]').forEach(function (node) {
      node.hidden = node.getAttribute('data-mode') !== m;
    });
    // A creative test is written in the arms' creative fields: show them.
    if (m === 'creatives' && m !== shownMode) {
      form.querySelectorAll('details.arm-creative').forEach(function (node) { node.open = true; });
    }
    shownMode = m;
    form.querySelectorAll('fieldset.arm').forEach(preview);
  }

  form.addEventListener('input', refresh);
  form.addEventListener('change', refresh);
  refresh();
})();
