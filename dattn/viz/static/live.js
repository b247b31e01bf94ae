// dattn's live widgets, drawn in the browser from numbers that Python computed once (dattn/viz/live_data.py,
// dattn/viz/live_panels.py). One renderer for two hosts: anywidget in JupyterLab calls render({model, el});
// the offline HTML book (.ci/book.py) calls mountStatic(el) on a page that embeds this file and the data.
// Nothing here calls the kernel to redraw, and nothing is fetched from the network.
//
// kind "explorer": one query's attention over every group's sampled keys; the keys are the same for every
// query, only their weights change. kind "panel": points and arrows on an image, one frame per setting.

const STYLE = `
.dattn-live { font: 13px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #fff;
  border: 1px solid #d0d0d0; border-radius: 6px; padding: 8px 10px; max-width: 940px; box-sizing: border-box; }
.dattn-live:focus { outline: 3px solid #0072B2; outline-offset: 1px; }
.dattn-live .dattn-title { font-weight: 600; font-size: 14px; }
.dattn-live .dattn-label { color: #444; }
.dattn-live .dattn-row { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; margin: 6px 0; }
.dattn-live .dattn-group { display: inline-flex; flex-wrap: wrap; gap: 3px; align-items: center; }
.dattn-live .dattn-group > span { color: #555; margin-right: 3px; }
.dattn-live button { font: inherit; font-size: 12px; padding: 2px 7px; border: 1px solid #888; background: #f3f3f3;
  color: #222; border-radius: 4px; cursor: pointer; }
.dattn-live button[aria-pressed="true"] { background: #0072B2; border-color: #0072B2; color: #fff; }
.dattn-live button:focus-visible { outline: 2px solid #D55E00; }
.dattn-live .dattn-body { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.dattn-live .dattn-side { flex: 1 1 330px; min-width: 300px; }
.dattn-live .dattn-read { margin: 4px 0; }
.dattn-live .dattn-strong { font-weight: 600; }
.dattn-live .dattn-note { color: #333; font-size: 12px; margin: 4px 0; }
.dattn-live .dattn-help { color: #555; font-size: 12px; margin-top: 6px; }
.dattn-live .dattn-legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: #333; }
.dattn-live .dattn-sw { display: inline-block; width: 10px; height: 10px; border: 1px solid #000; margin-right: 4px;
  vertical-align: -1px; }
.dattn-live canvas { display: block; touch-action: none; }
.dattn-live canvas.dattn-pick { cursor: crosshair; }
.dattn-live input[type=range] { width: 180px; vertical-align: middle; }
.dattn-live .dattn-pre { white-space: pre-line; }
`;

// ---------------------------------------------------------------------------------------------------------
// Decoding and small helpers
// ---------------------------------------------------------------------------------------------------------
function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
const f32 = (b64) => { const b = bytesOf(b64); return new Float32Array(b.buffer, 0, b.length >> 2); };
const u16 = (b64) => { const b = bytesOf(b64); return new Uint16Array(b.buffer, 0, b.length >> 1); };
const WEIGHT_STEPS = 65535; // live_data.WEIGHT_STEPS

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function present(...items) { return items.filter((c) => c != null); }

function addStyle(root) {
  const doc = root.ownerDocument || document;
  if (!doc.getElementById("dattn-live-style")) {
    const s = doc.createElement("style");
    s.id = "dattn-live-style";
    s.textContent = STYLE;
    doc.head.appendChild(s);
  }
}

function fmt(v, d = 1) { return Number(v).toFixed(d); }

function colorOf(pal, t) {
  const c = pal.cmap;
  return c[Math.max(0, Math.min(c.length - 1, Math.round(t * (c.length - 1))))];
}

function buttonGroup(label, items, onPick) {
  // items: [{value, text, title}]; returns {el, set(value)}
  const g = h("div", { class: "dattn-group", role: "group", "aria-label": label }, h("span", { text: label }));
  const buttons = items.map((it) => {
    const b = h("button", { type: "button", "aria-pressed": "false", "data-value": String(it.value),
      title: it.title || `${label} ${it.text}`, text: it.text });
    b.addEventListener("click", () => onPick(it.value));
    g.append(b);
    return b;
  });
  return { el: g, set(value) { for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.value === String(value))); } };
}

