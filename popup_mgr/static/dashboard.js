// Dashboard behaviour: draws the charts from the #chart-data JSON the server rendered, sorts the
// campaign table, opens per-property rows and shows the custom date inputs. Runs again after
// every htmx swap of #dashboard-body. No inline script: the admin pages run under a strict CSP.
(function () {
  'use strict';
  var BLUE = '#1f5fbf', PINK = '#d6246e', GREEN = '#1a8f4c', GRID = '#eef0f3';
  var PROPERTY_COLOURS = ['#d6246e', '#1f5fbf', '#f29f05', '#1a8f4c', '#7a4cc2', '#5b6470'];
  var charts = {};
  var drawnFrom = null;
  var partial = [];   // per point: still in progress (the current hour, today, this week/month)
  window.popupCharts = charts; // read by the browser tests

  function dollars(value) {
    return '$' + Number(value).toLocaleString('en-US', {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function axis(title, money, position) {
    return {
      position: position || 'left', beginAtZero: true, grace: '5%',
      title: {display: true, text: title},
      grid: {color: GRID, drawOnChartArea: position !== 'right'},
      ticks: {callback: function (v) { return money ? dollars(v) : Number(v).toLocaleString('en-US'); }}
    };
  }

  function tooltipMoney(ctx) {
    var money = ctx.dataset.money;
    var value = ctx.parsed.y !== undefined && ctx.chart.config.options.indexAxis !== 'y' ? ctx.parsed.y : ctx.parsed.x;
    return ctx.dataset.label + ': ' + (money ? dollars(value) : Number(value).toLocaleString('en-US'));
  }

  function tooltipTitle(items) {
    if (!items.length) return '';
    return items[0].label + (partial[items[0].dataIndex] ? ' (so far)' : '');
  }

  // A point still in progress is drawn pale (bars) or reached by a dashed line: a partial hour
  // or day must not read as a fall.
  function paleIfPartial(colour, pale) {
    return partial.map(function (p) { return p ? pale : colour; });
  }
  var dashedToPartial = {borderDash: function (ctx) { return partial[ctx.p1DataIndex] ? [6, 4] : undefined; }};

  function make(id, config) {
    var canvas = document.querySelector('canvas[data-chart="' + id + '"]');
    if (!canvas) return;
    config.options = Object.assign({
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: {mode: 'index', intersect: false},
      plugins: {legend: {position: 'bottom', labels: {boxWidth: 12}}, tooltip: {callbacks: {label: tooltipMoney, title: tooltipTitle}}}
    }, config.options || {});
    charts[id] = new window.Chart(canvas, config);
  }

  function drawCharts() {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    var source = document.getElementById('chart-data');
    drawnFrom = source;
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    partial = data.partial || [];
    make('chart-revenue', {
      data: {labels: data.labels, datasets: [
        {type: 'bar', label: 'Revenue', data: data.revenue.map(Number), backgroundColor: paleIfPartial(BLUE, 'rgba(31,95,191,.35)'),
         money: true, yAxisID: 'y', order: 2},
        {type: 'line', label: 'RPM', data: data.rpm.map(Number), borderColor: PINK, backgroundColor: PINK, segment: dashedToPartial,
         pointRadius: data.labels.length > 40 ? 0 : 2, cubicInterpolationMode: 'monotone', money: true, yAxisID: 'rpm', order: 1}
      ]},
      options: {scales: {x: {grid: {display: false}}, y: axis('Revenue (USD)', true),
                         rpm: axis('RPM (USD per 1,000 impressions)', true, 'right')}}
    });
    make('chart-traffic', {
      type: 'line',
      data: {labels: data.labels, datasets: [
        {label: 'Impressions', data: data.impressions, borderColor: BLUE, backgroundColor: 'rgba(31,95,191,.12)',
         fill: true, pointRadius: 0, cubicInterpolationMode: 'monotone', yAxisID: 'y', segment: dashedToPartial},
        {label: 'Clicks', data: data.clicks, borderColor: PINK, backgroundColor: PINK, pointRadius: 0,
         cubicInterpolationMode: 'monotone', yAxisID: 'clicks', segment: dashedToPartial}
      ]},
      options: {scales: {x: {grid: {display: false}}, y: axis('Impressions'), clicks: axis('Clicks', false, 'right')}}
    });
    make('chart-properties', {
      type: 'bar',
      data: {labels: data.properties, datasets: [{label: 'Revenue', data: data.property_revenue.map(Number), money: true,
        backgroundColor: data.properties.map(function (_, i) { return PROPERTY_COLOURS[i % PROPERTY_COLOURS.length]; })}]},
      options: {indexAxis: 'y', plugins: {legend: {display: false}, tooltip: {callbacks: {label: tooltipMoney}}},
                scales: {x: axis('Revenue (USD)', true), y: {grid: {display: false}}}}
    });
  }

  function sortTable(button) {
    var table = button.closest('table');
    var key = button.getAttribute('data-sort');
    var descending = button.getAttribute('aria-sort') !== 'descending';
    if (key === 'name' && !button.hasAttribute('aria-sort')) descending = false;
    table.querySelectorAll('th button[aria-sort]').forEach(function (b) { b.removeAttribute('aria-sort'); });
    button.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    var groups = Array.prototype.slice.call(table.querySelectorAll('tbody.an-group'));
    groups.sort(function (a, b) {
      var x = a.getAttribute('data-' + key), y = b.getAttribute('data-' + key);
      var order = key === 'name' ? x.localeCompare(y) : Number(x) - Number(y);
      return descending ? -order : order;
    });
    groups.forEach(function (g) { table.appendChild(g); });
  }

  function toggleSplit(button) {
    var open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
    button.textContent = open ? '▾' : '▸';
    button.closest('tbody').querySelectorAll('tr.an-split').forEach(function (row) {
      row.classList.toggle('an-hidden', !open);
    });
  }

  document.addEventListener('click', function (event) {
    var sort = event.target.closest('button[data-sort]');
    if (sort) { sortTable(sort); return; }
    var split = event.target.closest('button[data-toggle-split]');
    if (split) toggleSplit(split);
  });

  // Capture phase: this runs before htmx (listening on the form) collects the values, so the
  // request for "Custom" carries the days on screen, and the other ranges carry no stale from/to.
  document.addEventListener('change', function (event) {
    if (!event.target.matches('select[data-range-select]')) return;
    var isCustom = event.target.value === 'custom';
    var custom = event.target.form.querySelector('[data-custom-range]');
    if (!custom) return;
    custom.classList.toggle('an-hidden', !isCustom);
    custom.querySelectorAll('input').forEach(function (input) { input.disabled = !isCustom; });
  }, true);

  // Redraw whenever a swap brought new chart data (the source element is replaced with the body).
  document.addEventListener('htmx:afterSettle', function () {
    if (document.getElementById('chart-data') !== drawnFrom) drawCharts();
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', drawCharts);
  else drawCharts();
})();
