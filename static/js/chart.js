/* Axisor trading chart: candlesticks from the exchange's OHLC history (1m, 5m, 1h, 1d), updated live from the
 * dashboard's ticks, with the selected account's trade levels, automation triggers and open/close markers.
 * TradingView Lightweight Charts (static/vendor/lightweight-charts, Apache-2.0). Plain JavaScript, no build step;
 * server text goes in with textContent only. dashboard.js calls window.axisorChart.{tick, load, refresh}. */
(function () {
  "use strict";
  var el = document.getElementById("price-chart");
  var LC = window.LightweightCharts;
  if (!el || !LC) return;
  var box = el.closest("[data-chart-url]");
  var url = box.dataset.chartUrl;
  var status = document.getElementById("chart-status");
  var RES = { "1m": 60, "5m": 300, "1h": 3600, "1d": 86400 };
  var COLORS = { entry: "#c9d1db", liquidation: "#e74c3c", stoploss: "#f1c40f", takeprofit: "#2ecc71", trigger: "#f7931a" };
  var STYLES = { entry: 0, liquidation: 2, stoploss: 2, takeprofit: 2, trigger: 1 };
  /* Lightweight Charts draws UTC: shift every time by the browser's offset so the axis reads local time. */
  var shift = -new Date().getTimezoneOffset() * 60;
  var state = { range: "1m", account: null, last: null, lines: [], loading: false, retry: null, refreshAt: 0 };

  var chart = LC.createChart(el, {
    autoSize: true,
    layout: { background: { color: "#182029" }, textColor: "#8b96a5", attributionLogo: true },
    grid: { vertLines: { color: "#222c37" }, horzLines: { color: "#222c37" } },
    rightPriceScale: { borderColor: "#2a3440" },
    timeScale: { borderColor: "#2a3440", timeVisible: true, secondsVisible: false, rightOffset: 4 },
    crosshair: { mode: 0 },
    localization: { locale: document.documentElement.lang || undefined },
  });
  var series = chart.addSeries(LC.CandlestickSeries, {
    upColor: "#2ecc71", downColor: "#e74c3c", borderVisible: false, wickUpColor: "#2ecc71", wickDownColor: "#e74c3c",
    priceFormat: { type: "price", precision: 1, minMove: 0.5 },
  });
  var markers = LC.createSeriesMarkers(series, []);

  function say(text) { if (status) { status.textContent = text || ""; status.hidden = !text; } }
  function bar(c) {
    return { time: c.time + shift, open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
  }
  function bucket(t) { var r = RES[state.range]; return Math.floor(t / r) * r + shift; }

  /* The price scale fits the candles plus the lines within 6 % of the last price (a liquidation far away would
   * flatten the candles; it stays in the positions table). */
  var near = [];
  series.applyOptions({
    autoscaleInfoProvider: function (original) {
      var res = original();
      if (!res || !res.priceRange || !state.last) return res;
      near.forEach(function (p) {
        if (Math.abs(p - state.last.close) / state.last.close <= 0.06) {
          res.priceRange.minValue = Math.min(res.priceRange.minValue, p);
          res.priceRange.maxValue = Math.max(res.priceRange.maxValue, p);
        }
      });
      return res;
    },
  });
  function drawLevels(levels) {
    var narrow = el.clientWidth < 560; /* a phone: axis labels only, the legend names the colours */
    state.lines.forEach(function (line) { series.removePriceLine(line); });
    near = levels.map(function (l) { return Number(l.price); });
    state.lines = levels.map(function (l) {
      return series.createPriceLine({
        price: Number(l.price), color: COLORS[l.kind] || "#8b96a5", lineWidth: l.kind === "trigger" ? 2 : 1,
        lineStyle: STYLES[l.kind] || 0, axisLabelVisible: true, title: narrow ? "" : l.title,
      });
    });
    box.dataset.levels = String(levels.length);
  }
  function drawMarkers(list) {
    var seen = {}, narrow = el.clientWidth < 560; /* a phone: arrows without words, they would overlap */
    var out = list.map(function (m) {
      var open = m.kind === "open", long = m.side === "buy";
      var up = open ? long : !long;
      return { time: bucket(m.time), position: up ? "belowBar" : "aboveBar", shape: up ? "arrowUp" : "arrowDown",
               color: open ? (long ? "#2ecc71" : "#e74c3c") : "#c9d1db", text: narrow ? "" : m.text };
    }).filter(function (m) { var k = m.time + m.position + m.text; if (seen[k]) return false; seen[k] = true; return true; });
    markers.setMarkers(out);
    box.dataset.markers = String(out.length);
  }
  function fetchChart() {
    var q = "?range=" + encodeURIComponent(state.range) + (state.account ? "&account=" + encodeURIComponent(state.account) : "");
    return fetch(url + q, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; });
  }
  function load(account, range) {
    if (account !== undefined && account !== null) state.account = account;
    if (range) state.range = range;
    clearTimeout(state.retry);
    state.loading = true;
    var asked = state.range;
    return fetchChart().then(function (body) {
      state.loading = false;
      if (!body || asked !== state.range) return;
      var bars = body.candles.map(bar);
      series.setData(bars);
      state.last = bars.length ? bars[bars.length - 1] : null;
      box.dataset.candles = String(bars.length);
      box.dataset.range = state.range;
      drawLevels(body.levels);
      drawMarkers(body.markers);
      chart.timeScale().scrollToRealTime();
      if (body.candles_unavailable) {
        say(box.dataset.unavailable);
        state.retry = setTimeout(function () { load(); }, 10000);
      } else say("");
    }).catch(function () {
      state.loading = false;
      say(box.dataset.unavailable);
      state.retry = setTimeout(function () { load(); }, 10000);
    });
  }
  /* Levels and markers again (a trade opened, closed, or its stop moved), at most every 3 s. */
  function refresh() {
    var now = Date.now();
    if (state.loading || now - state.refreshAt < 3000) return;
    state.refreshAt = now;
    fetchChart().then(function (body) { if (body) { drawLevels(body.levels); drawMarkers(body.markers); } }).catch(function () {});
  }
  function tick(seconds, price) {
    if (!isFinite(seconds) || !isFinite(price) || !state.last) return;
    var t = bucket(seconds);
    if (t < state.last.time) return;
    if (t === state.last.time) {
      state.last = { time: t, open: state.last.open, high: Math.max(state.last.high, price), low: Math.min(state.last.low, price), close: price };
    } else {
      state.last = { time: t, open: state.last.close, high: Math.max(state.last.close, price), low: Math.min(state.last.close, price), close: price };
    }
    series.update(state.last);
  }

  document.querySelectorAll(".chart-ranges button[data-range]").forEach(function (b) {
    b.addEventListener("click", function () {
      document.querySelectorAll(".chart-ranges button").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      load(null, b.dataset.range);
    });
  });
  window.axisorChart = { tick: tick, load: load, refresh: refresh, state: function () { return state; } };
  load(box.dataset.account || null, "1m");
})();
