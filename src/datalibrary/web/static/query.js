// Query page: run SQL through the API, page results, download, show history.
import { api } from "/static/app.js";

const $ = (id) => document.getElementById(id);
const PAGE = 200;
let offset = 0;

function humanBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
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

function renderTable(columns, rows) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c.name;
    th.title = c.type;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const value of row) tr.insertCell().textContent = value === null ? "NULL" : String(value);
  }
  $("results").replaceChildren(table);
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
  $("stats").textContent = "Running…";
  try {
    const data = await api("/query", {
      method: "POST",
      body: { sql, project: $("project").value || null, limit: PAGE, offset: newOffset },
    });
    offset = newOffset;
    renderTable(data.columns, data.rows);
    const s = data.stats;
    $("stats").textContent =
      `${s.rows_returned} rows · ${humanBytes(s.bytes_scanned)} scanned · ${s.duration_ms} ms` +
      (data.truncated ? " · result capped by the server" : "");
    $("prev").hidden = offset === 0;
    $("next").hidden = data.next_offset === null;
    $("download-csv").disabled = false;
    $("download-parquet").disabled = false;
    loadHistory();
  } catch (error) {
    $("stats").textContent = "";
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

async function loadTables() {
  try {
    const tables = await api("/query/tables");
    $("tables-empty").hidden = tables.length > 0;
    $("table-list").replaceChildren(...tables.map((t) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = t.name;
      button.title = t.columns.map((c) => c.name).join(", ");
      button.addEventListener("click", () => {
        $("sql").value = `SELECT * FROM ${t.name} LIMIT 100`;
        $("sql").focus();
      });
      li.appendChild(button);
      return li;
    }));
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
loadTables();
loadHistory();
