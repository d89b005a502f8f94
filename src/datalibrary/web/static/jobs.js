// Jobs page: the ingestion job list (polled every second while something is queued, running or
// cancelling), filtered by state and submitter; Cancel and Retry act through the job API.
import { api } from "/static/app.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["queued", "running", "cancelling"];

function humanBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function done(message) {
  $("action-status").textContent = message;
  $("action-status").hidden = false;
}

function button(label, className, title, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = label;
  element.title = title;
  element.addEventListener("click", async () => {
    element.disabled = true;
    try { done(await action()); } catch (error) { done(error.message); }
    refresh();
  });
  return element;
}

function actions(job) {
  const cell = document.createElement("td");
  if (["queued", "running"].includes(job.state)) {
    cell.append(button("Cancel", "cancel", "Stop this job; its file is kept, encrypted, for a retry", async () => {
      const after = await api(`/ingest/jobs/${job.id}/cancel`, { method: "POST" });
      return after.state === "cancelling"
        ? `${job.source_name}: stopping (the worker ends its reader within seconds).`
        : `${job.source_name}: cancelled.`;
    }));
  } else if (["quarantined", "failed", "cancelled"].includes(job.state) && job.file_kept) {
    cell.append(button("Retry", "retry", "Run the file again, with the policy's current version", async () => {
      await api(`/ingest/jobs/${job.id}/retry`, { method: "POST" });
      return `${job.source_name}: queued again.`;
    }), " ", button("Delete file", "discard", "Delete the kept file now (the job and its reason stay)", async () => {
      if (!window.confirm(`Delete the kept file of ${job.source_name}? It cannot be retried afterwards.`)) return "Nothing deleted.";
      await api(`/ingest/jobs/${job.id}/file`, { method: "DELETE" });
      return `${job.source_name}: its file is deleted.`;
    }));
  }
  return cell;
}

function progress(job) {
  const cell = document.createElement("td");
  const bar = document.createElement("progress");
  bar.max = job.size_bytes || 1;
  bar.value = job.state === "succeeded" ? bar.max : Math.min(job.progress_bytes, bar.max);
  bar.setAttribute("aria-label", `${job.source_name}: read`);
  cell.append(bar, ` ${humanBytes(job.progress_bytes)} of ${humanBytes(job.size_bytes)}`);
  return cell;
}

function row(job) {
  const tr = document.createElement("tr");
  tr.dataset.job = job.id;
  tr.dataset.state = job.state;
  const text = (value, className = "") => {
    const td = tr.insertCell();
    td.textContent = value;
    if (className) td.className = className;
  };
  text(job.source_name);
  text(job.table);
  text(job.state, `state state-${job.state}`);
  text(job.step ?? "");
  tr.appendChild(progress(job));
  text(job.rows_written.toLocaleString("en"));
  text(job.created_by);
  text(job.started_at ? new Date(job.started_at).toLocaleString() : "");
  text(job.reason?.message ?? "", "details");
  tr.appendChild(actions(job));
  return tr;
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  const query = new URLSearchParams({ limit: "100" });
  if ($("f-state").value) query.set("state", $("f-state").value);
  if ($("f-mine").checked) query.set("created_by", $("jobs-filter").dataset.me);
  let jobs;
  try { jobs = await api(`/ingest/jobs?${query}`); } catch { timer = setTimeout(refresh, 5000); return; }
  $("jobs").tBodies[0].replaceChildren(...jobs.map(row));
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-updated").textContent = `· updated ${new Date().toLocaleTimeString()}`;
  timer = setTimeout(refresh, jobs.some((j) => ACTIVE.includes(j.state)) ? 1000 : 5000);
}

$("f-state").addEventListener("change", refresh);
$("f-mine").addEventListener("change", refresh);
refresh();
