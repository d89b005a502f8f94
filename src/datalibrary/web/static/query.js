// Query page: run SQL through the API, page results, download, show history.
import { api } from "/static/app.js";
import { renderGrid, shortType } from "/static/grid.js";

const $ = (id) => document.getElementById(id);
const PAGE = 200;
let offset = 0;
const labels = new Map();  // column name -> label, from the table browser

function humanBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];  // SI (powers of 1000), as everywhere in the console
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function showError(message) {
  const box = $("sql-error");
  box.textContent = message;
  box.hidden = !message;
  $("sql").setAttribute("aria-invalid", message ? "true" : "false");
}

// A failed or new query never leaves the previous result on screen.
function clearResults(message = "") {
  $("results").replaceChildren();
  $("stats").textContent = message;
  $("prev").hidden = true;
  $("next").hidden = true;
  for (const id of ["download-csv", "download-parquet", "copy-cell", "copy-row"]) $(id).disabled = true;
  $("copy-status").textContent = "";
}

let confirmed = "";  // the query whose estimated price the user has seen

// Large queries show their estimated bytes and price first; a second Run confirms.
async function priceShown(sql) {
  const key = `${$("project").value}\n${sql}`;
  if (key === confirmed) return false;
  let estimate;
  try {
    estimate = await api("/query/estimate", { method: "POST", body: { sql, project: $("project").value || null } });
  } catch {
    return false;  // the run itself reports what is wrong with the query
  }
  if (!estimate.large && !estimate.refused_because) return false;
  confirmed = key;
  $("estimate").textContent = estimate.refused_because
    ? `This query would be refused: ${estimate.refused_because}`
    : `Estimated: ${humanBytes(estimate.bytes_scanned)} scanned, about ${estimate.price} ${estimate.currency}. ` +
      "Press Run again to run it.";
  $("estimate").hidden = false;
  return true;
}

async function run(newOffset = 0) {
  const sql = $("sql").value.trim();
  if (!sql) { showError("Write a query first."); return; }
  showError("");
  if (newOffset === 0 && (await priceShown(sql))) return;
  $("estimate").hidden = true;
  $("run").disabled = true;
  clearResults("Running…");
  try {
    const data = await api("/query", {
      method: "POST",
      body: { sql, project: $("project").value || null, limit: PAGE, offset: newOffset },
    });
    offset = newOffset;
    const columns = data.columns.map((c) => ({ ...c, label: labels.get(c.name) ?? "" }));
    renderGrid($("results"), columns, data.rows, { firstRow: offset + 1, status: $("copy-status") });
    const s = data.stats;
    const shown = data.rows.length ? `rows ${offset + 1}–${offset + data.rows.length} of ` : "";
    $("stats").textContent =
      `${shown}${s.rows_returned.toLocaleString("en")} rows · ${data.columns.length} columns · ` +
      `${humanBytes(s.bytes_scanned)} scanned · ${s.duration_ms} ms` +
      (data.truncated ? " · result capped by the server" : "");
    $("prev").hidden = offset === 0;
    $("next").hidden = data.next_offset === null;
    $("download-csv").disabled = false;
    $("download-parquet").disabled = false;
    loadHistory();
  } catch (error) {
    clearResults();
    showError(error.message);
  } finally {
    $("run").disabled = false;
  }
}

async function download(format) {
  const response = await fetch("/api/v1/query", {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": document.querySelector('input[name="csrf_token"]').value,
    },
    body: JSON.stringify({ sql: $("sql").value, project: $("project").value || null, format }),
  });
  if (!response.ok) { showError((await response.json()).detail); return; }
  if (response.status === 202) {  // the download policy sent it to the airlock
    const routed = await response.json();
    window.location.assign(`/exports?routed=${routed.export.id}`);
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `query.${format}`;
  link.click();
  URL.revokeObjectURL(url);
}

// The table browser: each granted table with the columns you may see, their labels and types.
function tableEntry(t) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link-button";
  button.textContent = t.name;
  button.addEventListener("click", () => {
    $("sql").value = `SELECT * FROM ${t.name} LIMIT 100`;
    $("sql").focus();
  });
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = `${t.columns.length} columns` + (t.row_filtered ? " · rows filtered" : "");
  const list = document.createElement("table");
  list.className = "columns";
  const head = list.createTHead().insertRow();
  for (const title of ["Column", "Type"]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = title;
    head.appendChild(th);
  }
  const body = list.createTBody();
  for (const c of t.columns) {
    const tr = body.insertRow();
    const name = tr.insertCell();
    const code = document.createElement("code");
    code.textContent = c.name;
    name.appendChild(code);
    if (c.masked) name.append(" ", Object.assign(document.createElement("span"), { className: "badge", textContent: "masked" }));
    if (c.label) name.appendChild(Object.assign(document.createElement("div"), { className: "muted label", textContent: c.label }));
    tr.insertCell().textContent = shortType(c.type);
  }
  details.append(summary, list);
  li.append(button, details);
  return li;
}

async function loadTables() {
  try {
    const tables = await api("/query/tables");
    $("tables-empty").hidden = tables.length > 0;
    for (const t of tables) for (const c of t.columns) if (c.label) labels.set(c.name, c.label);
    $("table-list").replaceChildren(...tables.map(tableEntry));
  } catch (error) {
    $("tables-empty").hidden = false;
  }
}

async function loadHistory() {
  const records = await api("/queries?limit=20");
  $("history").replaceChildren(...records.map((r) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.textContent = r.sql.length > 80 ? `${r.sql.slice(0, 80)}…` : r.sql;
    button.addEventListener("click", () => { $("sql").value = r.sql; $("sql").focus(); });
    const meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = ` ${r.outcome} · ${humanBytes(r.bytes_scanned)}`;
    li.append(button, meta);
    return li;
  }));
}

$("query-form").addEventListener("submit", (event) => { event.preventDefault(); run(0); });
$("sql").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(0); }
});
$("next").addEventListener("click", () => run(offset + PAGE));
$("prev").addEventListener("click", () => run(Math.max(0, offset - PAGE)));
$("download-csv").addEventListener("click", () => download("csv"));
$("download-parquet").addEventListener("click", () => download("parquet"));
$("copy-cell").addEventListener("click", () => $("results").gridCopy?.("cell"));
$("copy-row").addEventListener("click", () => $("results").gridCopy?.("row"));
$("results").addEventListener("grid-select", () => {
  $("copy-cell").disabled = false;
  $("copy-row").disabled = false;
});
// /query?table=NS.TABLE (from the catalog) starts with that table's rows
const preset = new URLSearchParams(window.location.search).get("table");
if (preset && /^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$/.test(preset)) $("sql").value = `SELECT * FROM ${preset} LIMIT 100`;
loadTables();
loadHistory();
