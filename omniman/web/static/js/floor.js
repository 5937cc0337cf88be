// The floor plan editor: drag a table to a cell of an area's grid; the form's inputs follow
// (the form works without this script: type the column and row, then save).
(function () {
  "use strict";
  if (!document.body.classList.contains("floor-editor")) { return; }

  function setClass(el, prefix, value) {
    el.className = el.className.split(" ").filter(function (c) { return c.indexOf(prefix) !== 0; }).join(" ") + " " + prefix + value;
  }

  function input(id, axis) { return document.getElementById("t-" + id + "-" + axis); }

  function place(spot, grid, x, y) {
    var id = spot.dataset.tableId;
    var w = Number(input(id, "w").value) || 1, h = Number(input(id, "h").value) || 1;
    var columns = Number(grid.dataset.columns), rows = Number(grid.dataset.rows);
    x = Math.max(0, Math.min(columns - w, x));
    y = Math.max(0, Math.min(rows - h, y));
    if (spot.parentNode !== grid) { grid.appendChild(spot); }
    setClass(spot, "gx-", x); setClass(spot, "gy-", y);
    input(id, "x").value = x + 1;
    input(id, "y").value = y + 1;
    var area = document.getElementById("t-" + id + "-area");
    if (area) { area.value = grid.dataset.area; }
  }

  function cellAt(grid, clientX, clientY) {
    var rect = grid.getBoundingClientRect();
    var style = getComputedStyle(grid);
    var padX = parseFloat(style.paddingLeft) || 0, padY = parseFloat(style.paddingTop) || 0;
    var columns = Number(grid.dataset.columns), rows = Number(grid.dataset.rows);
    var x = Math.floor((clientX - rect.left - padX) / ((rect.width - 2 * padX) / columns));
    var y = Math.floor((clientY - rect.top - padY) / ((rect.height - 2 * padY) / rows));
    return { x: x, y: y };
  }

  var dragging = null;

  document.addEventListener("pointerdown", function (event) {
    var spot = event.target.closest && event.target.closest(".editor-grid .spot");
    if (!spot) { return; }
    event.preventDefault();
    dragging = spot;
    spot.querySelector(".table").classList.add("dragging");
  });

  document.addEventListener("pointerup", function (event) {
    if (!dragging) { return; }
    var spot = dragging;
    dragging = null;
    spot.querySelector(".table").classList.remove("dragging");
    var under = document.elementsFromPoint(event.clientX, event.clientY);
    var grid = null;
    for (var i = 0; i < under.length; i++) {
      if (under[i].classList && under[i].classList.contains("editor-grid")) { grid = under[i]; break; }
    }
    grid = grid || spot.parentNode;
    var cell = cellAt(grid, event.clientX, event.clientY);
    place(spot, grid, cell.x, cell.y);
  });

  // Typed numbers move the table on the grid too.
  document.addEventListener("change", function (event) {
    var axis = event.target.dataset && event.target.dataset.axis;
    if (!axis) { return; }
    var row = event.target.closest("tr");
    var id = row && row.dataset.tableId;
    var spot = document.querySelector('.editor-grid .spot[data-table-id="' + id + '"]');
    var value = Number(event.target.value);
    if (!spot || !(value >= 0)) { return; }
    if (axis === "x" || axis === "y") { setClass(spot, "g" + axis + "-", Math.max(0, value - 1)); }
    else { setClass(spot, "g" + axis + "-", Math.max(1, value)); }
  });
})();
