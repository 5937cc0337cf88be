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

  // An item was added: clear the search box, drop the results, keep the focus there.
  document.body.addEventListener("pos:added", function () {
    var box = search();
    if (!box) { return; }
    // A search for the scanned text may still be in flight: its results must not come back.
    if (window.htmx) { window.htmx.trigger(box, "htmx:abort"); }
    box.value = "";
    var results = document.getElementById("results");
    if (results) { results.innerHTML = ""; }
    box.focus();
  });

  // After the cart is swapped, give the focus back to the search box unless the
  // user is typing somewhere else (a note, a price).
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "cart" && search() && !isTyping(document.activeElement)) {
      search().focus();
    }
  });

  // A change answers with only the regions it touched (out-of-band swaps), so
  // forms that were not swapped still hold the rev they were rendered at. The
  // cart's head always holds the rev the whole screen shows: send that one.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var params = event.detail && event.detail.parameters;
    var head = document.getElementById("cart-head");
    if (!params || !head || !head.dataset.rev || !event.detail.elt.closest("#cart")) { return; }
    if (params.rev !== undefined && params.rev !== null) { params.rev = head.dataset.rev; }
  });

  // Enter in the search box adds the first result (the form is the add form).
  // A failed request is never silent.
  var banner = function () { return document.getElementById("net-error"); };
  document.body.addEventListener("htmx:sendError", function () { if (banner()) { banner().hidden = false; } });
  document.body.addEventListener("htmx:responseError", function () { if (banner()) { banner().hidden = false; } });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful && banner()) { banner().hidden = true; }
  });
})();