// A canvas showing the image-pixel box [y0, y1] x [x0, x1], `width` CSS pixels wide, sharp on any screen.
class Viewport {
  constructor(canvas, bounds, width) {
    const [y0, x0, y1, x1] = bounds;
    Object.assign(this, { canvas, y0, x0, y1, x1 });
    this.s = width / (x1 - x0);
    this.w = width;
    this.h = Math.round((y1 - y0) * this.s);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(this.w * dpr);
    canvas.height = Math.round(this.h * dpr);
    canvas.style.width = `${this.w}px`;
    canvas.style.height = `${this.h}px`;
    this.ctx = canvas.getContext("2d");
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  X(x) { return (x - this.x0) * this.s; }
  Y(y) { return (y - this.y0) * this.s; }
  // CSS pixels of a pointer event -> image pixels (y, x)
  fromEvent(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [this.y0 + (ev.clientY - r.top) * (this.h / r.height) / this.s,
            this.x0 + (ev.clientX - r.left) * (this.w / r.width) / this.s];
  }
  clear() { this.ctx.fillStyle = "#fff"; this.ctx.fillRect(0, 0, this.w, this.h); }
  image(img, imageHw, alpha = 1) {
    if (!img.complete || !img.naturalWidth) return;
    const c = this.ctx;
    c.save();
    c.globalAlpha = alpha;
    c.imageSmoothingEnabled = Math.max(...imageHw) > 64; // small scenes: one block per pixel
    c.drawImage(img, this.X(-0.5), this.Y(-0.5), imageHw[1] * this.s, imageHw[0] * this.s);
    c.restore();
  }
  dashedBox([y0, x0, y1, x1], color = "#3A3A3A") {
    const c = this.ctx;
    c.save();
    c.setLineDash([5, 4]);
    c.strokeStyle = color;
    c.lineWidth = 1.2;
    c.strokeRect(this.X(x0), this.Y(y0), (x1 - x0) * this.s, (y1 - y0) * this.s);
    c.restore();
  }
}

function markerPath(c, shape, x, y, r) {
  c.beginPath();
  if (shape === "o") c.arc(x, y, r, 0, 2 * Math.PI);
  else if (shape === "s") c.rect(x - r * 0.85, y - r * 0.85, 1.7 * r, 1.7 * r);
  else if (shape === "D") { c.moveTo(x, y - r * 1.15); c.lineTo(x + r, y); c.lineTo(x, y + r * 1.15); c.lineTo(x - r, y); }
  else if (shape === "^") { c.moveTo(x, y - r * 1.2); c.lineTo(x + r * 1.1, y + r * 0.8); c.lineTo(x - r * 1.1, y + r * 0.8); }
  else if (shape === "v") { c.moveTo(x, y + r * 1.2); c.lineTo(x + r * 1.1, y - r * 0.8); c.lineTo(x - r * 1.1, y - r * 0.8); }
  else if (shape === "*") {
    for (let i = 0; i < 10; i++) {
      const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.45 : r;
      c[i ? "lineTo" : "moveTo"](x + rr * Math.cos(a), y + rr * Math.sin(a));
    }
  } else if (shape === "+") { c.moveTo(x - r, y); c.lineTo(x + r, y); c.moveTo(x, y - r); c.lineTo(x, y + r); return; }
  c.closePath();
}

function marker(c, shape, x, y, r, fill, edge = "#000", lw = 1, halo = 0) {
  if (halo) { markerPath(c, shape, x, y, r + halo); c.fillStyle = "#fff"; c.fill(); }
  markerPath(c, shape, x, y, r);
  if (fill) { c.fillStyle = fill; c.fill(); }
  if (edge) { c.strokeStyle = edge; c.lineWidth = lw; c.stroke(); }
}

function ring(c, x, y, r, color) {
  c.beginPath(); c.arc(x, y, r, 0, 2 * Math.PI); c.strokeStyle = color; c.lineWidth = 1.8; c.stroke();
}

function arrow(c, x0, y0, x1, y1, color) {
  const dx = x1 - x0, dy = y1 - y0, n = Math.hypot(dx, dy);
  if (n < 0.5) return;
  c.strokeStyle = color; c.fillStyle = color; c.lineWidth = 1.6;
  c.beginPath(); c.moveTo(x0, y0); c.lineTo(x1, y1); c.stroke();
  const ux = dx / n, uy = dy / n, L = Math.min(7, n * 0.5);
  c.beginPath(); c.moveTo(x1, y1);
  c.lineTo(x1 - L * ux - L * 0.45 * uy, y1 - L * uy + L * 0.45 * ux);
  c.lineTo(x1 - L * ux + L * 0.45 * uy, y1 - L * uy - L * 0.45 * ux);
  c.closePath(); c.fill();
}

function label(c, text, x, y) {
  c.font = "11px system-ui, sans-serif";
  const w = c.measureText(text).width;
  c.fillStyle = "rgba(255,255,255,0.88)";
  c.fillRect(x - 2, y - 10, w + 4, 13);
  c.fillStyle = "#000";
  c.fillText(text, x, y);
}

function loadImage(src, onload) {
  if (!src) return null;
  const img = new Image();
  img.onload = onload;
  img.src = src;
  return img;
}

function swatch(color, text, round = false) {
  return h("span", {}, h("span", { class: "dattn-sw", style: `background:${color};${round ? "border-radius:50%" : ""}` }), text);
}

// ---------------------------------------------------------------------------------------------------------
// The explorer
// ---------------------------------------------------------------------------------------------------------
class Explorer {
  constructor(root, data, host, selection) {
    this.d = data;
    this.host = host;
    this.pal = data.palette;
    this.queries = f32(data.queries); // (HW, 2) image px
    this.cache = new Map();
    this.images = data.inputs.map((inp) => loadImage(inp.image, () => this.draw()));
    this.outlines = data.inputs.map((inp) => (inp.mask ? this.outline(bytesOf(inp.mask)) : null));
    const H = data.H, W = data.W, q = this.queries;
    this.cell = [H > 1 ? q[2 * W] - q[0] : 1, W > 1 ? q[3] - q[1] : 1];
    const init = { input: 0, option: 0, query: [Math.floor(H / 2), Math.floor(W / 2)], head: 0, key: null };
    this.s = { ...init, ...(data.initial || {}), ...(selection || {}) };
    this.hoverKey = null;
    this.sent = [];
    this.build(root);
    this.draw();
    root.dattnLive = this; // for tests and the benchmark
  }

