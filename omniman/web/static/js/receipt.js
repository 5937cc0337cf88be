// The receipt page's Print button (no inline script: the CSP allows static scripts only).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) {
    event.preventDefault();
    window.print();
  }
});
