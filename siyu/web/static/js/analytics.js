/* siyu console, analytics pages: draws the ECharts options the server built (data-echarts),
   after the page loads and after every HTMX swap, and adds or removes funnel step rows.
   No inline script anywhere, no request outside the server. */
(function () {
  "use strict";
  var COLORS = ["#c2410c", "#fb923c", "#0f766e", "#2563eb", "#7c3aed", "#db2777", "#65a30d", "#ca8a04", "#64748b"];

  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function draw(root) {
    if (typeof window.echarts === "undefined") { return; }
    root.querySelectorAll("[data-echarts]").forEach(function (el) {
      var existing = window.echarts.getInstanceByDom(el);
      if (existing) { existing.dispose(); }
      var option = JSON.parse(el.getAttribute("data-echarts") || "{}");
      if (!option.color) { option.color = COLORS; }
      if (still) { option.animation = false; }
      window.echarts.init(el, null, { renderer: "svg" }).setOption(option);
    });
  }

  function rows(list) { return list.querySelectorAll(".step-row"); }

  function refresh(list) {
    var all = rows(list);
    all.forEach(function (row) {
      var remove = row.querySelector("[data-step-remove]");
      if (remove) { remove.disabled = all.length <= 2; }
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var add = target.closest("[data-step-add]");
    if (add) {
      var list = document.getElementById(add.getAttribute("data-step-add"));
      var template = document.getElementById(list.id.replace(/s$/, "") + "-template");
      if (list && template && rows(list).length < 20) {
        list.appendChild(template.content.cloneNode(true));
        refresh(list);
      }
      return;
    }
    var remove = target.closest("[data-step-remove]");
    if (remove) {
      var row = remove.closest(".step-row");
      var parent = row && row.parentNode;
      if (parent && rows(parent).length > 2) {
        parent.removeChild(row);
        refresh(parent);
      }
    }
  });

  function ready() {
    draw(document);
    document.querySelectorAll(".step-list").forEach(refresh);
  }

  document.addEventListener("DOMContentLoaded", ready);
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  window.addEventListener("resize", function () {
    if (typeof window.echarts === "undefined") { return; }
    document.querySelectorAll("[data-echarts]").forEach(function (el) {
      var chart = window.echarts.getInstanceByDom(el);
      if (chart) { chart.resize(); }
    });
  });
})();
