// Policy editor: validate, preview on sample rows and store through the API.
import { api } from "/static/app.js";

const $ = (id) => document.getElementById(id);

function status(message, isError = false) {
  $("document-error").textContent = isError ? message : "";
  $("document-error").hidden = !isError;
  $("document-status").textContent = isError ? "" : message;
  $("document").setAttribute("aria-invalid", isError ? "true" : "false");
}

function renderRows(columns, rows) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const c of columns) tr.insertCell().textContent = row[c] === null ? "NULL" : String(row[c]);
  }
  $("preview-result").replaceChildren(table);
}

async function validate() {
  try {
    const d = await api("/policies/validate", { method: "POST", body: { document: $("document").value } });
    status(`Valid: ${d.name}@${d.version}, ${d.rules.length} rule(s), tier ${d.tier}.`);
    return true;
  } catch (error) {
    status(error.message, true);
    return false;
  }
}

async function preview() {
  if (!$("sample").value.trim()) { status("Paste a few sample rows first.", true); return; }
  try {
    const d = await api("/policies/preview", {
      method: "POST",
      body: { document: $("document").value, sample_csv: $("sample").value, namespace: $("namespace").value },
    });
    renderRows(d.columns, d.rows);
    status(`Preview of ${d.rows.length} row(s); nothing was stored.`);
    $("risk").textContent = d.risk
      ? `Risk on ${d.risk.quasi_identifiers.join(", ")}: k = ${d.risk.k}, max ${d.risk.max_risk.toFixed(3)}`
      : "";
  } catch (error) {
    status(error.message, true);
  }
}

async function save(event) {
  event.preventDefault();
  if (!(await validate())) return;
  try {
    const d = await api("/policies", { method: "POST", body: { document: $("document").value } });
    status(`Stored ${d.name}@${d.version} (sha256 ${d.sha256.slice(0, 12)}…).`);
  } catch (error) {
    status(error.message, true);
  }
}

$("validate").addEventListener("click", validate);
$("preview").addEventListener("click", preview);
$("policy-form").addEventListener("submit", save);
