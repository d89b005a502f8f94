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

function actions(job) {
  const cell = document.createElement("td");
  if (["queued", "running"].includes(job.state)) {
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel";
    cancel.textContent = "Cancel";
    cancel.title = "Stop this job; its file is kept, encrypted, for a retry";
    cancel.addEventListener("click", async () => {
      try {
        await api(`/ingest/jobs/${job.id}/cancel`, { method: "POST" });
        done(`${job.source_name}: cancel requested.`);
      } catch (error) { done(`${job.source_name}: ${error.message}`); }
      refresh();
    });
    cell.append(cancel);
  }
  if (["quarantined", "failed"].includes(job.state)) {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "Retry";
    retry.title = "Run the file again, with the policy's current version";
    retry.addEventListener("click", async () => {
      try {
        await api(`/ingest/jobs/${job.id}/retry`, { method: "POST" });
        done(`${job.source_name}: queued again.`);
      } catch (error) { done(`${job.source_name}: ${error.message}`); }
      refresh();
    });
    const report = document.createElement("button");
    report.type = "button";
    report.className = "report";
    report.textContent = "Reason report";
    report.addEventListener("click", () => reasonReport(job));
    cell.append(retry, " ", report);
    retry.disabled = !job.file_kept;
    if (job.file_kept) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "delete-file";
      remove.textContent = "Delete file";
      remove.title = "Delete the kept raw file (the job and its reason stay; audited)";
      remove.addEventListener("click", async () => {
        if (!window.confirm(`Delete ${job.source_name} for good? The job and its reason stay (audited).`)) return;
        try {
          await api(`/ingest/jobs/${job.id}/file`, { method: "DELETE" });
          done(`${job.source_name}: file deleted; the job and its reason stay.`);
        } catch (error) { done(`${job.source_name}: ${error.message}`); }
        refresh();
      });
      cell.append(" ", remove);
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
