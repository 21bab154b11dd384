/* Automation forms: show only the fields of the chosen trigger and action, and keep "What it will do" current.
 * The server renders the same form without this script (hidden fields carry the `hidden` attribute, and a
 * "Show the fields for this choice" button re-renders it); each field's data-when is "selector=v1,v2;other=v3",
 * a fieldset's is such conditions joined by "|" (shown when any holds). */
(function () {
  "use strict";
  var form = document.querySelector("form.automation-form");
  if (!form) { return; }

  function valueOf(name) {
    var el = form.elements.namedItem(name);
    if (!el) { return ""; }
    if (el instanceof RadioNodeList) { return el.value; }
    return el.value;
  }

  function holds(condition) {
    if (!condition) { return true; }
    return condition.split(";").every(function (part) {
      var eq = part.indexOf("=");
      var name = part.slice(0, eq);
      var values = part.slice(eq + 1).split(",");
      return values.indexOf(valueOf(name)) !== -1;
    });
  }

  function update() {
    form.querySelectorAll(".field[data-when]").forEach(function (field) {
      field.hidden = !holds(field.getAttribute("data-when"));
    });
    form.querySelectorAll("fieldset[data-when]").forEach(function (set) {
      var when = set.getAttribute("data-when");
      set.hidden = when ? !when.split("|").some(holds) : false;
    });
  }

  var timer = null;
  var url = form.getAttribute("data-describe-url");
  var box = document.getElementById("automation-summary");
  function describe() {
    if (!url || !box) { return; }
    var body = new FormData(form);
    fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () { /* the last summary stays */ });
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(describe, 400);
  }

  form.querySelectorAll(".refresh-fields").forEach(function (b) { b.hidden = true; });
  /* An error shown by the last submit goes away once its field is edited (the next submit checks again). */
  form.addEventListener("input", function (event) {
    var field = event.target.closest && event.target.closest(".field.has-error");
    if (!field) { return; }
    field.classList.remove("has-error");
    field.querySelectorAll(".error").forEach(function (e) { e.remove(); });
  });
  form.addEventListener("change", function () { update(); later(); });
  form.addEventListener("input", later);
  update();
})();
