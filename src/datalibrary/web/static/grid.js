// Results grid: fixed column widths sized from the type, the name and a sample of the
// values; sticky headers with the column type; scrolling both ways; copy a cell or a row.
// Used by the Query page; any page may call renderGrid() on its own container.

const MIN_CH = 6;
const MAX_CH = 32;
const SAMPLE = 50;

const NUMERIC = /^(u?int|int|double|float|halffloat|decimal)/;

// Width in ch of a column: wide enough for its name, its type and most of its values.
export function widthCh(column, values) {
  let longest = Math.max(column.name.length, shortType(column.type).length);
  for (const value of values.slice(0, SAMPLE)) {
    longest = Math.max(longest, display(value).length);
  }
  return Math.min(MAX_CH, Math.max(MIN_CH, longest)) + 3;  // 2ch of padding, 1ch of air
}

// Arrow type names as people read them ("timestamp[us, tz=UTC]" -> "timestamp").
export function shortType(type) {
  return String(type || "").replace(/\[.*$/, "").replace(/^large_/, "");
}

export function display(value) {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

// Render ``rows`` (arrays) under ``columns`` ({name, type, label?}) into ``container``.
// ``firstRow`` numbers the rows (1-based) when the result is paged.
export function renderGrid(container, columns, rows, { firstRow = 1, status = null } = {}) {
  const table = document.createElement("table");
  table.className = "grid";
  table.setAttribute("role", "grid");
  table.setAttribute("aria-rowcount", String(rows.length + 1));
  table.setAttribute("aria-colcount", String(columns.length + 1));
  const colgroup = document.createElement("colgroup");
  const numberWidth = String(firstRow + rows.length).length + 3;
  const widths = [numberWidth, ...columns.map((c, i) => widthCh(c, rows.map((r) => r[i])))];
  for (const w of widths) {
    const col = document.createElement("col");
    col.style.width = `${w}ch`;
    colgroup.appendChild(col);
  }
  table.style.width = `${widths.reduce((a, b) => a + b, 0)}ch`;
  table.appendChild(colgroup);

  const head = table.createTHead().insertRow();
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.className = "rownum";
  corner.innerHTML = '<span class="col-name">#</span><span class="col-type">row</span>';
  head.appendChild(corner);
  columns.forEach((c, i) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.setAttribute("aria-colindex", String(i + 2));
    th.title = [c.name, c.label, c.type].filter(Boolean).join(" · ");
    const name = document.createElement("span");
    name.className = "col-name";
    name.textContent = c.name;
    const type = document.createElement("span");
    type.className = "col-type";
    type.textContent = shortType(c.type);
    th.append(name, type);
    if (NUMERIC.test(shortType(c.type))) th.classList.add("num");
    head.appendChild(th);
  });

  const numeric = columns.map((c) => NUMERIC.test(shortType(c.type)));
  const body = table.createTBody();
  rows.forEach((row, r) => {
    const tr = body.insertRow();
    tr.setAttribute("aria-rowindex", String(r + 2));
    const number = document.createElement("th");
    number.scope = "row";
    number.className = "rownum";
    number.textContent = String(firstRow + r);
    tr.appendChild(number);
    row.forEach((value, i) => {
      const td = tr.insertCell();
      const text = display(value);
      td.textContent = text;
      td.tabIndex = -1;
      if (value === null || value === undefined) td.classList.add("null");
      if (numeric[i]) td.classList.add("num");
      if (text.length > widths[i + 1] - 3) td.title = text;
    });
  });
  container.replaceChildren(table);
  wire(container, table, columns, rows, status);
  return table;
}

function wire(container, table, columns, rows, status) {
  let active = null;
  const say = (text) => { if (status) status.textContent = text; };
  const activate = (td) => {
    if (!td || td.tagName !== "TD") return;
    if (active) { active.classList.remove("active"); active.removeAttribute("aria-selected"); active.tabIndex = -1; }
    active = td;
    td.classList.add("active");
    td.setAttribute("aria-selected", "true");
    td.tabIndex = 0;
    td.focus({ preventScroll: false });
    container.dispatchEvent(new CustomEvent("grid-select", { detail: position(td) }));
  };
  const position = (td) => ({ row: td.parentElement.sectionRowIndex, col: td.cellIndex - 1 });
  const cellText = (td) => display(rows[position(td).row][position(td).col]);
  const rowText = (td) => rows[position(td).row].map(display).join("\t");

  container.gridCopy = async (what) => {
    if (!active) { say("Select a cell first."); return false; }
    const text = what === "row" ? rowText(active) : cellText(active);
    const ok = await copyText(text);
    say(ok ? (what === "row" ? "Row copied (tab-separated)." : "Cell copied.") : "Copy failed.");
    return ok;
  };
  container.gridSelect = (row, col) => activate(table.tBodies[0].rows[row]?.cells[col + 1]);

  table.addEventListener("click", (event) => activate(event.target.closest("td")));
  table.addEventListener("keydown", (event) => {
    if (!active) return;
    const { row, col } = position(active);
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[event.key]) {
      event.preventDefault();
      const [dr, dc] = moves[event.key];
      container.gridSelect(Math.max(0, Math.min(rows.length - 1, row + dr)),
        Math.max(0, Math.min(columns.length - 1, col + dc)));
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "c") {
      event.preventDefault();
      container.gridCopy(event.shiftKey ? "row" : "cell");
    }
  });
}
