// Ingestion page: chunked, resumable uploads (the upload API), live job progress (polling the
// job API every second while something runs), quarantine actions (retry, reason report, delete file).
import { api } from "/static/app.js";

const $ = (id) => document.getElementById(id);
const CHUNK = 8 * 1000 * 1000;
const csrf = () => document.querySelector('input[name="csrf_token"]').value;

function humanBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function say(message) {
  $("upload-error").textContent = message;
  $("upload-error").hidden = !message;
}

// Uploads in progress are remembered per file (name, size, date) so a reload resumes them.
const key = (file) => `dl-upload:${file.name}:${file.size}:${file.lastModified}`;

async function upload(file) {
  const li = document.createElement("li");
  const progress = document.createElement("progress");
  progress.max = file.size || 1;
  const label = document.createElement("span");
  li.append(`${file.name} `, progress, " ", label);
  $("uploads").appendChild(li);
  let id = localStorage.getItem(key(file));
  let offset = 0;
  if (id) {
    try { offset = (await api(`/ingest/uploads/${id}`)).size_bytes; } catch { id = null; }
  }
  if (!id) {
    id = (await api("/ingest/uploads", { method: "POST", body: { filename: file.name } })).id;
    localStorage.setItem(key(file), id);
  }
  while (offset < file.size) {
    const response = await fetch(`/api/v1/ingest/uploads/${id}?offset=${offset}`, {
      method: "PUT", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/octet-stream" },
      body: file.slice(offset, offset + CHUNK),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.detail ?? response.statusText);
    offset = data.size_bytes;
    progress.value = offset;
    label.textContent = `${humanBytes(offset)} of ${humanBytes(file.size)} sent`;
  }
  const job = await api(`/ingest/uploads/${id}/complete`, {
    method: "POST",
    body: { table: $("u-table").value.trim(), policy: $("u-policy").value, mode: $("u-mode").value },
  });
  localStorage.removeItem(key(file));
  progress.value = progress.max;
  label.textContent = `sent · job ${job.id.slice(0, 8)} queued`;
  refresh();
}

async function uploadAll(files) {
  say("");
  if (!$("u-table").value.trim()) { say("Name the target table first (NAMESPACE.TABLE)."); $("u-table").focus(); return; }
  for (const file of files) {
    try { await upload(file); } catch (error) { say(`${file.name}: ${error.message}`); }
  }
}

function reasonReport(job) {
  const report = {
    job: job.id, file: job.source_name, table: job.table, state: job.state, policy: job.policy,
    sha256: job.sha256, size_bytes: job.size_bytes, finished_at: job.finished_at, reason: job.reason,
  };
  const url = URL.createObjectURL(new Blob([JSON.stringify(report, null, 2)], { type: "application/json" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `quarantine-${job.id.slice(0, 8)}.json`;
  link.click();
  URL.revokeObjectURL(url);
}

function done(message) {
  $("action-status").textContent = message;
  $("action-status").hidden = false;
}

function button(className, label, title, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.title = title;
  element.addEventListener("click", onClick);
  return element;
}

// Calls the job API, says what happened, refreshes the table.
async function act(job, path, method, message) {
  try {
    await api(`/ingest/jobs/${job.id}/${path}`, { method });
    done(`${job.source_name}: ${message}`);
  } catch (error) { done(`${job.source_name}: ${error.message}`); }
  refresh();
}

function actions(job) {
  const cell = document.createElement("td");
  if (["queued", "running"].includes(job.state)) {
    cell.append(button("cancel", "Cancel", "Stop this job; its file is kept, encrypted, for a retry",
      () => act(job, "cancel", "POST", "cancel requested.")));
  }
  if (["quarantined", "failed"].includes(job.state)) {
    const retry = button("retry", "Retry", "Run the file again, with the policy's current version",
      () => act(job, "retry", "POST", "queued again."));
    retry.disabled = !job.file_kept;
    cell.append(retry, " ", button("report", "Reason report", "Download the job, file, policy and reason as JSON",
      () => reasonReport(job)));
    if (job.file_kept) {
      cell.append(" ", button("delete-file", "Delete file", "Delete the kept raw file (the job and its reason stay; audited)",
        () => {
          if (!window.confirm(`Delete ${job.source_name} for good? The job and its reason stay (audited).`)) return;
          act(job, "file", "DELETE", "file deleted; the job and its reason stay.");
        }));
    }
  }
  return cell;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  let jobs;
  try { jobs = await api("/ingest/jobs?limit=50"); } catch { timer = setTimeout(refresh, 5000); return; }
  const body = $("jobs").tBodies[0];
  body.replaceChildren(...jobs.map((job) => {
    const tr = document.createElement("tr");
    tr.dataset.job = job.id;
    tr.dataset.state = job.state;
    const cells = [job.source_name, job.table, job.state, job.step ?? "",
      `${humanBytes(job.progress_bytes)} of ${humanBytes(job.size_bytes)}`,
      job.rows_read.toLocaleString("en"), job.rows_written.toLocaleString("en")];
    cells.forEach((text, i) => {
      const td = tr.insertCell();
      td.textContent = text;
      if (i === 2) td.className = `state state-${job.state}`;
    });
    if (job.reason?.message) tr.cells[2].title = job.reason.message;
    tr.appendChild(actions(job));
    return tr;
  }));
  $("jobs-updated").textContent = `· updated ${new Date().toLocaleTimeString()}`;
  const busy = jobs.some((j) => ["queued", "running", "cancelling"].includes(j.state));
  timer = setTimeout(refresh, busy ? 1000 : 5000);
}

const zone = $("drop-zone");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  uploadAll([...event.dataTransfer.files]);
});
zone.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("u-files").click(); });
$("u-files").addEventListener("change", () => { uploadAll([...$("u-files").files]); $("u-files").value = ""; });
refresh();
