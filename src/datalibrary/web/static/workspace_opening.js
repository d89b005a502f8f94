// Opening a workspace that is not running yet (Launch opens this page in a new tab): show its
// state, and enter JupyterLab (the console's own /lab address, which hands over to the
// workspace's origin) the moment it is running. A state no wait can end says so and stops.
import { api } from "/static/app.js";

const card = document.getElementById("opening");
const id = card.dataset.id;
const next = document.getElementById("opening-next");
const WAITING = new Set(["pending", "starting", "resuming"]);
const started = Date.now();

function show(workspace) {
  card.dataset.state = workspace.state;
  card.querySelector(".state").textContent = workspace.state;
  card.querySelector(".reason").textContent = ` ${workspace.state_reason ?? ""}`;
}

async function poll() {
  let workspace;
  try {
    workspace = await api(`/workspaces/${id}`);
  } catch (error) {
    next.textContent = `The workspace cannot be opened: ${error.message}`;
    return;
  }
  show(workspace);
  if (workspace.state === "running") {
    window.location.replace(`/workspaces/${id}/lab`);
    return;
  }
  if (!WAITING.has(workspace.state)) {
    next.textContent = `The workspace is ${workspace.state}; start or resume it from your workspaces page, then open it again.`;
    return;
  }
  // a warm-pool launch is ready within a few hundred milliseconds, a cold one in about one
  // second: ask often at first (a cheap read), then calmly
  setTimeout(poll, Date.now() - started < 3000 ? 50 : 500);
}

poll();
