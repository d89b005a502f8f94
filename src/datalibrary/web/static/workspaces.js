// Workspaces page: launch, act on workspaces, poll their states. Calls the REST API only.
import { api } from "/static/app.js";

const list = document.getElementById("workspace-list");
const currency = list.dataset.currency;
const ACTIONS = {
  running: ["open", "pause", "stop", "terminate"],
  paused: ["resume", "stop", "terminate"],
  stopped: ["start", "terminate"],
  failed: ["start", "stop", "terminate"],
  // transitional states keep a way out (the reconciler finishes whatever is left)
  starting: ["stop", "terminate"],
  pausing: ["stop", "terminate"],
  resuming: ["stop", "terminate"],
  stopping: ["terminate"],
};

function render(workspaces) {
  list.replaceChildren(...workspaces.map(item));
  document.getElementById("no-workspaces").hidden = workspaces.length > 0;
}

function item(w) {
  const li = document.createElement("li");
  li.className = "workspace";
  li.dataset.id = w.id;
  li.dataset.state = w.state;
  const title = document.createElement("div");
  const strong = document.createElement("strong");
  strong.textContent = `#${w.id} ${w.product}`;
  title.append(strong, ` on ${w.instance_type} · ${w.price_per_hour.toFixed(2)} ${currency}/h`);
  if (!w.isolated) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "not isolated";
    title.append(" · ", badge);
  }
  const state = document.createElement("div");
  const label = document.createElement("span");
  label.className = "state";
  label.textContent = w.state;
  const reason = document.createElement("span");
  reason.className = "reason";
  reason.textContent = ` ${w.state_reason}`;
  state.append("State: ", label, reason);
  li.append(title, state);
  if (w.idle_warning_at && w.state === "running") {
    const warn = document.createElement("p");
    warn.className = "idle-warning";
    warn.setAttribute("role", "alert");
    warn.textContent = `Idle: this workspace will stop at ${new Date(w.idle_stop_at).toLocaleTimeString()} unless you use it.`;
    li.append(warn);
  }
  const actions = document.createElement("div");
  actions.className = "actions";
  for (const verb of ACTIONS[w.state] ?? []) {
    if (verb === "open") {
      const link = document.createElement("a");
      link.href = w.url;
      link.className = "button";
      link.textContent = "Open JupyterLab";
      link.target = "_blank";
      link.rel = "noopener";
      actions.append(link);
      continue;
    }
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = verb[0].toUpperCase() + verb.slice(1);
    button.dataset.verb = verb;
    button.addEventListener("click", () => act(w.id, verb));
    actions.append(button);
  }
  li.append(actions);
  return li;
}

// States a workspace passes through on its own; while one is in such a state the page asks
// more often, so "running" shows within half a second of JupyterLab answering.
const CHANGING = new Set(["pending", "starting", "stopping", "pausing", "resuming", "terminating"]);
let nextRefresh = null;

async function refresh() {
  let changing = false;
  try {
    const workspaces = await api("/workspaces");
    render(workspaces);
    changing = workspaces.some((w) => CHANGING.has(w.state));
  } catch (error) {
    console.warn("refresh failed", error.message);
  }
  clearTimeout(nextRefresh);
  nextRefresh = setTimeout(refresh, changing ? 400 : 2000);
}

async function act(id, verb) {
  if (verb === "terminate" && !window.confirm(`Terminate workspace #${id}? Its home is archived and deleted.`)) return;
  try {
    await api(`/workspaces/${id}/${verb}`, { method: "POST" });
  } catch (error) {
    window.alert(error.message);
  }
  refresh();
}

const productSelect = document.getElementById("product");
const typeSelect = document.getElementById("instance-type");
const priceLine = document.getElementById("launch-price");

function syncTypes() {
  const allowed = (productSelect.selectedOptions[0]?.dataset.types ?? "").split(",");
  let first = null;
  for (const option of typeSelect.options) {
    option.hidden = option.disabled = !allowed.includes(option.value);
    if (!option.disabled && first === null) first = option;
  }
  if (typeSelect.selectedOptions[0]?.disabled && first) typeSelect.value = first.value;
  const price = typeSelect.selectedOptions[0]?.dataset.price;
  const day = typeSelect.selectedOptions[0]?.dataset.day;
  const hours = typeSelect.selectedOptions[0]?.dataset.dayHours;
  const perDay = day ? ` A typical working day (${hours} h): ${day} ${currency}.` : "";
  priceLine.textContent = price ? `Price while running: ${price} ${currency} per hour.${perDay}` : "";
}

productSelect.addEventListener("change", syncTypes);
typeSelect.addEventListener("change", syncTypes);
syncTypes();

document.getElementById("launch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorLine = document.getElementById("launch-error");
  errorLine.hidden = true;
  const project = document.getElementById("project").value.trim();
  try {
    await api("/workspaces", {
      method: "POST",
      body: { product: productSelect.value, instance_type: typeSelect.value, project: project || null },
    });
  } catch (error) {
    errorLine.textContent = error.message;
    errorLine.hidden = false;
  }
  refresh();
});

refresh();
