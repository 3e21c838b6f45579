// The console's pages. Every call carries the session token (from the URL's #fragment,
// kept in sessionStorage); every value shown comes from the wallet's own endpoints.
"use strict";
(function () {
  const TOKEN_KEY = "datasafe-token";
  if (location.hash.length > 1) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(location.hash.slice(1)));
    history.replaceState(null, "", location.pathname);
  }
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  // The printed URL pasted into a tab already showing the console: start again with it.
  window.addEventListener("hashchange", () => location.reload());
  const $ = (sel, root) => (root || document).querySelector(sel);

  class ApiError extends Error {
    constructor(code, message) { super(message); this.code = code; }
  }

  async function api(method, path, body) {
    const init = { method, headers: { "X-DataSafe-Token": token }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let reply;
    try {
      reply = await fetch(path, init);
    } catch (e) {
      throw new ApiError("console_unreachable", "the console is not answering (was `datasafe ui` stopped?)");
    }
    const type = reply.headers.get("content-type") || "";
    if (!type.startsWith("application/json")) {
      if (!reply.ok) throw new ApiError("http_" + reply.status, `HTTP ${reply.status}`);
      return reply.text();
    }
    const out = await reply.json();
    if (out.error) throw new ApiError(out.error.code, out.error.message);
    return out.data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function table(columns, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((v) => el("td", {}, v))))));
  }

  const emptyNote = (words) => el("p", { class: "empty" }, words);
  const short = (v) => (typeof v === "string" && v.startsWith("0x") && v.length > 14 ? v.slice(0, 8) + "…" + v.slice(-4) : v);
  const mono = (v) => el("code", { title: v }, short(v));
  const when = (ts) => (ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "-");

  // The CLI's line; its code appended when the words do not carry it already.
  const errWords = (e) => (e.code && !String(e.message).includes(`(${e.code})`) ? `${e.message} (${e.code})` : String(e.message || e));

  function say(section, err) {
    const box = $(".error", section);
    if (!box) return;
    if (!err) { box.hidden = true; box.textContent = ""; return; }
    box.textContent = errWords(err);
    box.hidden = false;
  }

  async function busy(button, work) {
    if (button) button.disabled = true;
    try { return await work(); } finally { if (button) button.disabled = false; }
  }

  // ---- navigation -----------------------------------------------------------------------
  const loaders = {};
  function show(page) {
    for (const b of document.querySelectorAll("nav button")) {
      if (b.dataset.page === page) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
    }
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "page-" + page;
    const section = $("#page-" + page);
    if (loaders[page]) loaders[page](section);
  }
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.page));

  // ---- my safe --------------------------------------------------------------------------
  loaders.safe = async (section) => {
    const list = $("#safe-list");
    say(section, null);
    list.setAttribute("aria-busy", "true");
    try {
      const assets = await api("GET", "/api/safe");
      list.replaceChildren(...(assets.length ? assets.map(assetCard) : [emptyNote("Your safe is empty: no department has issued a record to you yet.")]));
    } catch (e) { list.replaceChildren(); say(section, e); }
    list.setAttribute("aria-busy", "false");
  };

  function assetCard(a) {
    const o = a.opened;
    const head = el("h3", {}, `${a.type} (version ${a.version}, ${a.status})`);
    const meta = el("p", { class: "hint" }, "issued by ", a.issuer_name, " · asset ", mono(a.asset_id));
    if (!o) {
      const why = a.open_error ? errWords(a.open_error) : "not opened";
      return el("article", { class: "card" }, head, meta, el("p", { class: "error" }, "Could not open: " + why));
    }
    const onChain = o.verified_against === "chain";
    const proof = onChain ? el("span", { class: "proven" }, "✓ proven against the chain")
                          : el("span", { class: "unproven" }, "not checked on chain (the service's anchor only)");
    const rows = Object.entries(o.fields).map(([k, v]) => [k, v, onChain ? el("span", { class: "proven" }, "✓ proven") : el("span", { class: "unproven" }, "unproven")]);
    const warn = o.key_binding === "foreign" ? el("p", { class: "error" }, "The encryption key bound on chain for this safe is not in this wallet: rotate your key (datasafe account rotate-key).") : null;
    return el("article", { class: "card", "data-asset": a.asset_id }, head, meta,
      el("p", {}, proof, ` · anchored in block ${o.anchored_block}, root `, mono(o.root)), warn,
      table(["field", "value", "checked against the anchored root"], rows),
      a.status === "active" ? disputeForm(a) : null);
  }

  function disputeForm(a) {
    const id = "reason-" + a.asset_id;
    const reason = el("input", { id, name: "reason", required: true });
    const send = el("button", { type: "submit", class: "secondary" }, "Dispute this record");
    const form = el("form", { class: "filters", "data-dispute": a.asset_id },
      el("label", { for: id }, "Something wrong? Say what (only its hash goes on chain)"), reason,
      el("div", { class: "actions" }, send));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const section = $("#page-safe");
      busy(send, async () => {
        say(section, null);
        try {
          await api("POST", "/api/safe/dispute", { asset_id: a.asset_id, reason: reason.value });
          await loaders.safe(section);
        } catch (e) { say(section, e); }
      });
    });
    return form;
  }

  // ---- my grants ------------------------------------------------------------------------
  loaders.grants = async (section) => {
    const list = $("#grants-list");
    say(section, null);
    try {
      const grants = await api("GET", "/api/grants");
      if (!grants.length) { list.replaceChildren(emptyNote("You have not shared anything: no grants yet. Use “Share data”.")); return; }
      list.replaceChildren(table(["grant", "to", "fields", "purpose", "until", "uses", "status", "actions"],
        grants.map((g) => grantRow(section, g))));
    } catch (e) { list.replaceChildren(); say(section, e); }
  };

  function grantRow(section, g) {
    const actions = el("div", { class: "actions" });
    const act = (action, label, cls) => el("button", { type: "button", class: cls, "data-action": action, "data-grant": g.grant_id,
      onclick: () => confirmAction(section, actions, g, action, label) }, label);
    if (g.status === "active") actions.append(act("pause", "Pause", "secondary"), act("revoke", "Revoke", "danger"));
    else if (g.status === "paused") actions.append(act("resume", "Resume", "secondary"), act("revoke", "Revoke", "danger"));
    const uses = `${g.uses}/${g.terms.max_uses || "∞"}`;
    return [mono(g.grant_id), g.grantee_name || short(g.grantee), (g.fields || []).join(", "), g.purpose_words || String(g.terms.purpose),
      when(g.terms.expiry), uses, el("span", { class: "status-" + g.status }, g.status), actions];
  }

  function confirmAction(section, box, g, action, label) {
    const words = action === "revoke" ? "Revoke for good? The service deletes the key package." : `${label} this grant?`;
    const yes = el("button", { type: "button", class: action === "revoke" ? "danger" : "", "data-confirm": action }, `Yes, ${label.toLowerCase()}`);
    const no = el("button", { type: "button", class: "secondary" }, "Cancel");
    const original = [...box.childNodes];
    box.replaceChildren(el("span", {}, words), yes, no);
    no.addEventListener("click", () => box.replaceChildren(...original));
    yes.addEventListener("click", () => busy(yes, async () => {
      say(section, null);
      try {
        await api("POST", `/api/grants/${action}`, { grant_id: g.grant_id });
        const done = $(".done", section);
        done.textContent = `Grant ${short(g.grant_id)} ${action === "revoke" ? "revoked" : action === "pause" ? "paused" : "resumed"}: the chain shows it.`;
        done.hidden = false;
        await loaders.grants(section);
      } catch (e) { say(section, e); box.replaceChildren(...original); }
    }));
    yes.focus();
  }

  // ---- share (the grant wizard) and the counter code: the same choices ------------------
  const formReady = {};
  const chooser = (name) => async () => {
    if (formReady[name]) return;
    const form = $(`#${name}-form`);
    say(form, null);
    try {
      const [assets, members, purposes] = await Promise.all([
        api("GET", "/api/safe"), institutions(), api("GET", "/api/purposes")]);
      const assetSel = $(`#${name}-asset`);
      assetSel.replaceChildren(el("option", { value: "" }, assets.length ? "— choose a record —" : "no records in your safe"),
        ...assets.filter((a) => a.status === "active").map((a) => el("option", { value: a.asset_id }, `${a.type} v${a.version} from ${a.issuer_name}`)));
      $(`#${name}-to`).replaceChildren(el("option", { value: "" }, members.length ? "— choose an institution —" : "no institutions known"),
        ...members.map((m) => el("option", { value: m.address }, m.label)));
      const purposeSel = $(`#${name}-purpose`), help = $(`#${name}-purpose-help`);
      purposeSel.replaceChildren(...purposes.map((p) => el("option", { value: String(p.code), "data-help": p.description }, p.purpose)));
      if (help) purposeSel.addEventListener("change", () => { help.textContent = purposeSel.selectedOptions[0]?.dataset.help || ""; });
      purposeSel.dispatchEvent(new Event("change"));
      assetSel.addEventListener("change", () => loadFields(form, name, assetSel.value));
      formReady[name] = true;
    } catch (e) { say(form, e); }
  };
  loaders.share = chooser("share");
  loaders.counter = chooser("counter");

  async function institutions() {
    // Registered names from the chain's directory; the wallet's contacts when there are none.
    let rows = [];
    try { rows = (await api("GET", "/api/directory")).filter((r) => r.status === "active" && r.kind !== "individual"); } catch (e) { rows = []; }
    if (rows.length) return rows.map((r) => ({ address: r.address, label: `${r.name} (${r.kind})` }));
    return (await api("GET", "/api/contacts")).map((c) => ({ address: c.address, label: `${c.name} (your contact)` }));
  }

  async function loadFields(form, name, asset) {
    const box = $(`#${name}-fields`);
    box.replaceChildren(el("legend", {}, $("legend", box).textContent));
    if (!asset) { box.append(el("p", { class: "hint" }, "Choose a record first.")); return; }
    try {
      const info = await api("GET", `/api/asset-fields?asset=${encodeURIComponent(asset)}`);
      const id = (i) => (name === "share" ? `field-${i}` : `${name}-field-${i}`);
      info.fields.forEach((f, i) => box.append(el("label", { for: id(i) },
        el("input", { type: "checkbox", id: id(i), name: "field", value: f }), f)));
    } catch (e) { say(form, e); }
  }

  function terms() {
    return {
      asset: $("#share-asset").value, to: $("#share-to").value, purpose: $("#share-purpose").value,
      fields: [...document.querySelectorAll("#share-fields input:checked")].map((i) => i.value),
      duration: $("#share-duration").value, uses: $("#share-uses").value,
    };
  }

  $("#share-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target, confirmBox = $("#share-confirm");
    busy($("#share-review"), async () => {
      say(form, null);
      try {
        const preview = await api("POST", "/api/grants/preview", terms());
        $("#share-words").textContent = preview.words;
        $("#share-hidden").textContent = preview.not_shared.length ? `Not shared: ${preview.not_shared.join(", ")}.` : "";
        form.hidden = true; confirmBox.hidden = false; say(confirmBox, null);
        $("#share-send").focus();
      } catch (e) { say(form, e); }
    });
  });
  $("#share-back").addEventListener("click", () => { $("#share-confirm").hidden = true; $("#share-form").hidden = false; $("#share-review").focus(); });
  $("#share-send").addEventListener("click", () => busy($("#share-send"), async () => {
    const confirmBox = $("#share-confirm");
    say(confirmBox, null);
    try {
      const r = await api("POST", "/api/grants", terms());
      confirmBox.hidden = true;
      const out = $("#share-receipt");
      out.replaceChildren(el("h3", {}, "Consent granted"), el("p", { class: "words" }, r.words),
        el("p", {}, "grant ", mono(r.grant_id), ` · block ${r.block} · `, r.confirmed_on_chain ? "confirmed on the chain" : "not checked on chain"),
        el("p", { class: "hint" }, `Receipt saved to ${r.saved_to}`),
        el("button", { type: "button", onclick: () => { out.hidden = true; $("#share-form").hidden = false; $("#share-form").reset(); } }, "Share something else"));
      out.hidden = false;
    } catch (e) { say(confirmBox, e); }
  }));

  // ---- the counter code: the QR the wallet drew (SVG, parsed, never run) and its text ----
  function qrImage(svgText) {
    const svg = new DOMParser().parseFromString(svgText, "image/svg+xml").documentElement;
    if (svg.nodeName !== "svg" || svg.querySelector("script")) throw new ApiError("bad_qr", "the wallet's QR code did not draw");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "QR code of the counter code");
    return document.importNode(svg, true);
  }

  $("#counter-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target, out = $("#counter-code");
    busy($("#counter-show"), async () => {
      say(form, null);
      out.hidden = true;
      try {
        const r = await api("POST", "/api/counter/code", {
          asset: $("#counter-asset").value, to: $("#counter-to").value, purpose: $("#counter-purpose").value,
          fields: [...document.querySelectorAll("#counter-fields input:checked")].map((i) => i.value),
          valid: $("#counter-valid").value,
        });
        out.replaceChildren(el("h3", {}, "Show this code at the counter"),
          el("div", { class: "qr" }, qrImage(r.svg)),
          el("p", { class: "words" }, r.words),
          el("p", {}, "valid until ", el("time", { id: "counter-until", datetime: new Date(r.valid_until * 1000).toISOString() }, when(r.valid_until)),
            ` · works once · grant `, mono(r.grant_id), ` · QR version ${r.qr_version}-${r.qr_error}`),
          el("label", { for: "counter-payload" }, "Code text (for a scanner that types)"),
          el("textarea", { id: "counter-payload", readonly: true, rows: 7 }, r.payload));
        out.hidden = false;
      } catch (e) { say(form, e); }
    });
  });

  // ---- who read my data -----------------------------------------------------------------
  const EVENT_WORDS = { accessed: "read", refused: "was refused", granted: "was granted", revoked: "grant revoked", paused: "grant paused", resumed: "grant resumed", expired: "grant expired" };
  loaders.history = async (section) => {
    const list = $("#history-list");
    say(section, null);
    try {
      const h = await api("GET", "/api/history");
      $("#history-source").textContent = `From the ${h.source}${h.source === "service" ? "'s index (each row names the transaction that proves it)" : " events"}.`;
      const rows = [...h.accesses, ...h.changes, ...(h.claims || [])].sort((a, b) => (b.time || 0) - (a.time || 0) || b.block - a.block || b.log_index - a.log_index);
      if (!rows.length) { list.replaceChildren(el("li", { class: "empty" }, "Nobody has read your data, and no grant has changed yet.")); return; }
      list.replaceChildren(...rows.map((r) => {
        if (r.claim_id) return claimItem(r);
        const kind = r.event === "accessed" ? "access" : r.event === "refused" ? "refused" : "consent";
        const who = r.institution_name || short(r.institution);
        const what = r.event === "refused" ? `refused: ${r.reason}` : (r.fields || []).join(", ");
        return el("li", { class: kind, "data-event": r.event },
          el("time", {}, when(r.time)), " — ", el("strong", {}, who), ` ${EVENT_WORDS[r.event] || r.event}`,
          what ? ` ${what}` : "", r.purpose_words ? ` for ${r.purpose_words}` : "", r.use ? ` (use ${r.use})` : "",
          el("br"), el("span", { class: "hint" }, "proof: "), mono(r.tx_hash));
      }));
    } catch (e) { list.replaceChildren(); say(section, e); }
  };

  // A claim's event, read by the wallet from her own node (the CLI's words for it).
  function claimItem(r) {
    const what = r.event === "claim_refused" ? [`: ${r.reason}`]
      : r.event === "claim_fulfilled" ? [", record ", mono(r.asset_id)] : [" ", mono(r.claim_id)];
    return el("li", { class: r.event === "claim_refused" ? "refused" : "claim", "data-event": r.event, "data-claim": r.claim_id },
      el("time", {}, when(r.time)), " — ", el("strong", {}, r.institution_name || short(r.institution)), ` ${r.event_words}`, what,
      el("br"), el("span", { class: "hint" }, "proof (read from your node): "), mono(r.tx_hash));
  }

  // ---- regulator ------------------------------------------------------------------------
  function filters() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData($("#trace-form"))) if (String(v).trim()) q.set(k, String(v).trim());
    return q;
  }

  // Page by page: the first rows are drawn at once, the rest as they arrive.
  const ROUTES = { all: ["accesses", "consents"], accesses: ["accesses"], consents: ["consents"] };
  let traceRun = 0;
  $("#trace-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const section = $("#page-regulator"), run = ++traceRun, q = filters();
    const summary = $("#trace-summary");
    summary.removeAttribute("data-done");
    busy($("#trace-search"), async () => {
      say(section, null);
      const rows = [];
      const routes = ROUTES[q.get("kind") || "all"] || [q.get("kind")];
      try {
        for (const [n, route] of routes.entries()) {
          let cursor = null;
          do {
            const p = new URLSearchParams(q);
            p.set("route", route);
            if (cursor) p.set("cursor", cursor);
            p.set("limit", rows.length ? "1000" : "200"); // a small first page paints sooner
            const page = await api("GET", "/api/trace?" + p);
            if (run !== traceRun) return;
            rows.push(...page.rows);
            cursor = page.next_cursor;
            drawTrace(rows, page.indexed_to, Boolean(cursor) || n < routes.length - 1);
          } while (cursor);
        }
        summary.dataset.done = "1";
      } catch (e) { say(section, e); summary.textContent = ""; }
    });
  });

  const byTime = (a, b) => a.at - b.at || a.block_number - b.block_number || a.log_index - b.log_index;

  function drawTrace(rows, indexedTo, loading) {
    rows.sort(byTime);
    const accesses = rows.filter((r) => r.event === "accessed");
    $("#trace-summary").textContent = loading
      ? `${rows.length} events so far (${accesses.length} accesses), loading more…`
      : `${rows.length} events (${accesses.length} accesses), from the service's index up to block ${indexedTo}. Check them against the chain with “Audit verify” below.`;
    const count = (key) => { const m = new Map(); for (const r of accesses) m.set(key(r), (m.get(key(r)) || 0) + 1); return [...m.entries()]; };
    window.DSCharts.overTime($("#chart-time"), "Accesses over time", accesses.map((r) => r.at), "No accesses match these filters.");
    window.DSCharts.bars($("#chart-institution"), "Accesses per institution", count((r) => r.institution_name || short(r.institution)), "No accesses match these filters.");
    window.DSCharts.bars($("#chart-purpose"), "Accesses per purpose", count((r) => r.purpose_words || `purpose ${r.purpose}`), "No accesses match these filters.");
    const box = $("#trace-table");
    if (!rows.length) { box.replaceChildren(emptyNote("No events match these filters.")); return; }
    const shown = rows.slice(-500).reverse();
    box.replaceChildren(
      rows.length > shown.length ? el("p", { class: "hint" }, `The latest ${shown.length} of ${rows.length} events; export for all of them.`) : "",
      table(["when", "event", "grant", "subject", "institution", "fields", "purpose", "use", "proof (tx)"],
        shown.map((r) => [when(r.at), r.event, mono(r.grant_id), mono(r.subject), r.institution_name || mono(r.institution),
          (r.fields || []).join(", "), r.purpose_words || String(r.purpose ?? ""), r.use ?? "", mono(r.tx_hash)])));
  }

  async function download(fmt, button) {
    const section = $("#page-regulator");
    await busy(button, async () => {
      say(section, null);
      try {
        const q = filters(); q.set("format", fmt);
        const out = await api("GET", "/api/trace/export?" + q);
        const text = fmt === "json" ? JSON.stringify(out, null, 2) : out;
        const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: fmt === "json" ? "application/json" : "text/csv" })), download: `trace.${fmt}` });
        document.body.append(link); link.click(); link.remove();
      } catch (e) { say(section, e); }
    });
  }
  $("#export-csv").addEventListener("click", (ev) => download("csv", ev.currentTarget));
  $("#export-json").addEventListener("click", (ev) => download("json", ev.currentTarget));

  function auditForm() {
    const f = new FormData($("#audit-form"));
    return { from_block: String(f.get("from_block") || "").trim(), to_block: String(f.get("to_block") || "").trim() };
  }

  $("#audit-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy($("#audit-rows"), async () => {
      const errBox = $("#audit-form + .error");
      errBox.hidden = true;
      try { drawReport(await api("POST", "/api/audit/verify", auditForm())); }
      catch (e) { errBox.textContent = errWords(e); errBox.hidden = false; $("#audit-report").replaceChildren(); }
    });
  });

  function drawReport(r) {
    const n = r.missing.length + r.extra.length + r.altered.length;
    const verdict = r.ok ? "everything matches" : `${n} difference(s)`;
    const diffs = [
      ...r.missing.map((x) => ["missing", x.block_number, x.log_index, x.kind, ""]),
      ...r.extra.map((x) => ["extra", x.block_number, x.log_index, x.kind, ""]),
      ...r.altered.map((a) => ["altered", a.block_number, a.log_index, a.chain.kind,
        Object.entries(a.fields).map(([k, v]) => `${k}: chain ${JSON.stringify(v.chain)} vs claimed ${JSON.stringify(v.claimed)}`).join("; ")]),
    ];
    $("#audit-report").replaceChildren(
      el("p", { class: r.ok ? "done" : "error" }, `${r.chain_rows} rows on chain, ${r.claimed_rows} claimed by the service: ${verdict}.`),
      r.drift ? el("p", { class: "error" }, `Drift: ${r.drift}`) : "",
      diffs.length ? table(["problem", "block", "log", "kind", "detail"], diffs) : "");
  }

  $("#audit-grants").addEventListener("click", (ev) => busy(ev.currentTarget, async () => {
    const errBox = $("#audit-form + .error");
    errBox.hidden = true;
    try {
      const r = await api("POST", "/api/audit/grants", {});
      // sealed access records and claims, checked against the companions
      const others = ["sealed", "claims"].flatMap((k) => ((r[k] || {}).drift || []).map((d) => [k, d]));
      const rows = r.drift.map((d) => [mono(d.grant_id), d.problem]).concat(others);
      const verdict = rows.length ? `${rows.length} difference(s)` : "no drift";
      $("#audit-report").replaceChildren(
        el("p", { class: rows.length ? "error" : "done" }, `${r.grants_served} grants served, ${r.grants_on_chain} on chain; sealed access records and claims checked: ${verdict}.`),
        rows.length ? table(["grant / record", "problem"], rows) : "");
    } catch (e) { errBox.textContent = errWords(e); errBox.hidden = false; }
  }));

  // ---- members (the regulator's suspensions) ---------------------------------------------
  async function loadMembers() {
    const list = $("#member-list");
    try {
      const rows = await api("GET", "/api/directory");
      $("#member-pick").replaceChildren(...rows.map((r) => el("option", { value: r.address }, `${r.name} (${r.kind}, ${r.status})`)));
      list.replaceChildren(rows.length
        ? table(["name", "kind", "status", "address"], rows.map((r) => [r.name, r.kind, el("span", { class: "status-" + r.status }, r.status), mono(r.address)]))
        : emptyNote("The chain's directory names no member yet."));
    } catch (e) { const errBox = $("#member-form + .error"); errBox.textContent = errWords(e); errBox.hidden = false; }
  }

  async function memberAction(action, button) {
    const errBox = $("#member-form + .error"), done = $("#member-form ~ .done");
    errBox.hidden = true; done.hidden = true;
    await busy(button, async () => {
      try {
        const r = await api("POST", `/api/members/${action}`, { member: $("#member-pick").value, reason: $("#member-reason").value });
        done.textContent = `${r.member} ${action === "suspend" ? "suspended" : "reinstated"} in block ${r.block} (transaction ${short(r.tx_hash)}).`;
        done.hidden = false;
        await loadMembers();
      } catch (e) { errBox.textContent = errWords(e); errBox.hidden = false; }
    });
  }
  $("#member-form").addEventListener("submit", (ev) => { ev.preventDefault(); memberAction("suspend", $("#member-suspend")); });
  $("#member-reinstate").addEventListener("click", (ev) => memberAction("reinstate", ev.currentTarget));
  $("#member-refresh").addEventListener("click", () => loadMembers());
  loaders.regulator = () => { if (!$("#member-pick").options.length) loadMembers(); };

  // ---- institution desk -----------------------------------------------------------------
  // A verified pull (`datasafe pull`, or `redeem` which ends in one): checks, fields, proof.
  const pulledView = (r, title, ...more) => [el("h3", {}, title), ...more,
    el("ul", {}, r.checks.map((c) => el("li", { class: "proven" }, "✓ " + c))),
    table(["field", "value", "verified"], Object.entries(r.fields).map(([k, v]) => [k, v, el("span", { class: "proven" }, "✓ proven")])),
    el("p", { class: "hint" }, "access recorded in ", mono(r.access_tx), ` · saved to ${r.saved_to}`)];

  async function desk(action, button) {
    const section = $("#page-desk"), out = $("#desk-result");
    const gid = $("#desk-grant").value.trim();
    await busy(button, async () => {
      say(section, null);
      out.replaceChildren();
      try {
        const r = await api("POST", `/api/desk/${action}`, { grant_id: gid });
        if (action === "verify") {
          out.replaceChildren(el("p", { class: "done" }, `Allowed: ${r.fields.join(", ")} (block ${r.block}${r.checked_on_chain ? ", checked on the chain" : ""}).`));
        } else {
          out.replaceChildren(...pulledView(r, `Pulled and verified (use ${r.use})`));
        }
      } catch (e) { say(section, e); }
    });
  }
  $("#desk-form").addEventListener("submit", (ev) => { ev.preventDefault(); desk("verify", $("#desk-verify")); });
  $("#desk-pull").addEventListener("click", (ev) => desk("pull", ev.currentTarget));
  $("#redeem-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const section = $("#page-desk"), out = $("#desk-result");
    busy($("#desk-redeem"), async () => {
      say(section, null);
      out.replaceChildren();
      try {
        const r = await api("POST", "/api/desk/redeem", { payload: $("#redeem-payload").value });
        out.replaceChildren(...pulledView(r, "Code redeemed: pulled and verified",
          el("p", {}, "from ", mono(r.grantor), " · grant ", mono(r.grant_id), " · submitted in ", mono(r.grant_tx))));
      } catch (e) { say(section, e); }
    });
  });

  // ---- start ----------------------------------------------------------------------------
  (async () => {
    try {
      const s = await api("GET", "/api/session");
      $("#who").textContent = `${s.profile} · ${s.address}${s.kind ? " · " + s.kind : ""}`;
      show("safe");
    } catch (e) {
      $("#who").textContent = "not connected";
      const box = $("#fatal");
      box.textContent = errWords(e);
      box.hidden = false;
      for (const s of document.querySelectorAll("main > section")) s.hidden = true;
    }
  })();
})();
