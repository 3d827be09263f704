// The edgeslm page: a playground over /v1/chat/completions and a status view over /v1/status.
// Plain JavaScript, no build step, nothing from a CDN.
"use strict";
const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function parseJson(id, what) {
  const text = $(id).value.trim();
  if (!text) return undefined;
  try { return JSON.parse(text); } catch (e) { throw new Error(what + " is not valid JSON: " + e.message); }
}

async function loadModels() {
  const r = await fetch("/v1/models", { headers: headers() });
  const body = await r.json();
  const select = $("model");
  select.innerHTML = "";
  for (const m of body.data || []) {
    const o = document.createElement("option");
    o.value = o.textContent = m.id;
    select.appendChild(o);
  }
}

function buildRequest() {
  const messages = [];
  if ($("system").value.trim()) messages.push({ role: "system", content: $("system").value });
  messages.push({ role: "user", content: $("user").value });
  const req = { model: $("model").value || "default", messages, max_tokens: Number($("max-tokens").value) || 128 };
  const tools = parseJson("tools", "Tools");
  const schema = parseJson("schema", "The JSON schema");
  if (tools && tools.length) { req.tools = tools; req.tool_choice = $("tool-choice").value; }
  else if (schema) req.response_format = { type: "json_schema", json_schema: { name: "answer", schema } };
  return req;
}

async function send() {
  const answer = $("answer");
  answer.className = "answer";
  let req;
  try { req = buildRequest(); } catch (e) { answer.className = "answer error"; answer.textContent = e.message; return; }
  $("raw-request").textContent = JSON.stringify(req, null, 2);
  $("raw-response").textContent = "";
  $("summary").textContent = "decoding…";
  const t0 = performance.now();
  const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(req) });
  const body = await r.json();
  $("raw-response").textContent = JSON.stringify(body, null, 2);
  if (!r.ok) {
    answer.className = "answer error";
    answer.textContent = (body.error && body.error.message) || ("HTTP " + r.status);
    $("summary").textContent = "HTTP " + r.status + (body.error && body.error.code ? " · " + body.error.code : "");
    return;
  }
  const msg = body.choices[0].message;
  const calls = (msg.tool_calls || []).map((c) => c.function.name + "(" + c.function.arguments + ")");
  answer.textContent = calls.length ? calls.join("\n") : msg.content;
  const done = body.usage.completion_tokens, forced = (body.timings || {}).forced_tokens || 0;
  const route = r.headers.get("x-edgeslm-route");
  $("summary").innerHTML = "answered by <b id='answered-by'></b>" + (route ? " · route <span id='route'></span>" : "") +
    " · <span id='forced'>" + forced + " forced</span> / " + (done - forced) + " sampled tokens" +
    " · finish " + body.choices[0].finish_reason + " · " + ((performance.now() - t0) / 1000).toFixed(2) + " s";
  $("answered-by").textContent = body.model;
  if (route) $("route").textContent = route;
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text ?? "–"; row.appendChild(td); }

async function loadStatus() {
  const r = await fetch("/v1/status", { headers: headers() });
  if (!r.ok) return;
  const s = await r.json();
  const models = $("models").querySelector("tbody");
  models.innerHTML = "";
  for (const m of s.models) {
    const row = document.createElement("tr");
    row.dataset.model = m.id;
    const q = m.requests || {};
    for (const v of [m.id, m.loaded ? (m.dead ? "dead: " + m.dead : "yes") : "no", q.running, q.paused, q.waiting,
                     m.kv_cells_used != null ? m.kv_cells_used + " / " + m.n_ctx : null, m.default_adapter]) cell(row, v);
    models.appendChild(row);
  }
  $("speed").textContent = s.decode_tokens_per_s ? "decode, median of the last answers: " +
    s.decode_tokens_per_s.toFixed(1) + " tokens/s" : "no answers yet";
  const adapters = $("adapters").querySelector("tbody");
  adapters.innerHTML = "";
  for (const a of s.adapters) { const row = document.createElement("tr"); cell(row, a.base); cell(row, a.task); cell(row, a.source); adapters.appendChild(row); }
  const q = $("qualify");
  q.innerHTML = "";
  if (!s.qualify) q.textContent = "none yet: run edgeslm qualify default";
  else {
    const p = document.createElement("p");
    p.innerHTML = "<span></span>: <span class='" + (s.qualify.overall === "pass" ? "pass" : "fail") + "'></span>";
    p.children[0].textContent = s.qualify.name;
    p.children[1].textContent = s.qualify.overall + (s.qualify.device ? " on " + s.qualify.device : "");
    q.appendChild(p);
    if (s.qualify.chart) { const img = document.createElement("img"); img.className = "chart"; img.src = s.qualify.chart; q.appendChild(img); }
  }
  const c = $("convert");
  c.textContent = s.convert ? s.convert.tasks.map((t) => t.task + ": " + (t.promoted ? "promoted" : "kept on the teacher")).join(" · ") ||
    "no tasks" : "none yet: run edgeslm convert run";
}

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
    for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== tab.dataset.view);
    if (tab.dataset.view === "status") loadStatus();
  });
}
$("send").addEventListener("click", () => send().catch((e) => { $("answer").className = "answer error"; $("answer").textContent = String(e); }));
setInterval(() => { if (!$("status").classList.contains("hidden")) loadStatus(); }, 2000);
loadModels();
