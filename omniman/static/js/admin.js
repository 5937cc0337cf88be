// Omniman's additions to the unfold admin. No inline handlers in our admin
// templates (the Content-Security-Policy forbids them): a form with
// data-confirm="question" asks before it is submitted.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);
})();
