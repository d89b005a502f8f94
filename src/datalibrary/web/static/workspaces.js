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
  const price = w.price_per_hour === null ? "price unknown (type no longer in the catalog)" : `${w.price_per_hour.toFixed(2)} ${currency}/h`;
  title.append(strong, ` on ${w.instance_type} · ${price}`);
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
// more often, so "running" shows within half a second of JupyterLab answering - and every
// 100 ms for the first seconds after an action, when a warm-pool launch is ready in a few
// hundred milliseconds.
const CHANGING = new Set(["pending", "starting", "stopping", "pausing", "resuming", "terminating"]);
const SOON_MS = 4000;
let nextRefresh = null;
let shown = null;
let actedAt = 0;

function interval(changing) {
  if (!changing) return 2000;
  return Date.now() - actedAt < SOON_MS ? 100 : 400;
}

async function refresh() {
  let changing = false;
  try {
    const workspaces = await api("/workspaces");
    const ids = workspaces.map((w) => w.id).join(",");
    render(workspaces);
    changing = workspaces.some((w) => CHANGING.has(w.state));
    if (shown !== null && ids !== shown) { // one ended or started: quota, history
      refreshHistory();
      refreshReasons();
    }
    shown = ids;
  } catch (error) {
    console.warn("refresh failed", error.message);
  }
  clearTimeout(nextRefresh);
  nextRefresh = setTimeout(refresh, interval(changing));
}

function duration(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return `${h} h ${String(m).padStart(2, "0")} min`;
}

async function refreshReasons() {
  try {
    const catalog = await api("/workspaces/catalog");
    for (const t of catalog.instance_types) {
      const option = [...typeSelect.options].find((o) => o.value === t.name);
      if (option) option.dataset.reason = t.unavailable_because ?? "";
      const status = document.querySelector(`.type-status[data-type="${CSS.escape(t.name)}"]`);
      if (status) status.textContent = t.available ? "available" : `unavailable: ${t.unavailable_because}`;
    }
    syncTypes();
  } catch (error) {
    console.warn("catalog refresh failed", error.message);
  }
}

async function refreshHistory() {
  try {
    const rows = await api("/workspaces/history?limit=50");
    const cells = (h) => [
      `#${h.id} ${h.product}`, h.instance_type, h.project ?? "—",
      new Date(h.created_at).toLocaleString(), new Date(h.terminated_at).toLocaleString(),
      duration(h.running_seconds), `${h.cost} ${h.currency}`,
    ];
    document.querySelector("#history tbody").replaceChildren(...rows.map((h) => {
      const tr = document.createElement("tr");
      tr.dataset.id = h.id;
      for (const [i, text] of cells(h).entries()) {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 5) { td.className = "ran"; td.dataset.seconds = h.running_seconds; }
        if (i === 6) td.className = "cost";
        tr.append(td);
      }
      return tr;
    }));
    document.getElementById("no-history").hidden = rows.length > 0;
    document.getElementById("history-wrap").hidden = rows.length === 0;
  } catch (error) {
    console.warn("history refresh failed", error.message);
  }
}

async function act(id, verb) {
  if (verb === "terminate" && !window.confirm(`Terminate workspace #${id}? Its home is archived and deleted.`)) return;
  actedAt = Date.now();
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
  const product = productSelect.selectedOptions[0];
  const allowed = (product?.dataset.types ?? "").split(",");
  let first = null;
  for (const option of typeSelect.options) {
    // every type stays listed; one that cannot be launched says why
    const reason = !allowed.includes(option.value)
      ? `not offered with ${product?.value ?? "this product"}`
      : option.dataset.reason;
    option.disabled = Boolean(reason);
    option.textContent = reason ? `${option.dataset.label} — unavailable: ${reason}` : option.dataset.label;
    if (!option.disabled && first === null) first = option;
  }
  if (typeSelect.selectedOptions[0]?.disabled && first) typeSelect.value = first.value;
  const chosen = typeSelect.selectedOptions[0];
  const reasonLine = document.getElementById("type-reason");
  const blocked = [...typeSelect.options].filter((o) => o.disabled && allowed.includes(o.value));
  reasonLine.hidden = blocked.length === 0;
  reasonLine.textContent = blocked.map((o) => `${o.value}: ${o.dataset.reason}`).join(" · ");
  document.getElementById("launch").disabled = !chosen || chosen.disabled;
  const price = chosen?.disabled ? "" : chosen?.dataset.price;
  const day = chosen?.dataset.day;
  const hours = chosen?.dataset.dayHours;
  const perDay = day ? ` A typical working day (${hours} h): ${day} ${currency}.` : "";
  priceLine.textContent = price ? `Price while running: ${price} ${currency} per hour.${perDay}` : "";
}

productSelect.addEventListener("change", syncTypes);
typeSelect.addEventListener("change", syncTypes);
syncTypes();

// "Open JupyterLab when it is ready" (remembered in this browser): the tab is opened now,
// while the click still counts as the user's (later, a browser would block it as a pop-up),
// and sent to the workspace's opening page once the launch is accepted.
const openWhenReady = document.getElementById("open-when-ready");
openWhenReady.checked = localStorage.getItem("workspaces.openWhenReady") !== "no";
openWhenReady.addEventListener("change", () => {
  localStorage.setItem("workspaces.openWhenReady", openWhenReady.checked ? "yes" : "no");
});

function openingTab() {
  if (!openWhenReady.checked) return null;
  const tab = window.open("", "_blank");
  if (!tab) return null; // pop-ups blocked: the card's "Open JupyterLab" is still there
  tab.opener = null; // the tab cannot reach back to the console, whatever it shows later
  tab.document.title = "Launching a workspace";
  tab.document.body.textContent = "Launching your workspace…";
  return tab;
}

document.getElementById("launch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const errorLine = document.getElementById("launch-error");
  errorLine.hidden = true;
  const project = document.getElementById("project").value.trim();
  actedAt = Date.now();
  const tab = openingTab();
  try {
    const workspace = await api("/workspaces", {
      method: "POST",
      body: { product: productSelect.value, instance_type: typeSelect.value, project: project || null },
    });
    tab?.location.replace(`/workspaces/${workspace.id}/lab`);
  } catch (error) {
    tab?.close();
    errorLine.textContent = error.message;
    errorLine.hidden = false;
  }
  refresh();
});

refresh();
