// Search, status and severity filters, and sorting by status or severity. Without this script the page is the
// full table with every row shown, and the controls stay hidden since they would do nothing.
(function () {
  "use strict";
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var statusBoxes = Array.from(document.querySelectorAll("input[data-filter]"));
  var severityBoxes = Array.from(document.querySelectorAll("input[data-severity]"));
  function values(boxes, attribute) {
    return boxes.map(function (box) { return box.getAttribute(attribute); });
  }
  // The filters list statuses most urgent first and severities worst first: the sort orders are theirs.
  var order = { status: values(statusBoxes, "data-filter"), severity: values(severityBoxes, "data-severity") };

  var total = document.querySelectorAll("tr[data-status]").length;
  var tables = Array.from(document.querySelectorAll("section[data-section]"), function (section) {
    var rows = Array.from(section.querySelectorAll("tr[data-status]"), function (row) {
      var result = row.cells[4];
      return {
        row: row,
        status: row.hasAttribute("data-suppressed") ? "suppressed" : row.getAttribute("data-status"),
        severity: row.cells[2].textContent.trim(),
        // What the search looks in: rule id, target, title and message, lower-cased once.
        text: [row.cells[1], row.cells[3], result.querySelector(".title"), result.querySelector(".message")]
          .map(function (cell) { return cell.textContent; }).join("\n").toLowerCase()
      };
    });
    return { section: section, rows: rows };
  });

  function ticked(boxes, attribute) {
    var on = {};
    boxes.forEach(function (box) { on[box.getAttribute(attribute)] = box.checked; });
    return on;
  }

  function apply() {
    var terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var statuses = ticked(statusBoxes, "data-filter");
    var severities = ticked(severityBoxes, "data-severity");
    var count = 0;
    tables.forEach(function (table) {
      var any = false;
      table.rows.forEach(function (record) {
        var show = statuses[record.status] && severities[record.severity] &&
          terms.every(function (term) { return record.text.indexOf(term) !== -1; });
        record.row.hidden = !show;
        any = any || show;
        count += show ? 1 : 0;
      });
      table.section.hidden = !any;
    });
    shown.textContent = count + " of " + total + " findings shown";
  }

  var sorted = { key: null, direction: 1 };
  function sortBy(key) {
    // A first click puts the most urgent first; a second click on the same header reverses it.
    sorted.direction = sorted.key === key ? -sorted.direction : 1;
    sorted.key = key;
    var rank = order[key];
    tables.forEach(function (table) {
      // Array sort is stable (ES2019): rows of equal rank keep the report's order.
      table.rows.slice().sort(function (a, b) {
        return (rank.indexOf(a[key]) - rank.indexOf(b[key])) * sorted.direction;
      }).forEach(function (record) { record.row.parentNode.appendChild(record.row); });
    });
    document.querySelectorAll("th[data-sort]").forEach(function (th) {
      if (th.getAttribute("data-sort") === key) {
        th.setAttribute("aria-sort", sorted.direction === 1 ? "descending" : "ascending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
  }

  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () { sortBy(th.getAttribute("data-sort")); });
  });
  search.addEventListener("input", apply);
  statusBoxes.concat(severityBoxes).forEach(function (box) { box.addEventListener("change", apply); });
  document.getElementById("controls").hidden = false;
  apply();
})();