  view(input = this.s.input, option = this.s.option) {
    const k = `${input}|${option}`;
    if (!this.cache.has(k)) {
      const v = this.d.views[input][option];
      this.cache.set(k, { Hk: v.Hk, Wk: v.Wk, Ns: v.Hk * v.Wk, ref: f32(v.reference), pos: f32(v.positions),
        posMap: f32(v.positions_map), attn: u16(v.attn), outside: v.outside.map((o) => new Set(o)),
        dependence: v.dependence });
    }
    return this.cache.get(k);
  }

  groupOf(head) { return Math.floor(head / (this.d.n_heads / this.d.n_groups)); }

  weights(v) {
    const { H, W } = this.d, [qy, qx] = this.s.query, Ns = v.Ns;
    const off = (this.s.head * H * W + qy * W + qx) * Ns, w = new Float32Array(Ns);
    for (let i = 0; i < Ns; i++) w[i] = v.attn[off + i] / WEIGHT_STEPS;
    return w;
  }

  outline(mask) {
    // segments (image px) between pixels inside and outside the objects
    const [hh, ww] = this.d.image_hw, segs = [];
    const at = (i, j) => (i >= 0 && j >= 0 && i < hh && j < ww ? mask[i * ww + j] : 0);
    for (let i = 0; i <= hh; i++) for (let j = 0; j <= ww; j++) {
      if (at(i, j) !== at(i, j - 1)) segs.push([i - 0.5, j - 0.5, i + 0.5, j - 0.5]);
      if (at(i, j) !== at(i - 1, j)) segs.push([i - 0.5, j - 0.5, i - 0.5, j + 0.5]);
    }
    return segs;
  }

  build(root) {
    const d = this.d;
    root.classList.add("dattn-live");
    root.setAttribute("tabindex", "0");
    root.setAttribute("role", "application");
    root.setAttribute("data-lm-suppress-shortcuts", "true");
    root.setAttribute("aria-label", `${d.title}. Arrow keys move the query; [ and ] step the highlighted key.`);
    this.root = root;
    const controls = h("div", { class: "dattn-row" });
    this.groups = {};
    if (d.inputs.length > 1) {
      this.groups.input = buttonGroup(d.input_label || "input", d.inputs.map((inp, i) => ({ value: i, text: String(i), title: inp.name })),
        (v) => this.set({ input: v }));
      controls.append(this.groups.input.el);
    }
    if (d.options.length > 1) {
      this.groups.option = buttonGroup(d.option_name, d.options.map((o, i) => ({ value: i, text: o })), (v) => this.set({ option: v }));
      controls.append(this.groups.option.el);
    }
    const perGroup = d.n_heads / d.n_groups;
    this.groups.head = buttonGroup("head", Array.from({ length: d.n_heads }, (_, i) => ({ value: i, text: String(i),
      title: `head ${i} (group ${this.groupOf(i)})` })), (v) => this.set({ head: v }));
    controls.append(this.groups.head.el);
    if (d.n_groups > 1) {
      this.groups.group = buttonGroup("group", Array.from({ length: d.n_groups }, (_, g) => ({ value: g, text: String(g),
        title: `group ${g}: heads ${g * perGroup}-${(g + 1) * perGroup - 1}` })), (g) => this.set({ head: g * perGroup }));
      controls.append(this.groups.group.el);
    }
    this.keysCanvas = h("canvas", { class: "dattn-pick dattn-keys", "aria-hidden": "true" });
    this.barsCanvas = h("canvas", { class: "dattn-bars", "aria-hidden": "true" });
    this.vp = new Viewport(this.keysCanvas, d.bounds, 430);
    this.bars = { canvas: this.barsCanvas, w: 360, h: 150 };
    const dpr = window.devicePixelRatio || 1;
    Object.assign(this.barsCanvas, { width: 360 * dpr, height: 150 * dpr });
    Object.assign(this.barsCanvas.style, { width: "360px", height: "150px" });
    this.barsCanvas.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
    const pal = this.pal;
    const legend = h("div", { class: "dattn-legend" }, swatch(pal.query, "query (star)"), swatch(pal.reference, "reference points", true),
      ...Array.from({ length: d.n_groups }, (_, g) => swatch(pal.groups[g % pal.groups.length], `keys of group ${g}`)),
      swatch(pal.offset, "offsets"), h("span", {}, h("span", { class: "dattn-sw", style: `border:2px solid ${pal.outside};border-radius:50%;background:none` }), "off the map"));
    this.read = {
      query: h("div", { class: "dattn-read dattn-strong" }), head: h("div", { class: "dattn-read" }),
      top: h("div", { class: "dattn-read" }), key: h("div", { class: "dattn-read" }),
      dep: h("div", { class: "dattn-note" }), off: h("div", { class: "dattn-note" }),
    };
    const readouts = h("div", { class: "dattn-readouts", "aria-live": "polite" }, ...Object.values(this.read));
    const side = h("div", { class: "dattn-side" }, this.barsCanvas, readouts);
    root.replaceChildren(...present(
      h("div", { class: "dattn-title", text: d.title }), h("div", { class: "dattn-label", text: d.label }),
      d.note ? h("div", { class: "dattn-note", text: d.note }) : null, controls,
      h("div", { class: "dattn-body" }, h("div", { style: "width:430px" }, this.keysCanvas, legend), side),
      h("div", { class: "dattn-help", text: "Point at the image (or click it, then use the arrow keys) to pick the query. " +
        "The keys stay where they are for every query: only their weights (size and colour) change. Hover a bar, or " +
        "press [ and ], to highlight one key index in every group; Esc goes back to the heaviest key." })));
    this.listen();
  }

