/* siyu console: the visual segment rule builder. Keeps a tree of groups (AND/OR, each
   negatable) and conditions (tag, trait, event), writes its JSON form (docs/segments.md) into
   the form's hidden "rule" field and asks the server for the live count (HTMX, on the
   "rule-change" event). The server checks everything; this only builds the JSON. */
(function () {
  "use strict";

  var OPS = {
    bool: ["=", "!="],
    number: ["=", "!=", ">", ">=", "<", "<=", "between", "in", "not in", "is null", "is not null"],
    date: ["=", "!=", ">", ">=", "<", "<=", "between", "is null", "is not null"],
    enum: ["=", "!=", "in", "not in", "is null", "is not null"],
    string: ["=", "!=", "in", "not in", "is null", "is not null"],
    list: ["contains", "contains any", "contains all", "is null", "is not null"]
  };
  var MEASURE_OPS = [">=", ">", "=", "<=", "<", "!="];
  var LIST_OPS = ["in", "not in", "contains any", "contains all"];
  var NULL_OPS = ["is null", "is not null"];

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function select(cls, label, options, current) {
    var node = el("select", { "class": cls, "aria-label": label });
    options.forEach(function (option) {
      var value = typeof option === "string" ? option : option.key;
      var text = typeof option === "string" ? option : option.name;
      var item = el("option", { value: value, text: text });
      if (String(value) === String(current)) { item.selected = true; }
      if (option.group) { item.setAttribute("data-group", option.group); }
      node.appendChild(item);
    });
    return node;
  }

  // Operators as the builder shows them: words in the page's language, symbols as they are.
  function opOptions(ops, labels) {
    return ops.map(function (op) {
      return { key: op, name: (labels && labels[op]) || op };
    });
  }

  function Builder(root, form, output) {
    this.root = root;
    this.form = form;
    this.output = output;
    this.catalog = JSON.parse(root.getAttribute("data-catalog") || "{}");
    this.L = JSON.parse(root.getAttribute("data-labels") || "{}");
    this.state = this.fromJson(output.value) || this.group("and");
    if (this.state.type !== "group") { var top = this.group("and"); top.items.push(this.state); this.state = top; }
  }

  Builder.prototype.group = function (op) { return { type: "group", op: op, not: false, items: [] }; };

  Builder.prototype.field = function (kind, key) {
    var list = kind === "tag" ? this.catalog.tags : this.catalog.traits;
    for (var i = 0; i < list.length; i++) { if (list[i].key === key) { return list[i]; } }
    return list[0];
  };

  Builder.prototype.condition = function (kind) {
    if (kind === "event") {
      return { type: "cond", kind: "event", event: (this.catalog.events || [])[0] || "",
        mode: "did", op: ">=", value: "1", days: "30", channel: "" };
    }
    return this.reset({ type: "cond", kind: kind }, this.field(kind));
  };

  /* A fresh condition on a field counts at once: "is true" for yes/no, else "has a value". */
  Builder.prototype.reset = function (node, info) {
    node.key = info ? info.key : "";
    node.op = info && info.type === "bool" ? "=" : "is not null";
    node.value = info && info.type === "bool" ? "true" : (info && info.values.length ? info.values[0] : "");
    node.value2 = "";
    return node;
  };

  /* -- JSON form ------------------------------------------------------------------------ */

  Builder.prototype.scalar = function (text, type) {
    var value = String(text).trim();
    if (type === "number") { return value === "" || isNaN(Number(value)) ? value : Number(value); }
    if (type === "date") { return { date: value }; }
    if (type === "bool") { return value === "true"; }
    return value;
  };

  Builder.prototype.toJson = function (node) {
    var self = this;
    if (node.type === "group") {
      var items = node.items.map(function (item) { return self.toJson(item); })
        .filter(function (item) { return item !== null; });
      var inner = null;
      if (items.length === 1) { inner = items[0]; }
      if (items.length > 1) { inner = {}; inner[node.op] = items; }
      return inner !== null && node.not ? { not: inner } : inner;
    }
    if (node.kind === "event") {
      if (!node.event) { return null; }
      var rule = {};
      var days = parseInt(node.days, 10);
      if (node.mode === "did" || node.mode === "not") { rule.did = node.mode === "did"; }
      rule.event = node.event;
      if (days > 0) { rule.window = { last_days: days }; }
      if (node.channel) { rule.where = { field: "channel", op: "=", value: node.channel }; }
      if (node.mode === "count" || node.mode === "days" || node.mode === "sum") {
        rule.measure = node.mode;
        if (node.mode === "sum") { rule.of = "amount"; }
        rule.op = node.op;
        rule.value = Number(node.value);
      }
      return rule;
    }
    var info = this.field(node.kind, node.key);
    if (!info) { return null; }
    var out = {};
    out[node.kind] = node.key;
    out.op = node.op;
    if (NULL_OPS.indexOf(node.op) >= 0) { return out; }
    var type = node.op === "contains" || LIST_OPS.indexOf(node.op) >= 0
      ? (info.type === "list" ? "string" : info.type) : info.type;
    if (node.op === "between") {
      out.value = [this.scalar(node.value, type), this.scalar(node.value2 || "", type)];
    } else if (LIST_OPS.indexOf(node.op) >= 0) {
      out.value = String(node.value).split(/[,，、]/).map(function (part) { return part.trim(); })
        .filter(function (part) { return part !== ""; })
        .map(function (part) { return self.scalar(part, type); });
    } else {
      out.value = this.scalar(node.value, type);
    }
    return out;
  };

  Builder.prototype.fromJson = function (text) {
    var value;
    try { value = JSON.parse(text); } catch (error) { return null; }
    return value && typeof value === "object" ? this.read(value) : null;
  };

  Builder.prototype.read = function (value) {
    var self = this;
    if (value.and || value.or) {
      var group = this.group(value.and ? "and" : "or");
      group.items = (value.and || value.or).map(function (item) { return self.read(item); })
        .filter(function (item) { return item !== null; });
      return group;
    }
    if (value.not) {
      var inner = this.read(value.not);
      if (!inner) { return null; }
      if (inner.type !== "group") { var wrap = this.group("and"); wrap.items.push(inner); inner = wrap; }
      inner.not = !inner.not;
      return inner;
    }
    if (value.tag || value.trait) {
      var kind = value.tag ? "tag" : "trait";
      var shown = function (v) {
        return v && typeof v === "object" && v.date ? v.date : (v === undefined || v === null ? "" : String(v));
      };
      var cond = { type: "cond", kind: kind, key: value[kind], op: value.op, value: "" };
      if (Array.isArray(value.value)) {
        if (value.op === "between") { cond.value = shown(value.value[0]); cond.value2 = shown(value.value[1]); }
        else { cond.value = value.value.map(shown).join(", "); }
      } else { cond.value = shown(value.value); }
      return cond;
    }
    if (value.event) {
      var where = value.where && value.where.field === "channel" ? value.where.value : "";
      var mode = value.did === true ? "did" : (value.did === false ? "not" : (value.measure || "count"));
      return { type: "cond", kind: "event", event: value.event, mode: mode, op: value.op || ">=",
        value: value.value === undefined ? "1" : String(value.value),
        days: value.window && value.window.last_days ? String(value.window.last_days) : "",
        channel: where || "" };
    }
    return null;
  };

  /* -- drawing -------------------------------------------------------------------------- */

  Builder.prototype.changed = function () {
    var rule = this.toJson(this.state);
    this.output.value = rule === null ? "" : JSON.stringify(rule);
    this.form.dispatchEvent(new CustomEvent("rule-change", { bubbles: true }));
  };

  Builder.prototype.draw = function () {
    this.root.replaceChildren(this.drawGroup(this.state, null));
    this.changed();
  };

  Builder.prototype.drawGroup = function (group, parent) {
    var self = this;
    var L = this.L;
    var negate = el("input", { type: "checkbox", "class": "negate" });
    negate.checked = group.not;
    negate.addEventListener("change", function () { group.not = negate.checked; self.changed(); });
    var op = select("group-op", L.operator, [{ key: "and", name: L.all }, { key: "or", name: L.any }], group.op);
    op.addEventListener("change", function () { group.op = op.value; self.changed(); });
    var head = el("div", { "class": "group-head" }, [el("label", { "class": "not" }, [negate, el("span", { text: " " + L.not })]), op]);
    if (parent) {
      head.appendChild(this.removeButton(function () {
        parent.items.splice(parent.items.indexOf(group), 1); self.draw();
      }));
    }
    var list = el("ul", { "class": "conditions" });
    group.items.forEach(function (item) {
      list.appendChild(el("li", {}, [item.type === "group" ? self.drawGroup(item, group) : self.drawCondition(item, group)]));
    });
    if (!group.items.length) { list.appendChild(el("li", { "class": "muted small", text: L.empty })); }
    var actions = el("div", { "class": "group-actions" });
    [["tag", L.add_tag], ["trait", L.add_trait], ["event", L.add_event], ["group", L.add_group]].forEach(function (pair) {
      if (pair[0] === "trait" && !(self.catalog.traits || []).length) { return; }
      if (pair[0] === "event" && !(self.catalog.events || []).length) { return; }
      var button = el("button", { type: "button", "class": "add", "data-add": pair[0], text: pair[1] });
      button.addEventListener("click", function () {
        group.items.push(pair[0] === "group" ? self.group(group.op === "and" ? "or" : "and") : self.condition(pair[0]));
        self.draw();
      });
      actions.appendChild(button);
    });
    return el("div", { "class": "group" + (group.not ? " negated" : "") }, [head, list, actions]);
  };

  Builder.prototype.removeButton = function (onClick) {
    var button = el("button", { type: "button", "class": "remove", "aria-label": this.L.remove, title: this.L.remove, text: "×" });
    button.addEventListener("click", onClick);
    return button;
  };

  Builder.prototype.input = function (node, key, attrs) {
    var self = this;
    var field = el("input", attrs);
    field.value = node[key] === undefined ? "" : node[key];
    field.addEventListener("input", function () { node[key] = field.value; self.changed(); });
    return field;
  };

  Builder.prototype.drawCondition = function (node, parent) {
    var self = this;
    var L = this.L;
    var row = el("div", { "class": "cond cond-" + node.kind });
    row.appendChild(el("span", { "class": "cond-kind", text: L[node.kind] }));
    if (node.kind === "event") {
      this.drawEvent(node, row);
    } else {
      var options = node.kind === "tag" ? this.catalog.tags : this.catalog.traits;
      var info = this.field(node.kind, node.key);
      var key = select("key", L[node.kind], options, node.key);
      key.addEventListener("change", function () {
        self.reset(node, self.field(node.kind, key.value));
        self.draw();
      });
      var op = select("op", L.operator, opOptions(OPS[info.type], L.ops), node.op);
      op.addEventListener("change", function () { node.op = op.value; self.draw(); });
      row.appendChild(key);
      row.appendChild(op);
      this.drawValue(node, info, row);
    }
    row.appendChild(this.removeButton(function () { parent.items.splice(parent.items.indexOf(node), 1); self.draw(); }));
    return row;
  };

  Builder.prototype.drawValue = function (node, info, row) {
    var self = this;
    var L = this.L;
    if (NULL_OPS.indexOf(node.op) >= 0) { return; }
    if (info.type === "bool") {
      var flag = select("value", L.value, [{ key: "true", name: L.yes }, { key: "false", name: L.no }], node.value);
      flag.addEventListener("change", function () { node.value = flag.value; self.changed(); });
      row.appendChild(flag);
      return;
    }
    if (info.values.length && (node.op === "=" || node.op === "!=")) {
      if (info.values.indexOf(node.value) < 0) { node.value = info.values[0]; }
      var choice = select("value", L.value, info.values, node.value);
      choice.addEventListener("change", function () { node.value = choice.value; self.changed(); });
      row.appendChild(choice);
      return;
    }
    var single = LIST_OPS.indexOf(node.op) < 0;
    var type = single && info.type === "date" ? "date" : (single && info.type === "number" ? "number" : "text");
    var attrs = { type: type, "class": "value", "aria-label": L.value, step: "any" };
    if (!single) { attrs.placeholder = L.values_hint; }
    row.appendChild(this.input(node, "value", attrs));
    if (node.op === "between") {
      row.appendChild(el("span", { "class": "muted", text: "–" }));
      row.appendChild(this.input(node, "value2", { type: type, "class": "value value2", "aria-label": L.value, step: "any" }));
    }
  };

  Builder.prototype.drawEvent = function (node, row) {
    var self = this;
    var L = this.L;
    var name = select("event", L.event, this.catalog.events, node.event);
    name.addEventListener("change", function () { node.event = name.value; self.changed(); });
    var mode = select("mode", L.operator, [
      { key: "did", name: L.did }, { key: "not", name: L.did_not },
      { key: "count", name: L.count }, { key: "days", name: L.days }, { key: "sum", name: L.sum }
    ], node.mode);
    mode.addEventListener("change", function () { node.mode = mode.value; self.draw(); });
    row.appendChild(mode);
    row.appendChild(name);
    if (node.mode !== "did" && node.mode !== "not") {
      var op = select("op", L.operator, opOptions(MEASURE_OPS, L.ops), node.op);
      op.addEventListener("change", function () { node.op = op.value; self.changed(); });
      row.appendChild(op);
      row.appendChild(this.input(node, "value", { type: "number", "class": "value measure", "aria-label": L.value, step: "any" }));
    }
    var days = this.input(node, "days", { type: "number", min: "1", "class": "days", "aria-label": L.window, title: L.window, placeholder: "∞" });
    row.appendChild(el("label", { "class": "window" }, [days, el("span", { text: " " + L.days_unit })]));
    var channels = [{ key: "", name: L.any_channel }].concat(this.catalog.channels || []);
    var channel = select("channel", L.channel, channels, node.channel);
    channel.addEventListener("change", function () { node.channel = channel.value; self.changed(); });
    row.appendChild(channel);
  };

  function start() {
    var root = document.getElementById("builder");
    var form = document.getElementById("segment-form");
    var output = document.getElementById("rule-json");
    if (!root || !form || !output) { return; }
    new Builder(root, form, output).draw();
  }

  /* After HTMX has bound the form (it starts on DOMContentLoaded too, and was loaded first). */
  document.addEventListener("DOMContentLoaded", start);
})();
