/* siyu console: draws the ECharts charts described by data-* attributes, after the page
   loads and after every HTMX swap. No inline script anywhere, no request outside the server. */
(function () {
  "use strict";
  var COLORS = ["#c2410c", "#fb923c", "#0f766e", "#2563eb", "#7c3aed", "#db2777", "#65a30d", "#ca8a04", "#64748b"];

  function option(kind, rows) {
    var names = rows.map(function (r) { return r.name; });
    if (kind === "bar") {
      return {
        color: COLORS, grid: { left: 48, right: 16, top: 16, bottom: 32 }, tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: names, axisLabel: { interval: 0, hideOverlap: true } },
        yAxis: { type: "value" },
        series: [{ type: "bar", data: rows.map(function (r) { return r.value; }), barMaxWidth: 40 }]
      };
    }
    if (kind === "pyramid") {
      return {
        color: COLORS, tooltip: { trigger: "item", formatter: "{b}: {c}" },
        series: [{
          type: "funnel", sort: "none", left: "10%", width: "80%", top: 8, bottom: 8, minSize: "20%",
          label: { show: true, position: "inside", formatter: "{b} {c}" },
          data: rows.map(function (r) { return { name: r.name, value: r.value }; })
        }]
      };
    }
    return {
      color: COLORS, tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
      legend: { type: "scroll", bottom: 0 },
      series: [{ type: "pie", radius: ["40%", "68%"], top: 0, bottom: 24,
        data: rows.map(function (r) { return { name: r.name, value: r.value }; }) }]
    };
  }

  function draw(root) {
    if (typeof window.echarts === "undefined") { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var existing = window.echarts.getInstanceByDom(el);
      if (existing) { existing.dispose(); }
      var rows = JSON.parse(el.getAttribute("data-series") || "[]");
      window.echarts.init(el, null, { renderer: "svg" }).setOption(option(el.getAttribute("data-chart"), rows));
    });
  }

  /* A preset period and a custom one exclude each other: choosing one clears the other
     (capture phase, so it happens before HTMX sends the form). */
  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = input && input.form;
    if (!form || !form.classList.contains("filters")) { return; }
    if (input.name === "days") {
      form.querySelectorAll("input[type=date]").forEach(function (d) { d.value = ""; });
    } else if (input.type === "date") {
      form.querySelectorAll("input[name=days]").forEach(function (r) { r.checked = false; });
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  window.addEventListener("resize", function () {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) { chart.resize(); }
    });
  });
})();
