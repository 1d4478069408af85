/* Campaign form helpers: Tune link and pixel paste, and the live popup preview.
 *
 * A thin convenience over the server, which applies the same parsing when the form is saved
 * (campaigns.parse_tune_link / parse_pixel_html). Text reaches the preview only through
 * textContent, and images only from http(s) URLs.
 */
(function () {
  'use strict';

  var form = document.getElementById('campaign-form');
  var preview = document.getElementById('popup-preview');
  if (!form || !preview) { return; }

  function field(name) { return form.elements.namedItem(name); }
  function byId(id) { return document.getElementById(id); }

  function httpUrl(value) {
    try {
      var url = new URL(String(value).trim());
      if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password) {
        return url;
      }
    } catch (e) { /* not a URL */ }
    return null;
  }

  function positiveInt(text) {
    return /^[0-9]{1,16}$/.test(text || '') && Number(text) > 0 ? text : null;
  }

  /* {offerId, affId} from https://…/aff_c?offer_id=123&aff_id=456, else null. */
  function parseTuneLink(value) {
    var url = httpUrl(value);
    if (!url) { return null; }
    var offerId = positiveInt(url.searchParams.get('offer_id'));
    return offerId ? {offerId: offerId, affId: positiveInt(url.searchParams.get('aff_id'))} : null;
  }

  /* The src of Tune's <img src="…"> pixel HTML (entities decoded), else null. DOMParser makes an
   * inert document: nothing in it runs or loads. */
  function parsePixelHtml(value) {
    if (!/^\s*</.test(value)) { return null; }
    var img = new DOMParser().parseFromString(value, 'text/html').querySelector('img[src]');
    var src = img ? img.getAttribute('src').trim() : '';
    return httpUrl(src) ? src : null;
  }

  function note(text) {
    var el = byId('fill-note');
    if (el) { el.textContent = text; }
  }

  function fillFromTuneLink(value, alsoClickUrl) {
    var link = parseTuneLink(value);
    if (!link) { return false; }
    field('tune_campaign_id').value = link.offerId;
    if (link.affId) { field('aff_id').value = link.affId; }
    if (alsoClickUrl) { field('click_url').value = String(value).trim(); }
    note('Filled Tune offer ' + link.offerId + (link.affId ? ' and affiliate ' + link.affId : '') +
         ' from the link.');
    return true;
  }

  var quickFill = field('tune_link');
  if (quickFill) {
    quickFill.addEventListener('input', function () {
      if (quickFill.value.trim() && !fillFromTuneLink(quickFill.value, true)) {
        note('That is not a Tune tracking link (expected …/aff_c?offer_id=…&aff_id=…).');
      }
    });
  }
  field('click_url').addEventListener('change', function () {
    var ids = field('tune_campaign_id');
    if (!ids.value.trim()) { fillFromTuneLink(field('click_url').value, false); }
  });

  var pixel = field('impression_pixel_url');
  pixel.addEventListener('input', function () {
    var src = parsePixelHtml(pixel.value);
    if (src) { pixel.value = src; }
  });

  /* --- live preview ---------------------------------------------------------------------- */

  var themeSelect = byId('preview-theme');
  var THEME_VARS = {primary: '--pp-primary', accent: '--pp-accent', background: '--pp-background',
                    text: '--pp-text', cta_text: '--pp-cta-text'};

  function applyTheme() {
    var option = themeSelect && themeSelect.options[themeSelect.selectedIndex];
    var theme = {};
    try { theme = JSON.parse(option ? option.getAttribute('data-theme') : '{}') || {}; } catch (e) { theme = {}; }
    Object.keys(THEME_VARS).forEach(function (key) {
      if (/^#[0-9a-fA-F]{6}$/.test(theme[key] || '')) {
        preview.style.setProperty(THEME_VARS[key], theme[key]);   // CSSOM: allowed by the CSP
      }
    });
    showImage(byId('pp-logo'), theme.logo_url);
  }

  /* Shows img (or its frame) for an http(s) URL, hides it otherwise. */
  function showImage(img, value, frame) {
    var url = httpUrl(value || '');
    if (url) {
      if (img.getAttribute('src') !== url.href) { img.setAttribute('src', url.href); }
    } else {
      img.removeAttribute('src');
    }
    (frame || img).hidden = !url;
  }

  function setText(id, value, fallback) {
    var el = byId(id);
    el.textContent = value || fallback || '';
    el.hidden = !value && !fallback;
  }

  function render() {
    setText('pp-title', field('display_title').value, 'Your offer title');
    setText('pp-tagline', field('tagline').value);
    setText('pp-description', field('description').value);
    setText('pp-cta', field('cta_text').value, 'View Offer');
    showImage(byId('pp-image'), field('image_url').value, byId('pp-figure'));
  }

  ['display_title', 'tagline', 'description', 'cta_text', 'image_url'].forEach(function (name) {
    field(name).addEventListener('input', render);
  });
  if (themeSelect) { themeSelect.addEventListener('change', applyTheme); }
  applyTheme();
  render();
  form.setAttribute('data-helpers', 'ready');   // tests wait for this before typing
}());
