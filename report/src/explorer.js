// strata report: searchable, sortable area tables and each parent's areas on one chart, drawn
// from the JSON the page carries (no network). Plain JavaScript, no library.
(function () {
  "use strict";
  var node = document.getElementById("strata-data");
  if (!node) return;
  var data = JSON.parse(node.textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var PAGE = 50;

  function esc(t) {
    return String(t).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  // Whole numbers with thousands separators; one decimal place where asked; [x] when missing.
  function fmt(x, dp) {
    if (x === null || x === undefined) return "[x]";
    return x.toLocaleString("en-GB", { minimumFractionDigits: dp || 0, maximumFractionDigits: dp || 0 });
  }
  function poissonText(f) {
    if (f === null) return "[x]";
    return ["below (99.8%)", "below (95%)", "within", "above (95%)", "above (99.8%)"][f + 2];
  }
  function adjustedText(f) {
    if (f === null || f === undefined) return "[x]";
    if (f === 0) return "within";
    return (f > 0 ? "high (" : "low (") + data.adjustedLevels[Math.abs(f) - 1] + ")";
  }
  var hasParents = data.parents.length > 0;
  var hasAdjusted = data.adjustedLevels.length > 0;
  // Row: [area, observed, expected, standardised rate, lower 95%, upper 95%, Poisson flag, adjusted flag].
  var columns = [
    { head: data.kind + " code", value: function (r) { return data.areas[r[0]][0]; } },
    { head: data.kind + " name", value: function (r) { return data.areas[r[0]][1]; } }
  ];
  if (hasParents) {
    columns.push({ head: "Parent", value: function (r) {
      var p = data.areas[r[0]][2];
      return p < 0 ? "" : data.parents[p][0] + " " + data.parents[p][1];
    } });
  }
  columns.push(
    { head: "Observed", num: true, value: function (r) { return r[1]; }, text: function (v) { return fmt(v); } },
    { head: "Expected", num: true, value: function (r) { return r[2]; }, text: function (v) { return fmt(v, 1); } },
    { head: "Standardised rate per " + data.ratePer, num: true, value: function (r) { return r[3]; }, text: function (v) { return fmt(v); } },
    { head: "95% lower", num: true, value: function (r) { return r[4]; }, text: function (v) { return fmt(v); } },
    { head: "95% upper", num: true, value: function (r) { return r[5]; }, text: function (v) { return fmt(v); } },
    { head: "Poisson limits", num: true, value: function (r) { return r[6]; }, text: poissonText }
  );
  if (hasAdjusted) {
    columns.push({ head: "Overdispersion-adjusted", num: true, value: function (r) { return r[7]; }, text: adjustedText });
  }

  function compare(col, dir) {
    return function (a, b) {
      var x = col.value(a), y = col.value(b);
      // Missing values last whichever the direction.
      if (x === null || x === undefined) return (y === null || y === undefined) ? a[0] - b[0] : 1;
      if (y === null || y === undefined) return -1;
      var c = col.num ? x - y : String(x).localeCompare(String(y));
      return c === 0 ? a[0] - b[0] : c * dir;
    };
  }

  function build(box) {
    var measure = data.measures[+box.getAttribute("data-measure")];
    var state = { query: "", parent: -1, sort: hasParents ? 2 : 0, dir: 1, limit: PAGE };
    var controls = document.createElement("div");
    controls.className = "controls";
    var search = document.createElement("input");
    search.type = "search";
    search.placeholder = "Search by " + data.kind + " code or name";
    search.setAttribute("aria-label", "Search the " + measure.label + " table");
    controls.appendChild(search);
    var select = null, chart = null;
    if (hasParents) {
      select = document.createElement("select");
      select.setAttribute("aria-label", "Parent to chart");
      var counts = {};
      measure.rows.forEach(function (r) { var p = data.areas[r[0]][2]; counts[p] = (counts[p] || 0) + 1; });
      var options = "<option value=\"-1\">All parents</option>";
      data.parents.forEach(function (p, i) {
        options += "<option value=\"" + i + "\">" + esc(p[0] + " " + p[1]) + " (" + (counts[i] || 0) + ")</option>";
      });
      select.innerHTML = options;
      state.parent = 0;
      select.value = "0";
      controls.appendChild(select);
      chart = document.createElement("figure");
      chart.className = "parent-chart";
    }
    box.appendChild(controls);
    if (chart) box.appendChild(chart);
    var table = document.createElement("table");
    table.className = "explorer-table";
    var head = "<thead><tr>";
    columns.forEach(function (c, i) { head += "<th scope=\"col\" data-col=\"" + i + "\" tabindex=\"0\">" + esc(c.head) + "</th>"; });
    table.innerHTML = head + "</tr></thead><tbody></tbody>";
    box.appendChild(table);
    var status = document.createElement("p");
    status.className = "status";
    var more = document.createElement("button");
    more.type = "button";
    more.textContent = "Show " + PAGE + " more";
    box.appendChild(status);
    box.appendChild(more);

    function matching() {
      var q = state.query.toLowerCase();
      return measure.rows.filter(function (r) {
        var a = data.areas[r[0]];
        if (state.parent >= 0 && a[2] !== state.parent) return false;
        return !q || a[0].toLowerCase().indexOf(q) >= 0 || a[1].toLowerCase().indexOf(q) >= 0;
      });
    }
    function render() {
      var rows = matching().sort(compare(columns[state.sort], state.dir));
      var html = "";
      rows.slice(0, state.limit).forEach(function (r) {
        html += "<tr>";
        columns.forEach(function (c) {
          var v = c.value(r);
          html += "<td>" + esc(c.text ? c.text(v) : v) + "</td>";
        });
        html += "</tr>";
      });
      table.tBodies[0].innerHTML = html;
      var shown = Math.min(state.limit, rows.length);
      status.textContent = "Showing " + shown + " of " + rows.length + " " + data.kind + "s" +
        (rows.length < measure.rows.length ? " (" + measure.rows.length + " in all)" : "") + ".";
      more.style.display = shown < rows.length ? "" : "none";
      table.querySelectorAll("th").forEach(function (th, i) {
        th.setAttribute("aria-sort", i === state.sort ? (state.dir > 0 ? "ascending" : "descending") : "none");
      });
      if (chart) drawParent(chart, measure, state.parent);
    }
    search.addEventListener("input", function () { state.query = search.value; state.limit = PAGE; render(); });
    if (select) select.addEventListener("change", function () { state.parent = +select.value; state.limit = PAGE; render(); });
    more.addEventListener("click", function () { state.limit += PAGE; render(); });
    function sortBy(th) {
      var i = +th.getAttribute("data-col");
      state.dir = state.sort === i ? -state.dir : 1;
      state.sort = i;
      render();
    }
    table.querySelectorAll("th").forEach(function (th) {
      th.addEventListener("click", function () { sortBy(th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(th); });
    });
    render();
  }

  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // One parent's areas ranked by standardised rate, with 95% whiskers and the national rate.
  function drawParent(figure, measure, parent) {
    figure.innerHTML = "";
    if (parent < 0) {
      figure.innerHTML = "<figcaption>Choose a parent to chart its " + esc(data.kind) + "s.</figcaption>";
      return;
    }
    var rows = measure.rows.filter(function (r) { return data.areas[r[0]][2] === parent && r[3] !== null; });
    rows.sort(function (a, b) { return a[3] - b[3] || a[0] - b[0]; });
    var p = data.parents[parent];
    var caption = document.createElement("figcaption");
    caption.textContent = "Standardised " + measure.label + " rates of the " + data.kind + "s of " + p[0] + " " + p[1];
    figure.appendChild(caption);
    if (!rows.length) { figure.appendChild(document.createTextNode("No rates to chart.")); return; }
    var n = rows.length, left = 70, bottom = 70, top = 20, h = 300;
    var w = Math.max(640, left + 20 + 16 * n);
    var ymax = measure.national || 0;
    rows.forEach(function (r) { ymax = Math.max(ymax, r[3], r[5] === null ? 0 : r[5]); });
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    var y = function (v) { return top + h - h * v / ymax; };
    var step = (w - left - 20) / n;
    var svg = el("svg", { width: w, height: top + h + bottom, viewBox: "0 0 " + w + " " + (top + h + bottom), "class": "parent-svg", "font-family": "sans-serif", "font-size": "10" });
    for (var t = 0; t <= 4; t++) {
      var v = ymax / 1.1 * t / 4, yy = y(v);
      svg.appendChild(el("line", { x1: left, x2: w - 20, y1: yy, y2: yy, stroke: "#e8edee" }));
      svg.appendChild(el("text", { x: left - 6, y: yy + 3, "text-anchor": "end" }, fmt(v)));
    }
    rows.forEach(function (r, i) {
      var a = data.areas[r[0]], x = left + i * step;
      var bar = el("rect", { x: x + 2, y: y(r[3]), width: Math.max(step - 4, 1), height: y(0) - y(r[3]), fill: "#005eb8" });
      var ci = r[4] === null ? "" : " (95% CI " + fmt(r[4]) + " to " + fmt(r[5]) + ")";
      bar.appendChild(el("title", {}, a[0] + " " + a[1] + ": " + fmt(r[3]) + ci));
      svg.appendChild(bar);
      if (r[4] !== null && r[5] !== null) {
        svg.appendChild(el("line", { x1: x + step / 2, x2: x + step / 2, y1: y(r[4]), y2: y(r[5]), stroke: "#212b32" }));
      }
      var lx = x + step / 2 - 3, ly = y(0) + 6;
      svg.appendChild(el("text", { x: lx, y: ly, transform: "rotate(90, " + lx + ", " + ly + ")" }, a[0]));
    });
    if (measure.national !== null) {
      var ny = y(measure.national);
      svg.appendChild(el("line", { x1: left, x2: w - 20, y1: ny, y2: ny, stroke: "#d5281b", "stroke-width": 2 }));
      svg.appendChild(el("text", { x: w - 22, y: ny - 4, "text-anchor": "end", fill: "#d5281b" }, "National rate (" + fmt(measure.national) + ")"));
    }
    svg.appendChild(el("text", { x: 14, y: top + h / 2, transform: "rotate(-90, 14, " + (top + h / 2) + ")", "text-anchor": "middle", "font-size": "12" }, "Standardised rate per " + data.ratePer));
    figure.appendChild(svg);
  }

  // Static tables (Annex A): sort by a header's column on click.
  function sortable(table) {
    table.querySelectorAll("thead th").forEach(function (th, i) {
      th.tabindex = 0;
      var dir = 1;
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var key = function (row) {
          var t = row.cells[i] ? row.cells[i].textContent : "";
          var n = parseFloat(t.replace(/,/g, "").replace(/%$/, ""));
          return isNaN(n) ? t : n;
        };
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (typeof x === "number" && typeof y === "number") return (x - y) * dir;
          return String(x).localeCompare(String(y)) * dir;
        });
        rows.forEach(function (r) { body.appendChild(r); });
        dir = -dir;
      });
    });
  }

  document.querySelectorAll(".explorer").forEach(build);
  document.querySelectorAll("table.sortable").forEach(sortable);
})();
