// keygate console: draws the usage charts (Chart.js) in every page and
// fragment htmx loads, and copies a new key to the clipboard. Nothing here
// stores anything: no localStorage, no sessionStorage, no cookies.
(function () {
  'use strict';

  // Okabe-Ito colours: told apart with the common colour-vision deficiencies.
  var palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#8C6D00', '#332288'];
  var otherColour = '#8A8F98';
  var quotaColour = '#B42318';

  function config(spec) {
    var datasets = spec.series.map(function (s, i) {
      var other = i === spec.series.length - 1 && / other keys$/.test(s.label);
      return {
        type: 'bar', label: s.label, data: s.data, stack: 'usage',
        backgroundColor: other ? otherColour : palette[i % palette.length],
        borderWidth: 0, order: 2
      };
    });
    if (spec.quota) {
      datasets.push({
        type: 'line', label: spec.quotaLabel, data: spec.labels.map(function () { return spec.quota; }),
        borderColor: quotaColour, borderDash: [6, 4], borderWidth: 2, pointRadius: 0, fill: false, order: 1
      });
    }
    return {
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { display: datasets.length > 1, position: 'bottom' } },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }
        }
      }
    };
  }

  function drawCharts(root) {
    var canvases = root.querySelectorAll ? root.querySelectorAll('canvas[data-chart]') : [];
    canvases.forEach(function (canvas) {
      if (Chart.getChart(canvas)) { return; }
      new Chart(canvas, config(JSON.parse(canvas.getAttribute('data-chart'))));
    });
  }

  htmx.onLoad(drawCharts);

  // A chart that htmx swaps out is destroyed, so Chart.js lets go of it.
  document.addEventListener('htmx:beforeCleanupElement', function (e) {
    var el = e.target;
    if (el.tagName === 'CANVAS') {
      var chart = Chart.getChart(el);
      if (chart) { chart.destroy(); }
    }
  });

  // A new key must not come back with the Back button: a browser may keep
  // a page it left in memory (the back/forward cache) and show it again as
  // it was. So the key leaves the page when the page is left.
  window.addEventListener('pagehide', function () {
    document.querySelectorAll('.secret-value').forEach(function (el) {
      el.textContent = 'shown once: no longer shown';
    });
  });

  document.addEventListener('click', function (e) {
    var button = e.target.closest('[data-copy]');
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute('data-copy'));
    var status = button.parentNode.querySelector('.copy-status');
    var say = function (text) { if (status) { status.textContent = text; } };
    var selectIt = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.textContent).then(function () {
        say('Copied.');
      }, function () {
        selectIt();
        say('Selected: press Ctrl+C (or ⌘C) to copy.');
      });
    } else {
      selectIt();
      say('Selected: press Ctrl+C (or ⌘C) to copy.');
    }
  });
})();
