// Show only the findings whose status box is ticked.
(function () {
  var boxes = document.querySelectorAll("input[data-filter]");
  function apply() {
    var shown = {};
    boxes.forEach(function (box) { shown[box.getAttribute("data-filter")] = box.checked; });
    document.querySelectorAll("tr[data-status]").forEach(function (row) {
      var key = row.hasAttribute("data-suppressed") ? "suppressed" : row.getAttribute("data-status");
      row.hidden = !shown[key];
    });
    document.querySelectorAll("section[data-section]").forEach(function (section) {
      section.hidden = section.querySelector("tr[data-status]:not([hidden])") === null;
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  apply();
})();