  listen() {
    const kc = this.keysCanvas, bc = this.barsCanvas;
    const pick = (ev) => {
      const [y, x] = this.vp.fromEvent(ev);
      const q = this.nearestQuery(y, x);
      if (q[0] !== this.s.query[0] || q[1] !== this.s.query[1]) this.set({ query: q });
    };
    kc.addEventListener("pointermove", pick);
    kc.addEventListener("pointerdown", (ev) => { this.root.focus({ preventScroll: true }); pick(ev); });
    bc.addEventListener("pointermove", (ev) => {
      const k = this.barAt(ev);
      if (k !== this.hoverKey) { this.hoverKey = k; this.draw(); }
    });
    bc.addEventListener("pointerleave", () => { if (this.hoverKey !== null) { this.hoverKey = null; this.draw(); } });
    bc.addEventListener("pointerdown", (ev) => { const k = this.barAt(ev); if (k !== null) this.set({ key: k }); });
    this.root.addEventListener("keydown", (ev) => this.onKey(ev));
    if (this.host) this.unlisten = this.host.on((sel) => this.external(sel));
  }

  onKey(ev) {
    const [y, x] = this.s.query, { H, W } = this.d;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[ev.key]) {
      const [dy, dx] = moves[ev.key];
      this.set({ query: [Math.max(0, Math.min(H - 1, y + dy)), Math.max(0, Math.min(W - 1, x + dx))] });
    } else if (ev.key === "[" || ev.key === "]") {
      const Ns = this.view().Ns, k = this.s.key ?? this.heaviest;
      this.set({ key: (k + (ev.key === "]" ? 1 : Ns - 1)) % Ns });
    } else if (ev.key === "Escape") {
      this.set({ key: null });
    } else return;
    ev.preventDefault();
    ev.stopPropagation();
  }

  nearestQuery(y, x) {
    const q = this.queries, n = q.length / 2;
    let best = 0, bd = Infinity;
    for (let i = 0; i < n; i++) {
      const d = (q[2 * i] - y) ** 2 + (q[2 * i + 1] - x) ** 2;
      if (d < bd) { bd = d; best = i; }
    }
    return [Math.floor(best / this.d.W), best % this.d.W];
  }

  // CSS pixels (relative to the keys canvas) of query (y, x): for tests and the benchmark
  queryCss(y, x) {
    const i = y * this.d.W + x;
    return [this.vp.X(this.queries[2 * i + 1]), this.vp.Y(this.queries[2 * i])];
  }

  barAt(ev) {
    const r = this.barsCanvas.getBoundingClientRect(), B = this.barGeom();
    const x = ev.clientX - r.left;
    if (x < B.left || x > B.left + B.pw) return null;
    return Math.min(B.Ns - 1, Math.floor((x - B.left) / B.bw));
  }

  barGeom() {
    const Ns = this.view().Ns, left = 44, right = 8, pw = this.bars.w - left - right;
    return { Ns, left, pw, top: 10, ph: this.bars.h - 10 - 34, bw: pw / Ns };
  }

  set(change) {
    const s = this.s;
    if ("head" in change && change.head !== s.head && this.groupOf(change.head) !== this.groupOf(s.head)) change.key ??= null;
    if (("input" in change && change.input !== s.input) || ("option" in change && change.option !== s.option)) change.key ??= null;
    Object.assign(s, change);
    this.draw();
    this.sync();
  }

