/* Backtest pages: the form shows the fields of the chosen price source; a running backtest polls its progress;
   a finished one draws the price with the chosen configuration's actions and liquidation levels (uPlot). */
(function () {
  "use strict";

  /* --- the form: show the part of the chosen source and trades ------------------------------------------------ */
  function toggle(name, attr) {
    var checked = document.querySelector('input[name="' + name + '"]:checked');
    var parts = document.querySelectorAll("[" + attr + "]");
    for (var i = 0; i < parts.length; i++) {
      parts[i].hidden = !!checked && parts[i].getAttribute(attr) !== checked.value;
    }
  }
  var form = document.getElementById("backtest-form");
  if (form) {
    var sync = function () { toggle("source", "data-source"); toggle("trades_source", "data-trades"); };
    form.addEventListener("change", sync);
    sync();
  }

  /* --- progress ------------------------------------------------------------------------------------------------ */
  var box = document.getElementById("run-progress");
  if (box) {
    var url = box.getAttribute("data-progress-url");
    var bar = document.getElementById("bt-progress");
    var percent = document.getElementById("bt-percent");
    var message = document.getElementById("bt-message");
    var stalled = document.getElementById("bt-stalled");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (data) {
          bar.value = data.progress;
          bar.textContent = data.progress + " %";
          percent.textContent = String(data.progress);
          message.textContent = data.message || "";
          stalled.hidden = !data.stalled;
          if (data.finished) { location.reload(); return; }
          setTimeout(poll, 700);
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }

  /* --- chart --------------------------------------------------------------------------------------------------- */
  var dataEl = document.getElementById("bt-chart-data");
  var chartEl = document.getElementById("bt-chart");
  if (!dataEl || !chartEl || typeof window.uPlot !== "function") return;
  var data = JSON.parse(dataEl.textContent);
  if (!data || !data.price || !data.price.t || !data.price.t.length) return;
  var select = document.getElementById("bt-config");
  var COLORS = {
    close: "#4aa3ff", reduce: "#b57bff", add_margin: "#2ecc71", set_stoploss: "#f1c40f", set_takeprofit: "#f1c40f",
    open: "#1abc9c", liquidation: "#e74c3c", stoploss: "#e67e22", takeprofit: "#e67e22", skip: "#56606c"
  };
  var current = function () { return data.configs[Number(select ? select.value : 0)] || data.configs[0]; };

  function drawOverlay(u) {
    var config = current();
    if (!config) return;
    var ctx = u.ctx;
    var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    /* liquidation levels: a dashed step line per trade, until the trade is gone */
    ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.strokeStyle = "#e74c3c";
    ctx.lineWidth = 1.2 * devicePixelRatio;
    var levels = config.levels || {};
    Object.keys(levels).forEach(function (id) {
      var pts = levels[id];
      for (var i = 0; i < pts.length; i++) {
        if (pts[i][1] === null) continue;
        var x0 = Math.max(u.valToPos(pts[i][0], "x", true), left);
        var x1 = i + 1 < pts.length ? u.valToPos(pts[i + 1][0], "x", true) : right;
        var y = u.valToPos(pts[i][1], "y", true);
        ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(Math.min(x1, right), y); ctx.stroke();
      }
    });
    ctx.setLineDash([]);
    /* actions: a dot per automation action, a cross per exchange event */
    (config.markers || []).forEach(function (m) {
      var x = u.valToPos(m.t, "x", true), y = u.valToPos(m.price, "y", true);
      var r = 5 * devicePixelRatio;
      ctx.strokeStyle = ctx.fillStyle = COLORS[m.kind] || "#e6e9ee";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath();
      if (m.source === "exchange") {
        ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r); ctx.moveTo(x + r, y - r); ctx.lineTo(x - r, y + r); ctx.stroke();
      } else {
        ctx.arc(x, y, r, 0, 2 * Math.PI);
        if (m.outcome && m.outcome.indexOf("rejected") === 0) ctx.stroke(); else ctx.fill();
      }
    });
    ctx.restore();
  }

  function yRange(u, min, max) {
    var config = current(), lo = min, hi = max;
    var levels = (config && config.levels) || {};
    Object.keys(levels).forEach(function (id) {
      levels[id].forEach(function (p) { if (p[1] !== null) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); } });
    });
    var pad = (hi - lo) * 0.05 || 100;
    return [lo - pad, hi + pad];
  }

  function xRange() {
    var t = data.price.t, lo = t[0], hi = t[t.length - 1];
    return lo === hi ? [lo - 1800, hi + 1800] : [lo, hi];
  }

  var height = window.innerWidth < 640 ? 260 : 380;
  var opts = {
    width: chartEl.clientWidth || 320,
    height: height,
    series: [
      {},
      { label: "close", stroke: "#f7931a", width: 1.5 },
      { label: "low", stroke: "rgba(247,147,26,0.35)", width: 1 },
      { label: "high", stroke: "rgba(247,147,26,0.35)", width: 1 }
    ],
    scales: {
      x: { time: true, auto: false, range: xRange },
      y: { range: yRange }
    },
    axes: [
      { stroke: "#8b96a5", grid: { stroke: "#2a3440" } },
      { stroke: "#8b96a5", grid: { stroke: "#2a3440" }, size: 70,
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000] }
    ],
    legend: { show: false },
    hooks: { draw: [drawOverlay] }
  };
  var p = data.price;
  var chart = new window.uPlot(opts, [p.t, p.close, p.low, p.high], chartEl);
  if (select) select.addEventListener("change", function () { chart.setScale("y", { min: null, max: null }); chart.redraw(true, true); });
  window.addEventListener("resize", function () { chart.setSize({ width: chartEl.clientWidth || 320, height: height }); });
  window.axisorBacktestChart = chart;
})();
