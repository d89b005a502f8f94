// Packages page: the mirror's mode and rules, internal uploads and the install log, all
// through /api/v1/packages (the checks are the service's). The install log is polled.
import { api } from "/static/app.js";

const $ = (id) => document.getElementById(id);
const csrf = () => document.querySelector('input[name="csrf_token"]')?.value ?? "";

function say(message) {
  $("pkg-error").hidden = true;
  $("pkg-status").textContent = message;
  $("pkg-status").hidden = false;
}

function fail(error) {
  $("pkg-error").textContent = error.message;
  $("pkg-error").hidden = false;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  if (className) td.className = className;
  return td;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function showPolicy(policy) {
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.checked = radio.value === policy.mode;
  const body = $("rules").querySelector("tbody");
  body.replaceChildren(...policy.rules.map((rule) => {
    const tr = document.createElement("tr");
    tr.dataset.rule = rule.id;
    tr.dataset.kind = rule.kind;
    tr.dataset.name = rule.name;
    tr.dataset.ecosystem = rule.ecosystem;
    const actions = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete-rule";
    remove.textContent = "Delete";
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Delete the ${rule.kind} rule for ${rule.name}?`)) return;
      try {
        await api(`/packages/rules/${rule.id}`, { method: "DELETE" });
        say(`Rule for ${rule.name} deleted.`);
      } catch (error) { fail(error); }
      loadPolicy();
    });
    actions.append(remove);
    tr.append(cell(rule.kind, `state state-${rule.kind === "deny" ? "denied" : "approved"}`),
      cell(rule.ecosystem === "r" ? "R" : "Python"), cell(rule.name),
      cell(rule.specifier || "all"), cell(rule.note || "—"), cell(rule.created_by), cell(when(rule.created_at)), actions);
    return tr;
  }));
  $("rules-empty").hidden = policy.rules.length > 0;
}

async function loadPolicy() {
  try { showPolicy(await api("/packages/policy")); } catch (error) { fail(error); }
}

async function loadUploads() {
  try {
    const rows = await api("/packages/internal");
    $("uploads").querySelector("tbody").replaceChildren(...rows.map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.package = u.package;
      tr.append(cell(u.package), cell(u.version), cell(u.file), cell(u.bytes == null ? "—" : `${u.bytes} B`),
        cell(u.user), cell(when(u.at)));
      return tr;
    }));
    $("uploads-empty").hidden = rows.length > 0;
  } catch (error) { fail(error); }
}

async function loadRPackages() {
  try {
    const rows = await api("/packages/r");
    $("r-packages").querySelector("tbody").replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.package = r.name;
      tr.append(cell(r.name), cell(r.version), cell(r.depends || "—"), cell(r.imports || "—"), cell(r.license || "—"));
      return tr;
    }));
    $("r-empty").hidden = rows.length > 0;
  } catch (error) { fail(error); }
}

async function upload(url, file) {
  const data = new FormData();
  data.append("file", file, file.name);
  const response = await fetch(url, {
    method: "POST", body: data, credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRF-Token": csrf() },
  });
  const result = await response.json();
  if (!response.ok) throw new Error(result?.detail ?? response.statusText);
  return result;
}

async function loadInstalls() {
  try {
    const rows = await api("/packages/installs?limit=500");
    $("installs").querySelector("tbody").replaceChildren(...rows.map((i) => {
      const tr = document.createElement("tr");
      tr.dataset.package = i.package;
      tr.dataset.action = i.action;
      const refused = i.action === "package.refused";
      tr.append(cell(when(i.at)), cell(i.user), cell(i.workspace ? `#${i.workspace}` : "— (laptop)"),
        cell(i.package), cell(i.version),
        cell(refused ? `refused: ${i.reason ?? ""}` : "installed", refused ? "state state-denied" : "state state-approved"));
      return tr;
    }));
    $("installs-empty").hidden = rows.length > 0;
    $("installs-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) { fail(error); }
}

for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", async () => {
    if (radio.value === "allowlist" && !window.confirm("Allow-list only: workspaces can then install only allowed packages. Switch?")) {
      loadPolicy();
      return;
    }
    try {
      showPolicy(await api("/packages/policy", { method: "PUT", body: { mode: radio.value } }));
      say(radio.value === "open" ? "Mode: open mirror." : "Mode: allow-list only.");
    } catch (error) { fail(error); loadPolicy(); }
  });
}

$("rule-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    kind: form.elements.kind.value,
    ecosystem: form.elements.ecosystem.value,
    name: form.elements.name.value.trim(),
    specifier: form.elements.specifier.value.trim(),
    note: form.elements.note.value.trim(),
  };
  try {
    const rule = await api("/packages/rules", { method: "POST", body });
    say(`Rule added: ${rule.kind} ${rule.ecosystem === "r" ? "R package " : ""}${rule.name}${rule.specifier ? ` ${rule.specifier}` : ""}.`);
    form.reset();
  } catch (error) { fail(error); }
  loadPolicy();
});

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("wheel").files[0];
  if (!file) return;
  try {
    const result = await upload("/api/v1/packages/internal", file);
    say(`Uploaded ${result.name} ${result.version}.`);
    event.target.reset();
  } catch (error) { fail(error); }
  loadUploads();
});

$("r-upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("r-tarball").files[0];
  if (!file) return;
  try {
    const result = await upload("/api/v1/packages/r", file);
    say(`Published R package ${result.name} ${result.version}.`);
    event.target.reset();
  } catch (error) { fail(error); }
  loadRPackages();
});

loadPolicy();
loadUploads();
loadRPackages();
loadInstalls();
setInterval(loadInstalls, 3000);