  sync() {
    if (!this.host) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const sel = { input: this.s.input, option: this.s.option, query: this.s.query, head: this.s.head, key: this.s.key };
      this.sent.push(JSON.stringify(sel));
      if (this.sent.length > 30) this.sent.shift();
      this.host.set(sel);
    }, 250);
  }

  external(sel) {
    if (!sel || this.sent.includes(JSON.stringify(sel))) return; // our own change coming back
    const { H, W, n_heads } = this.d, ok = (v, n) => Number.isInteger(v) && v >= 0 && v < n;
    const s = { ...this.s, ...sel };
    if (!ok(s.input, this.d.inputs.length) || !ok(s.option, this.d.options.length) || !ok(s.head, n_heads) ||
        !Array.isArray(s.query) || !ok(s.query[0], H) || !ok(s.query[1], W)) return;
    this.s = s;
    this.draw();
  }

  draw() {
    const t0 = performance.now();
    const d = this.d, v = this.view(), s = this.s, pal = this.pal, vp = this.vp, c = vp.ctx;
    const g = this.groupOf(s.head), Ns = v.Ns, G = d.n_groups;
    const w = this.weights(v);
    let heaviest = 0;
    for (let i = 1; i < Ns; i++) if (w[i] > w[heaviest]) heaviest = i;
    this.heaviest = heaviest;
    const wmax = Math.max(w[heaviest], 1e-12);
    const key = this.hoverKey ?? s.key ?? heaviest;
    const P = (gg, i) => [v.pos[2 * (gg * Ns + i)], v.pos[2 * (gg * Ns + i) + 1]]; // (y, x) image px

    vp.clear();
    if (this.images[s.input]) vp.image(this.images[s.input], d.image_hw, 0.8);
    const segs = this.outlines[s.input];
    if (segs) for (const [lw, col] of [[3, "#000"], [1.3, "#fff"]]) {
      c.beginPath();
      for (const [y0, x0, y1, x1] of segs) { c.moveTo(vp.X(x0), vp.Y(y0)); c.lineTo(vp.X(x1), vp.Y(y1)); }
      c.strokeStyle = col; c.lineWidth = lw; c.stroke();
    }
    vp.dashedBox(d.map_edge);
    // the query's cell
    const [qy, qx] = s.query, qi = qy * d.W + qx, qyi = this.queries[2 * qi], qxi = this.queries[2 * qi + 1];
    c.strokeStyle = pal.query; c.lineWidth = 1.5;
    c.strokeRect(vp.X(qxi - this.cell[1] / 2), vp.Y(qyi - this.cell[0] / 2), this.cell[1] * vp.s, this.cell[0] * vp.s);
    // reference points and the offsets of the head's group
    for (let i = 0; i < Ns; i++) marker(c, "o", vp.X(v.ref[2 * i + 1]), vp.Y(v.ref[2 * i]), 2.6, pal.reference, "#000", 0.6);
    for (let i = 0; i < Ns; i++) {
      const [y, x] = P(g, i);
      arrow(c, vp.X(v.ref[2 * i + 1]), vp.Y(v.ref[2 * i]), vp.X(x), vp.Y(y), pal.offset);
    }
    // the keys of the other groups, faint: the same for every query, and read by every head's keys (proj_k)
    c.save();
    c.globalAlpha = 0.55;
    for (let gg = 0; gg < G; gg++) {
      if (gg === g) continue;
      const col = pal.groups[gg % pal.groups.length], shape = pal.markers[gg % pal.markers.length];
      for (let i = 0; i < Ns; i++) { const [y, x] = P(gg, i); marker(c, shape, vp.X(x), vp.Y(y), 3.6, col, "#000", 0.8, 1.5); }
    }
    c.restore();
    // the head's group: the same keys, sized and coloured by this query's weights (lightest first)
    const order = Array.from({ length: Ns }, (_, i) => i).sort((a, b) => w[a] - w[b]);
    const shape = pal.markers[g % pal.markers.length];
    for (const i of order) {
      const [y, x] = P(g, i), t = w[i] / wmax;
      marker(c, shape, vp.X(x), vp.Y(y), 3 + 9 * Math.sqrt(t), colorOf(pal, t), "#000", 0.9, 1.6);
    }
    // keys off the map
    for (let gg = 0; gg < G; gg++) for (const i of v.outside[gg]) { const [y, x] = P(gg, i); ring(c, vp.X(x), vp.Y(y), gg === g ? 14 : 8, pal.outside); }
    // the highlighted key index: one position per group, joined
    const pts = Array.from({ length: G }, (_, gg) => P(gg, key));
    if (G > 1) for (const [lw, col] of [[4, "#000"], [2, "#fff"]]) {
      c.beginPath();
      pts.forEach(([y, x], j) => c[j ? "lineTo" : "moveTo"](vp.X(x), vp.Y(y)));
      c.strokeStyle = col; c.lineWidth = lw; c.setLineDash(col === "#fff" ? [5, 3] : []); c.stroke(); c.setLineDash([]);
    }
    for (const [lw, col] of [[4, "#fff"], [2, "#000"]]) for (const [y, x] of pts) {
      c.lineWidth = lw; c.strokeStyle = col; c.beginPath(); c.arc(vp.X(x), vp.Y(y), 11, 0, 2 * Math.PI); c.stroke();
    }
    // the query
    marker(c, "*", vp.X(qxi), vp.Y(qyi), 10, pal.query, "#fff", 1.3);
    // the three largest weights, written beside their keys
    for (const i of order.slice(-3)) { const [y, x] = P(g, i); label(c, fmt(w[i], 3), vp.X(x) + 9, vp.Y(y) - 7); }
    this.drawBars(w, wmax, key, g);
    this.readouts(v, w, key, g, order);
    for (const [name, grp] of Object.entries(this.groups)) grp.set(name === "group" ? g : s[name]);
    Object.assign(this.root.dataset, { query: `${qy},${qx}`, head: String(s.head), group: String(g), key: String(key),
      input: String(s.input), option: String(s.option) });
    this.lastDrawMs = performance.now() - t0;
  }

  drawBars(w, wmax, key, g) {
    const B = this.barGeom(), c = this.barsCanvas.getContext("2d"), pal = this.pal;
    c.fillStyle = "#fff"; c.fillRect(0, 0, this.bars.w, this.bars.h);
    let top = wmax <= 0 ? 1 : 10 ** Math.floor(Math.log10(wmax));
    top = Math.ceil((wmax / top) * 2) / 2 * top;
    c.strokeStyle = "#999"; c.lineWidth = 1; c.fillStyle = "#333"; c.font = "11px system-ui, sans-serif";
    for (const f of [0, 0.5, 1]) {
      const y = B.top + B.ph * (1 - f);
      c.beginPath(); c.moveTo(B.left - 3, y); c.lineTo(B.left + B.pw, y); c.stroke();
      c.textAlign = "right"; c.fillText(fmt(top * f, top < 0.1 ? 3 : 2), B.left - 5, y + 4);
    }
    for (let i = 0; i < B.Ns; i++) {
      const hgt = (w[i] / top) * B.ph;
      c.fillStyle = colorOf(pal, w[i] / wmax);
      c.fillRect(B.left + i * B.bw + (B.bw > 3 ? 0.5 : 0), B.top + B.ph - hgt, Math.max(B.bw - (B.bw > 3 ? 1 : 0), 0.6), hgt);
    }
    const kx = B.left + (key + 0.5) * B.bw;
    c.strokeStyle = "#000"; c.lineWidth = 1.5;
    c.strokeRect(B.left + key * B.bw, B.top, Math.max(B.bw, 2), B.ph);
    marker(c, "v", kx, B.top + B.ph + 6, 4, "#000", null);
    c.textAlign = "center"; c.fillStyle = "#222";
    c.fillText(`key index 0-${B.Ns - 1} of group ${g} (row-major over the key grid)`, B.left + B.pw / 2, this.bars.h - 6);
    c.save(); c.translate(10, B.top + B.ph / 2); c.rotate(-Math.PI / 2); c.fillText("weight", 0, 0); c.restore();
    c.textAlign = "left";
  }

  readouts(v, w, key, g, order) {
    const d = this.d, s = this.s, Ns = v.Ns, perGroup = d.n_heads / d.n_groups;
    const [qy, qx] = s.query, qi = qy * d.W + qx;
    const at = (gg, i) => `(${fmt(v.pos[2 * (gg * Ns + i)])}, ${fmt(v.pos[2 * (gg * Ns + i) + 1])})`;
    const where = d.inputs.length > 1 ? `${d.inputs[s.input].name}, ` : "";
    const opt = d.options.length > 1 ? `, ${d.option_name} ${d.options[s.option]}` : "";
    this.read.query.textContent = `Query (y ${qy}, x ${qx}) of the ${d.H}x${d.W} map, at image pixel ` +
      `(${fmt(this.queries[2 * qi])}, ${fmt(this.queries[2 * qi + 1])}); ${where}head ${s.head} of ${d.n_heads}${opt}`;
    const heads = perGroup > 1 ? `heads ${g * perGroup}-${(g + 1) * perGroup - 1} share them` : "one head per group";
    this.read.head.textContent = `Head ${s.head} weighs the ${Ns} keys (${v.Hk}x${v.Wk}) of group ${g} (${heads}). ` +
      `The offset network read the whole map once: these keys are the same for every query; moving the query ` +
      `changes only their weights.`;
    const top = order.slice(-3).reverse(), rest = 1 - top.reduce((a, i) => a + w[i], 0);
    this.read.top.textContent = `Largest weights: ` + top.map((i) => `key ${i} at ${at(g, i)}: ${fmt(w[i], 3)}`).join("; ") +
      (Ns > 3 ? `; the other ${Ns - 3} keys: ${fmt(Math.max(rest, 0), 3)} together.` : ".");
    const mode = this.hoverKey !== null ? "pointed at" : s.key !== null ? "chosen" : "the heaviest";
    const reads = Array.from({ length: d.n_groups }, (_, gg) => `group ${gg} reads ${at(gg, key)}`).join(", ");
    this.read.key.textContent = d.n_groups > 1
      ? `Key ${key} (${mode}, weight ${fmt(w[key], 3)}): ${reads}, joined by the line. proj_k is a 1x1 conv over all ` +
        `channels, so key ${key} of every head mixes what all ${d.n_groups} groups read there.`
      : `Key ${key} (${mode}, weight ${fmt(w[key], 3)}): ${reads}.`;
    const dep = v.dependence[s.head];
    this.read.dep.textContent = `In this model, head ${s.head}: for ${Math.round(100 * dep.share)}% of the ${d.H * d.W} queries ` +
      `key ${dep.key} is the heaviest; median largest weight ${fmt(dep.median_max, 2)}.` +
      (dep.share >= 0.9 ? " Moving the query changes these weights little: that is what this model does, not a drawing fault." : "");
    const n_out = v.outside.reduce((a, o) => a + o.size, 0);
    this.read.off.textContent = n_out ? `${n_out} of ${Ns * d.n_groups} keys lie off the map (ringed): their reads are partly zero padding, wholly from 1 px out.` : "";
  }

  destroy() { clearTimeout(this.timer); if (this.unlisten) this.unlisten(); }
}

