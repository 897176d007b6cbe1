// A MicroPython (WebAssembly port) worker for the virtual board: one JSON request per stdin line,
// one JSON reply per stdout line. The board's filesystem is a host directory, mounted in
// MicroPython as a user VFS (board_prelude.upy) so errors look like a board's (OSError: [Errno 2]
// ENOENT). Usage: node mpworker.mjs MICROPYTHON_MJS BOARD_DIR PRELUDE_PY
//
// Requests: {"op":"init","uid":hex,"safe":bool}   fresh interpreter (power-on or soft reset)
//           {"op":"exec","code":str}              -> {"out":b64,"err":str,"reset":bool}
//           {"op":"glue","code":str,"vars":{}}    board glue code in the interpreter's globals
//           {"op":"tick","now":ms,"rx":b64}       one firmware loop step -> {"tx":b64,"out","err"}
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

const [mjs, boardDir, preludePath] = process.argv.slice(2);
const { loadMicroPython } = await import(mjs);
const prelude = fs.readFileSync(preludePath, "utf8");

const ERRNO = { ENOENT: 2, EIO: 5, EBADF: 9, EACCES: 13, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENOSPC: 28, ENOTEMPTY: 39 };
function hostPath(p) {
  const clean = path.posix.normalize("/" + p);
  if (clean.split("/").includes("..")) throw Object.assign(new Error("bad path"), { code: "EINVAL" });
  return path.join(boardDir, clean);
}
function wrap(fn) {
  return (...args) => {
    try {
      return JSON.stringify({ ok: fn(...args) ?? null });
    } catch (e) {
      return JSON.stringify({ errno: ERRNO[e.code] ?? 5 });
    }
  };
}
const hostfs = {
  read: wrap((p) => {
    const hp = hostPath(p);
    if (fs.statSync(hp).isDirectory()) throw Object.assign(new Error(), { code: "EISDIR" });
    return fs.readFileSync(hp).toString("base64");
  }),
  write: wrap((p, b64) => {
    const hp = hostPath(p);
    if (!fs.statSync(path.dirname(hp)).isDirectory()) throw Object.assign(new Error(), { code: "ENOTDIR" });
    if (fs.existsSync(hp) && fs.statSync(hp).isDirectory()) throw Object.assign(new Error(), { code: "EISDIR" });
    fs.writeFileSync(hp, Buffer.from(b64, "base64"));
  }),
  stat: wrap((p) => {
    const st = fs.statSync(hostPath(p));
    return [st.isDirectory(), st.size, Math.floor(st.mtimeMs / 1000)];
  }),
  list: wrap((p) => {
    const hp = hostPath(p);
    return fs.readdirSync(hp).sort().map((n) => {
      const st = fs.statSync(path.join(hp, n));
      return [n, st.isDirectory(), st.size];
    });
  }),
  mkdir: wrap((p) => { fs.mkdirSync(hostPath(p)); }),
  remove: wrap((p) => {
    const hp = hostPath(p);
    if (fs.statSync(hp).isDirectory()) throw Object.assign(new Error(), { code: "EISDIR" });
    fs.unlinkSync(hp);
  }),
  rmdir: wrap((p) => { fs.rmdirSync(hostPath(p)); }),
  rename: wrap((a, b) => { fs.renameSync(hostPath(a), hostPath(b)); }),
};

let mp = null;
let out = [];
async function init(req) {
  mp = await loadMicroPython({ stdout: (b) => { for (const c of b) out.push(c); }, linebuffer: false, heapsize: 2 * 1024 * 1024 });
  mp.registerJsModule("hostfs", hostfs);
  mp.globals.set("_BOARD_UID", req.uid || "e6614103e7452d2f");
  mp.globals.set("_SAFE_PIN_HELD", !!req.safe);
  mp.globals.set("_FAKE_MP_VERSION", req.mp_version ? mp.pyimport("json").loads(JSON.stringify(req.mp_version)) : null);
  mp.globals.set("_PRELUDE", prelude);
  mp.runPython('exec(compile(_PRELUDE, "<board>", "exec"))');
}

function run(code) {
  out = [];
  let err = "";
  mp.globals.set("_SRC", code);
  try {
    mp.runPython("_board_exec(_SRC)");
  } catch (e) {
    err = "worker: " + (e.message || String(e));
  }
  mp.runPython("_T_ERR = _board_take_err()\n_T_RESET = _board_take_reset()");
  const errText = mp.globals.get("_T_ERR") || "";
  const reset = !!mp.globals.get("_T_RESET");
  return { out: Buffer.from(out).toString("base64"), err: err || errText, reset };
}

// The board's own code (firmware boot, ticks): runs in the interpreter's globals, not the REPL's.
function glue(code, vars) {
  out = [];
  for (const [k, v] of Object.entries(vars)) mp.globals.set(k, v);
  let err = "";
  try { mp.runPython(code); } catch (e) { err = e.message || String(e); }
  return { out: Buffer.from(out).toString("base64"), err, result: mp.globals.get("_RESULT") ?? null };
}

function tick(req) {
  out = [];
  let err = "";
  mp.globals.set("_T_NOW", req.now);
  mp.globals.set("_T_RX", req.rx || "");
  try { mp.runPython("_RESULT = _board_tick(_T_NOW, _T_RX)"); } catch (e) { err = e.message || String(e); }
  return { out: Buffer.from(out).toString("base64"), err, tx: err ? "" : mp.globals.get("_RESULT") };
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  let req;
  try { req = JSON.parse(line); } catch { continue; }
  let reply;
  try {
    if (req.op === "init") { await init(req); reply = { ok: true }; }
    else if (req.op === "exec") { reply = run(req.code); }
    else if (req.op === "glue") { reply = glue(req.code, req.vars || {}); }
    else if (req.op === "tick") { reply = tick(req); }
    else if (req.op === "quit") { process.stdout.write(JSON.stringify({ ok: true }) + "\n"); process.exit(0); }
    else reply = { error: "unknown op " + req.op };
  } catch (e) {
    reply = { error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
}
