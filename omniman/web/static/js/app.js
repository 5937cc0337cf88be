// Omniman operator app: keyboard and focus behaviour, network-error banner.
// No inline scripts anywhere (the Content-Security-Policy forbids them).
(function () {
  "use strict";

  function search() { return document.getElementById("pos-search"); }

  function isTyping(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
  }

  // "/" focuses the product search (a barcode scanner then types into it).
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && !isTyping(event.target) && search()) {
      event.preventDefault();
      search().focus();
      search().select();
    }
  });

  // An item was added from the search results: clear the search box, drop the
  // results, keep the focus there. Only if the box still holds the text that
  // was searched: a grid tile leaves it alone, and a scanner may already be
  // typing the next code (Enter empties the box itself, below).
  document.body.addEventListener("pos:added", function (event) {
    var box = search();
    if (!box) { return; }
    var added = event.detail && event.detail.q;
    if (!added || box.value !== added) { return; }
    // A search for the scanned text may still be in flight: its results must not come back.
    if (window.htmx) { window.htmx.trigger(box, "htmx:abort"); }
    box.value = "";
    var results = document.getElementById("results");
    if (results) { results.innerHTML = ""; }
    box.focus();
  });

  // The options step (a product's forced choices): it closes once the product
  // is added, on Cancel and on Escape; it opens with the focus on its first choice.
  function closePicker() {
    var picker = document.getElementById("picker");
    if (!picker || !picker.firstElementChild) { return false; }
    picker.innerHTML = "";
    if (search()) { search().focus(); }
    return true;
  }
  document.body.addEventListener("pos:added", closePicker);
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("[data-close-picker]");
    if (cancel && closePicker()) { event.preventDefault(); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && closePicker()) { event.preventDefault(); }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    var picker = document.getElementById("picker");
    if (!target || target.id !== "picker" || !picker) { return; }
    var first = picker.querySelector("input[type=radio]:checked, input:not([type=hidden])");
    if (first) { first.focus(); }
  });

  // After the cart is swapped, give the focus back to the search box unless the
  // user is typing somewhere else (a note, a price) — or added from a tile with the
  // keyboard: the focus stays on that tile, so the next tile and Send are a Tab away
  // (issue #17, 6). A tile tapped with a finger or a mouse gives the focus back to the
  // search box, where a barcode scanner types.
  var usingKeyboard = false;
  document.addEventListener("pointerdown", function () { usingKeyboard = false; }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Tab" || event.key === "Enter" || event.key === " ") { usingKeyboard = true; }
  }, true);
  function keepsFocus() {
    var active = document.activeElement;
    if (isTyping(active)) { return true; }
    return usingKeyboard && !!(active && active.closest && active.closest("#grid .product, #results .result"));
  }
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "cart" && search() && !keepsFocus()) {
      search().focus();
    }
  });

  // An added line is shown: the cart scrolls to it and it flashes (issue #17, 3).
  var followNewLine = false;
  document.body.addEventListener("pos:added", function () { followNewLine = true; });
  document.body.addEventListener("htmx:afterSettle", function () {
    if (!followNewLine) { return; }
    followNewLine = false;
    var all = document.querySelectorAll("#lines > li.line");
    var last = all.length ? all[all.length - 1] : null;
    if (!last) { return; }
    last.scrollIntoView({ block: "nearest" });
    last.classList.remove("just-added");
    void last.offsetWidth;  // restart the animation
    last.classList.add("just-added");
  });

  // A change answers with only the regions it touched (out-of-band swaps), so
  // forms that were not swapped (and the add form, outside the cart) still hold
  // the rev they were rendered at. The cart's head always holds the rev the
  // whole screen shows: every session form sends that one. Changes wait for
  // each other (hx-sync queue), so this is read when the request really leaves.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var params = event.detail && event.detail.parameters;
    var head = document.getElementById("cart-head");
    if (!params || !head || !head.dataset.rev) { return; }
    if (params.rev !== undefined && params.rev !== null) { params.rev = head.dataset.rev; }
  });

  // Quick changes (Enter in the search box, a tile, a search result, a line's
  // "+" or "−") are sent from the add form: it is in the page's one queue
  // (hx-sync) and no answer ever replaces it, so htmx never drops a queued one.
  // Each carries its values as they were at the tap; queued behind the change
  // before, it leaves with the rev that change made. Target and swap come from
  // the form when the request leaves (the cart may be swapped meanwhile).
  // Returns false when it cannot (no JavaScript helper yet): the browser then
  // submits the form as it would without JavaScript.
  function sendFromAddForm(url, values) {
    var form = document.getElementById("add-form");
    if (!form || !window.htmx) { return false; }
    window.htmx.ajax("POST", url || form.getAttribute("hx-post"), { source: form, values: values });
    return true;
  }

  // The options step's "Add" is sent from the add form too (the step closes
  // when the product is added, and htmx drops the answer of a request whose
  // form has left the page). Its radios and checkboxes go as lists.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("picker-form") || !window.FormData) { return; }
    var values = {};
    new FormData(form).forEach(function (value, key) {
      if (key === "csrfmiddlewaretoken" || key === "rev") { return; }
      (values[key] = values[key] || []).push(value);
    });
    if (sendFromAddForm(form.getAttribute("action"), values)) { event.preventDefault(); }
  });

  // Enter in the search box adds the first match of what was typed or scanned.
  // The box is emptied at once and its text sent: a scanner can type the next
  // code while this one is on its way.
  document.addEventListener("keydown", function (event) {
    var box = search();
    if (event.key !== "Enter" || event.target !== box) { return; }
    var query = box.value.trim();
    if (!query) { return; }  // the form's own submit answers "pick a product"
    if (!sendFromAddForm(null, { q: query })) { return; }
    event.preventDefault();
    window.htmx.trigger(box, "htmx:abort");
    box.value = "";
    var results = document.getElementById("results");
    if (results) { results.innerHTML = ""; }
  });

  // A tile, a search result, a line's "+" or "−": each tap is its own request.
  // Without JavaScript the button submits its form.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-send]");
    if (!button) { return; }
    var values = {};
    values[button.name] = button.value;
    if (button.dataset.query !== undefined) { values.q = button.dataset.query; }  // what the results answered
    if (sendFromAddForm(button.dataset.send, values)) { event.preventDefault(); }
  });

  // Answers carry the rev they show (X-Omniman-Rev). One older than the screen's
  // (a follow-up check that raced a newer change) is dropped: the screen only
  // moves forward, and the newer change asked for its own checks.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail && event.detail.xhr;
    var head = document.getElementById("cart-head");
    var rev = xhr && xhr.getResponseHeader("X-Omniman-Rev");
    if (rev && head && head.dataset.rev && Number(rev) < Number(head.dataset.rev)) {
      event.detail.shouldSwap = false;
    }
  });

  // The bill's cash tender: the change due, shown as the cashier types what the customer handed over.
  // (Only a preview: the change recorded is the server's, shown after the payment.)
  function changePreview() {
    var input = document.getElementById("tendered");
    var out = document.getElementById("change-preview");
    var form = document.getElementById("tender-form");
    if (!input || !out || !form) { return; }
    var places = Number(form.dataset.places || 2);
    var text = input.value.trim().replace(/\s/g, "").replace(",", ".");
    if (!text || !/^\d+(\.\d*)?$/.test(text)) { out.textContent = "—"; out.classList.remove("short"); return; }
    var tendered = Math.round(Number(text) * Math.pow(10, places));
    var change = tendered - Number(form.dataset.charge || 0);
    var format = new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "currency", currency: form.dataset.currency || "BRL", minimumFractionDigits: places, maximumFractionDigits: places,
    });
    out.textContent = format.format(Math.abs(change) / Math.pow(10, places));
    if (change < 0) { out.textContent = "− " + out.textContent; }
    out.classList.toggle("short", change < 0);
  }
  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "tendered") { changePreview(); }
  });

  // Without JavaScript, Enter in the search box submits the add form (its "q").
  // A failed request is never silent.
  var banner = function () { return document.getElementById("net-error"); };
  document.body.addEventListener("htmx:sendError", function () { if (banner()) { banner().hidden = false; } });
  document.body.addEventListener("htmx:responseError", function () { if (banner()) { banner().hidden = false; } });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful && banner()) { banner().hidden = true; }
  });

  // The 86 list (and products out of stock): the POS polls it; its tiles follow within a poll.
  function applySoldOut() {
    var list = document.getElementById("sold-out");
    if (!list) { return; }
    var skus = (list.dataset.skus || "").split(" ").filter(Boolean);
    document.querySelectorAll(".grid .product[data-sku]").forEach(function (tile) {
      var out = skus.indexOf(tile.dataset.sku) >= 0;
      tile.disabled = out;
      if (out) { tile.setAttribute("aria-disabled", "true"); } else { tile.removeAttribute("aria-disabled"); }
      var tag = tile.querySelector(".sold-out-tag");
      if (tag) { tag.hidden = !out; }
    });
  }
  document.body.addEventListener("htmx:afterSwap", applySoldOut);
})();