// ---------------------------------------------------------------------------------------------------------
// Panels: points and arrows on an image, one frame per setting (reference grid, offsets)
// ---------------------------------------------------------------------------------------------------------
class Panel {
  constructor(root, data, host, selection) {
    this.d = data;
    this.host = host;
    this.pal = data.palette;
    this.arrays = Object.fromEntries(Object.entries(data.arrays).map(([k, a]) => [k, { p: f32(a.data), n: a.n, rings: new Set(a.rings) }]));
    this.image = loadImage(data.image, () => this.draw());
    this.s = { ...data.initial, ...(selection || {}) };
    this.sent = [];
    this.build(root);
    this.draw();
    root.dattnLive = this;
  }

  build(root) {
    const d = this.d;
    root.classList.add("dattn-live");
    root.setAttribute("tabindex", "0");
    root.setAttribute("data-lm-suppress-shortcuts", "true");
    root.setAttribute("aria-label", d.label);
    this.root = root;
    const row = h("div", { class: "dattn-row" });
    this.controls = {};
    for (const ctl of d.controls) {
      if (ctl.values.length > 8) {
        const out = h("span", { class: "dattn-strong" });
        const input = h("input", { type: "range", min: "0", max: String(ctl.values.length - 1), step: "1", "aria-label": ctl.label });
        input.addEventListener("input", () => this.set({ [ctl.name]: ctl.values[Number(input.value)] }));
        row.append(h("label", { class: "dattn-group" }, h("span", { text: ctl.label }), input, out));
        this.controls[ctl.name] = { set: (v) => { input.value = String(ctl.values.indexOf(v)); out.textContent = String(v); } };
      } else {
        const grp = buttonGroup(ctl.label, ctl.values.map((v) => ({ value: v, text: String(v) })), (v) => this.set({ [ctl.name]: v }));
        row.append(grp.el);
        this.controls[ctl.name] = grp;
      }
    }
    this.canvas = h("canvas", { "aria-hidden": "true" });
    this.vp = new Viewport(this.canvas, d.bounds, 430);
    this.title = h("div", { class: "dattn-read dattn-strong dattn-pre", "aria-live": "polite" });
    this.hover = h("div", { class: "dattn-note" });
    const pal = this.pal, styles = new Set(Object.values(d.frames)[0].layers.map((l) => l.style));
    const names = { grid: [pal.grid, "query pixels"], reference: [pal.reference, "reference points"],
      sampling: [pal.sampling, "sampling points"], offsets: [pal.offset, "offsets"] };
    const legend = h("div", { class: "dattn-legend" }, ...[...styles].map((st) => swatch(...names[st], st === "reference")),
      h("span", {}, h("span", { class: "dattn-sw", style: `border:2px solid ${pal.outside};border-radius:50%;background:none` }), "off the map (reads zero padding, in part within 1 px)"));
    root.replaceChildren(h("div", { class: "dattn-label", text: d.label }), row, this.title,
      h("div", { class: "dattn-body" }, h("div", { style: "width:430px" }, this.canvas, legend)), this.hover);
    this.canvas.addEventListener("pointermove", (ev) => this.point(ev));
    if (this.host) this.unlisten = this.host.on((sel) => this.external(sel));
  }

