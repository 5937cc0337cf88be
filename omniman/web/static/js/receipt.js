// The receipt page: the Print button, and a printed page as long as the receipt.
// (No inline script or style: the CSP allows static files only; CSSOM rules are fine.)
(() => {
  const MM_PER_PX = 25.4 / 96;
  let fitted = null; // the index of the @page rule this script added

  function fitPageToReceipt() {
    const receipt = document.querySelector(".receipt");
    const sheet = [...document.styleSheets].find((s) => (s.href || "").includes("/css/receipt-"));
    if (!receipt || !sheet) return;
    const width = getComputedStyle(document.documentElement).getPropertyValue("--paper").trim() || "80mm";
    const height = Math.ceil(receipt.getBoundingClientRect().height * MM_PER_PX) + 10;
    try {
      if (fitted !== null && sheet.cssRules[fitted] && sheet.cssRules[fitted].type === CSSRule.PAGE_RULE) sheet.deleteRule(fitted);
      fitted = sheet.insertRule(`@page { size: ${width} ${height}mm; margin: 2mm 0; }`, sheet.cssRules.length);
    } catch (error) {
      // A stylesheet we may not touch: the CSS's own page size stays.
    }
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-print]")) {
      event.preventDefault();
      fitPageToReceipt();
      window.print();
    }
  });
  window.addEventListener("beforeprint", fitPageToReceipt);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fitPageToReceipt);
  else fitPageToReceipt();
})();
