/* Axisor live dashboard: one WebSocket per tab, polling fallback, seq-gap resync, freshness marking.
 * Plain JavaScript, no build step. Server messages: {type, seq, ts, data} (see realtime/consumers.py).
 * All server text is inserted with textContent (never innerHTML). */
(function () {
  "use strict";
  var script = document.currentScript;
  var cfg = {
    wsPath: script.dataset.wsPath,
    apiUrl: script.dataset.apiUrl,
    loginUrl: script.dataset.loginUrl,
    automationUrl: script.dataset.automationUrl || "/automations/0/edit/",
    tradeActionUrl: script.dataset.tradeActionUrl || "/realtime/positions/0/close/",
  };
  var POLL_MS = 5000, BACKOFF_BASE_MS = 1000, BACKOFF_MAX_MS = 30000, TICK_MS = 1000;
  var initialEl = document.getElementById("initial-snapshot");
  var snap = initialEl ? JSON.parse(initialEl.textContent) : null;
  var stringsEl = document.getElementById("live-strings");
  var S = stringsEl ? JSON.parse(stringsEl.textContent) : {};
  function tx(text) { return S[text] || text; }
  var root = document.getElementById("live-root");
  var badge = document.getElementById("conn-badge");

  var ws = null, lastSeq = 0, resyncPending = false, attempt = 0, reconnectTimer = null, pollTimer = null;
  var conn = "connecting", ended = false;
  var retryHintMs = 0; /* the delay a shed socket was told (error "overloaded", close 4429) */
  var socketsPaused = false; /* an operator paused live sockets (close 4503 or a poll saying so): polls drive the reconnect */
  var market = { data: null, localAt: 0 };
  var accountId = snap && snap.account ? snap.account.id : null;
  /* The candlestick chart is static/js/chart.js (window.axisorChart): ticks, account switches and trade changes. */
  function chartCall(name) {
    var c = window.axisorChart;
    if (c && typeof c[name] === "function") c[name].apply(null, Array.prototype.slice.call(arguments, 1));
  }
  var lang = document.documentElement.lang || undefined;
  var intFmt = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var priceFmt = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  function fmtInt(v) { return v === null || v === undefined ? "—" : intFmt.format(v); }
  function fmtPrice(v) { return v === null || v === undefined ? "—" : priceFmt.format(Number(v)); }
  function fmtPct(v) {
    if (v === null || v === undefined) return "—";
    var t = String(v);
    if (/^-0(\.0*)?$/.test(t)) t = t.slice(1); /* a rounded tiny loss is not "-0.00 %" */
    var places = (t.split(".")[1] || "").length;
    /* The server's decimals, with the locale's decimal mark (0,02 % in pt-BR). */
    return new Intl.NumberFormat(lang, { minimumFractionDigits: places, maximumFractionDigits: places }).format(Number(t)) + " %";
  }
  function setField(name, text) {
    document.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  /* --- connection badge and freshness --------------------------------------------------------------------- */
  function setConn(state) { conn = state; renderBadge(); }
  function marketAgeMs() {
    if (!market.data || market.data.age_ms === null || market.data.age_ms === undefined) return Infinity;
    return market.data.age_ms + (Date.now() - market.localAt);
  }
  function isStale() {
    if (!market.data) return true;
    return market.data.state === "stale" || marketAgeMs() > (market.data.stale_after_ms || 15000);
  }
  function renderBadge() {
    if (!badge) return;
    var shown = conn;
    if ((conn === "connected" || conn === "polling") && isStale()) shown = "stale";
    var labels = { connecting: "connecting", connected: "connected", reconnecting: "reconnecting",
                   polling: "polling fallback", stale: "stale", ended: "session ended" };
    badge.dataset.state = shown;
    badge.textContent = tx(labels[shown] || shown);
    var stale = isStale();
    if (root) root.dataset.stale = stale ? "true" : "false";
    var fresh = document.getElementById("market-freshness");
    if (fresh) {
      var s = stale ? "stale" : market.data.state;
      fresh.dataset.state = s;
      fresh.textContent = tx(s === "live" ? "live" : s === "fallback" ? "HTTP fallback" : "stale");
    }
  }

  /* --- applying state ---------------------------------------------------------------------------------------- */
  function applyMarket(data) {
    if (!data) return;
    market = { data: data, localAt: Date.now() };
    setField("market.last", fmtPrice(data.last));
    setField("market.index", fmtPrice(data.index));
    setField("market.high_24h", fmtPrice(data.high_24h));
    setField("market.low_24h", fmtPrice(data.low_24h));
    setField("market.change_24h_pct", fmtPct(data.change_24h_pct));
    var win = document.getElementById("market-window");
    if (win && data.window_start) win.textContent = tx("since") + " " + new Date(data.window_start).toLocaleString(lang);
    if (data.last && (data.exchange_time || data.received_at)) chartCall("tick", Date.parse(data.exchange_time || data.received_at) / 1000, Number(data.last));
    if (currency === "usd" && lastBalance) applyBalance(lastBalance);
    renderBadge();
  }
  /* Amounts in sats shown in the user's display currency (settings page): sats, BTC, or USD at the last price. */
  var currency = (document.body && document.body.getAttribute("data-currency")) || "sats";
  var btcFmt = new Intl.NumberFormat(lang, { minimumFractionDigits: 8, maximumFractionDigits: 8 });
  var usdFmt = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var lastBalance = null;
  function fmtSats(v) {
    if (v === null || v === undefined) return "—";
    if (currency === "btc") return btcFmt.format(v / 1e8);
    if (currency === "usd") {
      var last = market && market.data && Number(market.data.last);
      return last ? usdFmt.format(v / 1e8 * last) : fmtInt(v) + " sats";
    }
    return fmtInt(v);
  }
  function applyBalance(b) {
    if (!b) return;
    lastBalance = b;
    var unit = document.querySelector("#h-balance .unit");
    if (unit) unit.textContent = currency === "btc" ? "BTC" : currency === "usd" ? "USD" : "sats";
    setField("balance.total", fmtSats(b.total));
    setField("balance.free", fmtSats(b.free));
    setField("balance.in_margin", fmtSats(b.in_margin));
    setField("balance.unrealized_pl", fmtSats(b.unrealized_pl));
  }
  function cell(tr, label, text, cls) {
    var td = document.createElement("td");
    td.dataset.label = label;
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function applyPositions(p) {
    if (!p) return;
    setField("positions.count", fmtInt(p.count));
    setField("positions.running", fmtInt(p.running));
    var body = document.getElementById("positions-body");
    if (!body) return;
    var rows = document.createDocumentFragment();
    if (!p.items.length) {
      var tr0 = document.createElement("tr");
      var td0 = cell(tr0, "", tx("No running trades."), "empty");
      td0.colSpan = 13;
      rows.appendChild(tr0);
    }
    p.items.forEach(function (t) {
      var tr = document.createElement("tr");
      var side = cell(tr, tx("Side"), tx(t.side === "buy" ? "Long" : "Short"), "side-" + t.side + " c-side");
      if (!t.managed) { var chip = document.createElement("span"); chip.className = "chip"; chip.textContent = tx("external"); side.append(" ", chip); }
      cell(tr, tx("Quantity (USD)"), fmtInt(t.quantity), "c-qty");
      cell(tr, tx("Entry"), fmtPrice(t.entry_price));
      cell(tr, tx("Liquidation"), fmtPrice(t.liquidation), "pos-detail");
      cell(tr, tx("Stop-loss"), Number(t.stoploss) ? fmtPrice(t.stoploss) : "—", Number(t.stoploss) ? "sl" : "sl unset");
      cell(tr, tx("Take-profit"), Number(t.takeprofit) ? fmtPrice(t.takeprofit) : "—", Number(t.takeprofit) ? "tp" : "tp unset");
      cell(tr, tx("Margin (sats)"), fmtInt(t.margin), "pos-detail");
      cell(tr, tx("PnL (sats)"), fmtInt(t.pl), t.pl < 0 ? "neg" : "pos");
      cell(tr, tx("PnL %"), fmtPct(t.pl_percent));
      cell(tr, tx("Margin ratio"), fmtPct(t.margin_ratio), "pos-detail");
      cell(tr, tx("To liquidation"), fmtPct(t.distance_to_liquidation));
      var g = cell(tr, tx("Guarded by"), "", "c-guards");
      if (!t.guarded_by.length) { var none = document.createElement("span"); none.className = "hint"; none.textContent = tx("none"); g.appendChild(none); }
      (t.guards || t.guarded_by.map(function (id) { return { id: id, name: "#" + id }; })).forEach(function (guard) {
        var a = document.createElement("a");
        a.className = "chip";
        a.href = cfg.automationUrl.replace("/0/", "/" + Number(guard.id) + "/");
        a.textContent = guard.name;
        a.title = "#" + guard.id;
        g.appendChild(a);
      });
      var acts = cell(tr, "", "", "actions c-actions");
      [["close", "Close"], ["stoploss", "SL"], ["takeprofit", "TP"], ["add-margin", "+ margin"]].forEach(function (a) {
        var link = document.createElement("a");
        link.className = "act";
        link.href = cfg.tradeActionUrl.replace("/0/close/", "/" + Number(t.id) + "/" + a[0] + "/");
        link.textContent = tx(a[1]);
        acts.append(link, " ");
      });
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }
  function applyAutomations(a) {
    if (!a) return;
    setField("automations.count", fmtInt(a.count));
    setField("automations.active", fmtInt(a.active));
  }
  function auditItem(e) {
    var li = document.createElement("li");
    li.className = "audit-" + e.outcome;
    var t = document.createElement("time");
    t.dateTime = e.created_at;
    t.textContent = new Date(e.created_at).toLocaleString(lang);
    var ev = document.createElement("span"); ev.className = "chip"; ev.textContent = tx(e.event);
    var out = document.createElement("span"); out.className = "chip"; out.textContent = tx(e.outcome);
    li.append(t, " ", ev, " ", out, " ");
    if (e.automation_name) { var who = document.createElement("strong"); who.textContent = e.automation_name + ": "; li.append(who); }
    li.append(e.message);
    return li;
  }
  function applyAudit(entries) {
    var list = document.getElementById("audit-list");
    if (!list || !entries) return;
    var frag = document.createDocumentFragment();
    entries.forEach(function (e) { frag.appendChild(auditItem(e)); });
    if (!entries.length) { var li = document.createElement("li"); li.className = "empty"; li.textContent = tx("No decisions yet."); frag.appendChild(li); }
    list.replaceChildren(frag);
  }
  function applyAccount(acc, accounts) {
    var paper = document.getElementById("paper-badge");
    var label = document.getElementById("account-label");
    if (acc) {
      accountId = acc.id;
      if (paper) paper.hidden = !acc.is_paper;
      if (label) label.textContent = acc.label;
      var sel = document.getElementById("account-select");
      if (sel) sel.value = String(acc.id);
      var closeAll = document.getElementById("close-all-link");
      if (closeAll) closeAll.href = closeAll.href.replace(/\/accounts\/\d+\//, "/accounts/" + Number(acc.id) + "/");
    }
  }
  function applySnapshot(s) {
    if (!s) return;
    if (snap && snap.account && s.account && snap.account.id !== s.account.id) chartCall("load", s.account.id);
    snap = s;
    applyAccount(s.account, s.accounts);
    applyBalance(s.balance);
    applyPositions(s.positions);
    applyAutomations(s.automations);
    applyAudit(s.audit);
    applyMarket(s.market);
  }

  /* --- toasts and session end -------------------------------------------------------------------------------- */
  /* One toast per outcome, in words, newest first, at most four, each dismissable; they sit in the page above the
   * cards (never over the table) and go after 10 s. */
  var TOAST_MAX = 4, TOAST_MS = 10000;
  function toast(text, kind) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast " + (kind || "");
    var words = document.createElement("span");
    words.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", tx("Dismiss"));
    close.textContent = "×";
    close.addEventListener("click", function () { el.remove(); });
    el.append(words, close);
    box.prepend(el);
    while (box.children.length > TOAST_MAX) box.lastElementChild.remove();
    setTimeout(function () { el.remove(); }, TOAST_MS);
  }
  /* An outcome: an order's final result, an error, a trade that closed; not a decision still pending, a skip, the
   * note that an order was asked for, or its acceptance (the final "done" follows: one toast per outcome). */
  function isOutcome(e) {
    if (e.event === "decision" || e.event === "skip") return false;
    if (e.outcome === "pending" || e.outcome === "info") return false;
    return !(e.event === "order" && e.outcome === "ok");
  }
  function endSession() {
    ended = true;
    stopPolling();
    clearTimeout(reconnectTimer);
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } ws = null; }
    setConn("ended");
    var box = document.getElementById("session-ended");
    if (box) box.hidden = false;
  }

  /* --- socket ------------------------------------------------------------------------------------------------ */
  function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }
  function handle(msg) {
    if (typeof msg.seq === "number") {
      if (msg.seq !== lastSeq + 1 && msg.type !== "snapshot" && !resyncPending) {
        resyncPending = true;
        send({ type: "refresh" });
      }
      lastSeq = msg.seq;
    }
    switch (msg.type) {
      case "snapshot": resyncPending = false; applySnapshot(msg.data); break;
      case "tick":  // one frame per tick: the ticker, and the positions and balance re-marked at its price
        applyMarket(msg.data.ticker);
        if (msg.data.positions) { applyPositions(msg.data.positions); chartCall("refresh"); }
        if (msg.data.balance) applyBalance(msg.data.balance);
        break;
      case "balance": applyBalance(msg.data); break;
      case "positions": applyPositions(msg.data); chartCall("refresh"); break;
      case "automations": applyAutomations(msg.data); break;
      case "automation_log": {
        var list = document.getElementById("audit-list");
        if (list) { var empty = list.querySelector(".empty"); if (empty) empty.remove(); list.prepend(auditItem(msg.data)); }
        if (isOutcome(msg.data)) toast((msg.data.automation_name ? msg.data.automation_name + ": " : "") + msg.data.message, msg.data.outcome);
        break;
      }
      case "status":
        if (market.data) { market.data.state = msg.data.state; }
        renderBadge();
        break;
      case "error":
        if (msg.data.code === "session_ended") endSession();
        else if (msg.data.code === "sockets_paused") { socketsPaused = true; toast(msg.data.message, "info"); }
        else if (msg.data.code === "overloaded") { retryHintMs = Math.max(0, Number(msg.data.retry_after_ms) || 0); }
        else toast(msg.data.message, "error");
        break;
      default: break;
    }
  }
  function connect() {
    if (ended) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.wsPath;
    var sock = new WebSocket(url);
    ws = sock;
    lastSeq = 0;
    resyncPending = false;
    sock.onopen = function () {
      attempt = 0;
      stopPolling();
      setConn("connected");
      if (accountId !== null && snap && snap.account && snap.account.id !== accountId) send({ type: "switch_account", account_id: accountId });
    };
    sock.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      handle(msg);
    };
    sock.onclose = function (ev) {
      if (ws === sock) ws = null;
      if (ended) return;
      if (ev.code === 4401) { checkSessionThenReconnect(); return; }
      if (ev.code === 4503 || socketsPaused) {
        /* paused by an operator: poll at once; the first poll that says "open" reconnects (no blind retries) */
        socketsPaused = true;
        clearTimeout(reconnectTimer);
        setConn("polling");
        startPolling();
        return;
      }
      setConn("reconnecting");
      if (ev.code === 4429) {
        /* shed by a busy server (issue #14): no polling (that is load too); come back after its hint plus jitter */
        var hint = retryHintMs || BACKOFF_BASE_MS * 3;
        retryHintMs = 0;
        clearTimeout(reconnectTimer);
        reconnectTimer = setTimeout(connect, hint + Math.random() * hint);
        return;
      }
      startPolling();
      scheduleReconnect();
    };
  }
  function scheduleReconnect() {
    clearTimeout(reconnectTimer);
    var cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    attempt += 1;
    var delay = cap / 2 + Math.random() * cap / 2; /* exponential backoff with jitter */
    reconnectTimer = setTimeout(connect, delay);
  }
  function checkSessionThenReconnect() {
    /* 4401: anonymous or session ended. The JSON endpoint tells which without guessing. */
    fetch(withAccount(cfg.apiUrl), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (r.status === 401) endSession(); else { setConn("reconnecting"); startPolling(); scheduleReconnect(); } })
      .catch(function () { setConn("reconnecting"); startPolling(); scheduleReconnect(); });
  }

  /* --- polling fallback -------------------------------------------------------------------------------------- */
  function withAccount(url) { return accountId === null ? url : url + "?account=" + encodeURIComponent(accountId); }
  function poll() {
    fetch(withAccount(cfg.apiUrl), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { endSession(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body || ended || (ws && ws.readyState === WebSocket.OPEN)) return;
        applySnapshot(body.data);
        setConn("polling");
        socketsStatus(body.sockets);
      })
      .catch(function () { /* still down: the badge keeps saying so */ });
  }
  function socketsStatus(s) {
    /* The snapshot says whether live sockets are paused: never retry while paused, reconnect at once when open. */
    if (s === "paused") {
      socketsPaused = true;
      clearTimeout(reconnectTimer);
    } else if (s === "open" && socketsPaused) {
      socketsPaused = false;
      attempt = 0;
      clearTimeout(reconnectTimer);
      if (!ws) connect();
    }
  }
  function startPolling() {
    if (pollTimer !== null || ended) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }
  function stopPolling() { if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; } }

  /* --- account switcher -------------------------------------------------------------------------------------- */
  var sel = document.getElementById("account-select");
  if (sel) {
    sel.addEventListener("change", function () {
      var id = Number(sel.value);
      var u = new URL(location.href);
      u.searchParams.set("account", String(id));
      if (ws && ws.readyState === WebSocket.OPEN && document.getElementById("positions-body")) {
        accountId = id;
        history.replaceState(null, "", u.toString());
        send({ type: "switch_account", account_id: id });
        /* remembered for the session (positions, history, automations and a reload show this account) */
        fetch(withAccount(cfg.apiUrl), { credentials: "same-origin", headers: { Accept: "application/json" } }).catch(function () {});
      } else {
        location.assign(u.toString());
      }
    });
  }

  if (snap) applySnapshot(snap);
  setInterval(renderBadge, TICK_MS);
  if (snap && snap.account) connect(); else setConn("connected");
  window.axisorDashboard = { state: function () { return { conn: conn, lastSeq: lastSeq, polling: pollTimer !== null, stale: isStale() }; } };
})();