  frameKey(s = this.s) { return this.d.controls.map((c) => String(s[c.name])).join("|"); }

  set(change) {
    Object.assign(this.s, change);
    this.draw();
    if (!this.host) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { const sel = { ...this.s }; this.sent.push(JSON.stringify(sel)); this.host.set(sel); }, 250);
  }

  external(sel) {
    if (!sel || this.sent.includes(JSON.stringify(sel))) return;
    const s = { ...this.s, ...sel };
    if (!(this.frameKey(s) in this.d.frames)) return;
    this.s = s;
    this.draw();
  }

  toImage(y, x) { const t = this.d.to_image; return [t[0] + t[1] * y, t[2] + t[3] * x]; }

  layerPoints(layer) {
    const a = this.arrays[layer.points], start = layer.start || 0, n = layer.count ?? a.n;
    return { a, start, n };
  }

  draw() {
    const t0 = performance.now();
    const d = this.d, vp = this.vp, c = vp.ctx, pal = this.pal, frame = d.frames[this.frameKey()];
    if (!frame) return;
    vp.clear();
    if (this.image) vp.image(this.image, d.image_hw, 0.75);
    const [H, W] = d.map_hw;
    if (d.cells) {
      c.strokeStyle = "rgba(58,58,58,0.45)"; c.lineWidth = 0.6; c.beginPath();
      for (let i = 0; i <= H; i++) { const [y] = this.toImage(i - 0.5, 0); const [, xa] = this.toImage(0, -0.5), [, xb] = this.toImage(0, W - 0.5);
        c.moveTo(vp.X(xa), vp.Y(y)); c.lineTo(vp.X(xb), vp.Y(y)); }
      for (let j = 0; j <= W; j++) { const [, x] = this.toImage(0, j - 0.5); const [ya] = this.toImage(-0.5, 0), [yb] = this.toImage(H - 0.5, 0);
        c.moveTo(vp.X(x), vp.Y(ya)); c.lineTo(vp.X(x), vp.Y(yb)); }
      c.stroke();
    }
    vp.dashedBox(d.map_edge);
    this.drawn = [];
    for (const layer of frame.layers) {
      const { a, start, n } = this.layerPoints(layer);
      if (layer.style === "offsets") { // from reference point k (one per key) to sampling point start + k
        const b = this.arrays[layer.to];
        for (let k = 0; k < n; k++) {
          const [y0, x0] = this.toImage(a.p[2 * k], a.p[2 * k + 1]);
          const [y1, x1] = this.toImage(b.p[2 * (start + k)], b.p[2 * (start + k) + 1]);
          arrow(c, vp.X(x0), vp.Y(y0), vp.X(x1), vp.Y(y1), pal.offset);
        }
        continue;
      }
      const many = n > 150;
      for (let k = 0; k < n; k++) {
        const i = start + k, [y, x] = this.toImage(a.p[2 * i], a.p[2 * i + 1]), X = vp.X(x), Y = vp.Y(y);
        if (layer.style === "grid") { marker(c, "+", X, Y, many ? 2.2 : 4, null, pal.grid, 1); continue; }
        if (layer.style === "reference") marker(c, "o", X, Y, many ? 2.4 : 4, pal.reference, "#000", 0.7);
        else marker(c, "D", X, Y, many ? 2.6 : 4, pal.sampling, "#000", 0.7);
        this.drawn.push([X, Y, layer.style, a.p[2 * i], a.p[2 * i + 1]]);
        if (a.rings.has(i)) ring(c, X, Y, 8, pal.outside);
      }
    }
    this.title.textContent = frame.title;
    for (const [name, ctl] of Object.entries(this.controls)) ctl.set(this.s[name]);
    Object.assign(this.root.dataset, { frame: this.frameKey() });
    this.lastDrawMs = performance.now() - t0;
  }

  point(ev) {
    const r = this.canvas.getBoundingClientRect(), X = ev.clientX - r.left, Y = ev.clientY - r.top;
    let best = null, bd = 144;
    for (const p of this.drawn || []) { const dd = (p[0] - X) ** 2 + (p[1] - Y) ** 2; if (dd < bd) { bd = dd; best = p; } }
    this.hover.textContent = best ? `${best[2]} point at (y ${fmt(best[3], 2)}, x ${fmt(best[4], 2)}) map pixels` : "";
  }

  destroy() { clearTimeout(this.timer); if (this.unlisten) this.unlisten(); }
}

// ---------------------------------------------------------------------------------------------------------
// The two hosts
// ---------------------------------------------------------------------------------------------------------
function mount(el, data, host, selection) {
  addStyle(el);
  const root = document.createElement("div");
  el.replaceChildren(root);
  const view = data.kind === "explorer" ? new Explorer(root, data, host, selection) : new Panel(root, data, host, selection);
  return () => view.destroy();
}

// JupyterLab (anywidget): the data and the selection are synced traits of the widget's model
function render({ model, el }) {
  const host = {
    set(sel) { model.set("selection", sel); model.save_changes(); },
    on(cb) { const f = () => cb(model.get("selection")); model.on("change:selection", f); return () => model.off("change:selection", f); },
  };
  return mount(el, model.get("data"), host, model.get("selection"));
}

// The offline book: <div class="dattn-live-host" data-payload="ID"> with <script type="application/json" id="ID">
function mountStatic(el) {
  const payload = JSON.parse(document.getElementById(el.dataset.payload).textContent);
  return mount(el, payload.data, null, payload.selection);
}

export default { render };
