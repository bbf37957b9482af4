"use strict";
const $ = (id) => document.getElementById(id);
const endpoint = location.origin + "/graphql";
const wsEndpoint = endpoint.replace(/^http/, "ws");
let token = sessionStorage.getItem("healsync.token") || "";
let socket = null;

const EXAMPLES = {
  "Doctors and free slots": `query Doctors {
  doctors(limit: 10) {
    id name specializations
    availableSlots { start end }
  }
}`,
  "Search patients": `query Search($q: String) {
  patients(search: $q, limit: 20) { id mrn name dateOfBirth phone }
}`,
  "Register a patient": `mutation Register {
  createPatient(input: { name: "Amina Njoroge", email: "amina@example.org", phone: "+254 712 000 111", dateOfBirth: "1984-03-01" }) {
    id mrn name
  }
}`,
  "Book an appointment": `mutation Book($patientId: ID!, $doctorId: ID!, $at: String!) {
  bookAppointment(input: { patientId: $patientId, doctorId: $doctorId, scheduledAt: $at, reason: "Consultation" }) {
    id scheduledAt status
  }
}`,
  "Today's appointments": `query Today($date: String) {
  appointments(date: $date) { id scheduledAt status patient { name mrn } doctor { name } }
}`,
  "Watch appointments (subscription)": `subscription Watch {
  appointmentUpdated { id scheduledAt status patient { name } }
}`,
};

function show(value) { $("result").textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2); }
function append(value) { $("result").textContent += JSON.stringify(value, null, 2) + "\n"; }

async function post(query, variables) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  const res = await fetch(endpoint, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return res.json();
}

function setWho(user) {
  $("who").textContent = user ? `${user.username} (${user.role})` : "not logged in";
}

async function refreshMe() {
  if (!token) { setWho(null); return; }
  const r = await post("{ me { id username role patientId doctorId } }", {});
  if (r.data && r.data.me) { setWho(r.data.me); loadSchema(); }
  else { token = ""; sessionStorage.removeItem("healsync.token"); setWho(null); }
}

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await post(`mutation Login($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt user { id username role } } }`,
    { u: $("username").value, p: $("password").value });
  if (r.data && r.data.login) {
    token = r.data.login.token;
    sessionStorage.setItem("healsync.token", token);
    $("password").value = "";
    setWho(r.data.login.user);
    show({ loggedIn: r.data.login.user, expiresAt: r.data.login.expiresAt });
    loadSchema();
  } else { show(r); }
});

$("logout").addEventListener("click", () => { token = ""; sessionStorage.removeItem("healsync.token"); setWho(null); stop(); });

function isSubscription(q) {
  const stripped = q.replace(/#.*$/gm, "").trim();
  return /^subscription\b/.test(stripped);
}

function stop() {
  if (socket) { socket.close(1000); socket = null; }
  $("stop").disabled = true;
}

function subscribe(query, variables) {
  stop();
  show("");
  socket = new WebSocket(wsEndpoint, "graphql-transport-ws");
  $("stop").disabled = false;
  socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + token } }));
  socket.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "connection_ack") {
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query, variables } }));
      append({ subscribed: true, waiting: "events appear below as they happen" });
    } else if (msg.type === "next") { append(msg.payload); }
    else if (msg.type === "error") { append({ errors: msg.payload }); }
    else if (msg.type === "ping") { socket.send(JSON.stringify({ type: "pong" })); }
    else if (msg.type === "complete") { append({ complete: true }); stop(); }
  };
  socket.onclose = (ev) => { if (ev.code !== 1000) append({ closed: ev.code, reason: ev.reason }); $("stop").disabled = true; };
}

async function run() {
  const query = $("query").value;
  let variables;
  try { variables = JSON.parse($("variables").value || "{}"); }
  catch (e) { show("Variables are not valid JSON: " + e.message); return; }
  if (isSubscription(query)) { subscribe(query, variables); return; }
  show("…");
  try { show(await post(query, variables)); } catch (e) { show("Request failed: " + e.message); }
}

$("run").addEventListener("click", run);
$("stop").addEventListener("click", stop);
$("query").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });

for (const name of Object.keys(EXAMPLES)) {
  const o = document.createElement("option"); o.value = name; o.textContent = name; $("examples").appendChild(o);
}
$("examples").addEventListener("change", (e) => {
  if (EXAMPLES[e.target.value]) $("query").value = EXAMPLES[e.target.value];
  if (e.target.value === "Today's appointments") $("variables").value = JSON.stringify({ date: new Date().toISOString().slice(0, 10) });
  e.target.value = "";
});

// ---- schema explorer (introspection) ----
let types = {};
function typeName(t) {
  if (!t) return "";
  if (t.kind === "NON_NULL") return typeName(t.ofType) + "!";
  if (t.kind === "LIST") return "[" + typeName(t.ofType) + "]";
  return t.name;
}
function baseName(t) { while (t && t.ofType) t = t.ofType; return t ? t.name : ""; }
function el(tag, text, cls) { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; }
function link(name) { const a = el("a", name); a.addEventListener("click", () => showType(name)); return a; }

function showType(name) {
  const t = types[name]; const docs = $("docs"); docs.textContent = "";
  const back = el("a", "← root types"); back.addEventListener("click", showRoots); docs.appendChild(back);
  docs.appendChild(el("h3", `${t.kind.toLowerCase()} ${t.name}`));
  if (t.description) docs.appendChild(el("div", t.description, "desc"));
  for (const f of (t.fields || t.inputFields || [])) {
    const row = el("div", null, "field");
    row.appendChild(el("b", f.name));
    if (f.args && f.args.length) row.appendChild(document.createTextNode("(" + f.args.map(a => a.name + ": " + typeName(a.type)).join(", ") + ")"));
    row.appendChild(document.createTextNode(": "));
    const full = typeName(f.type), base = baseName(f.type), at = full.indexOf(base);
    row.appendChild(document.createTextNode(full.slice(0, at)));
    row.appendChild(link(base));
    row.appendChild(document.createTextNode(full.slice(at + base.length)));
    if (f.description) row.appendChild(el("div", f.description, "desc"));
    docs.appendChild(row);
  }
  for (const v of (t.enumValues || [])) docs.appendChild(el("div", v.name, "field"));
}
function showRoots() {
  const docs = $("docs"); docs.textContent = "";
  for (const name of ["Query", "Mutation", "Subscription"]) if (types[name]) { const d = el("div", null, "field"); d.appendChild(link(name)); docs.appendChild(d); }
  docs.appendChild(el("h3", "All types"));
  for (const name of Object.keys(types).sort()) if (!name.startsWith("__")) { const d = el("div", null, "field"); d.appendChild(link(name)); docs.appendChild(d); }
}
async function loadSchema() {
  const ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
  const q = `{ __schema { types { kind name description
    fields { name description args { name type { ${ref} } } type { ${ref} } }
    inputFields { name description type { ${ref} } }
    enumValues { name } } } }`;
  const r = await post(q, {});
  if (!r.data) { $("docs").textContent = "Could not load the schema."; return; }
  types = {}; for (const t of r.data.__schema.types) types[t.name] = t;
  showRoots();
}

$("query").value = EXAMPLES["Doctors and free slots"];
refreshMe();
