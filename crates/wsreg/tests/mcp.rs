//! `wsreg mcp` driven by the official MCP SDK's client (`@modelcontextprotocol/sdk`,
//! installed by `npm ci` at the repository root): a small Node script connects its
//! `Client` over `StdioClientTransport` (which spawns `wsreg --registry <temp> mcp`),
//! takes one command per line on stdin and prints each answer, each resource update and
//! each stderr line of the server as a JSON line. Real processes throughout; every wait
//! is on a line, bounded by [`STEP`].

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::{Registry, STEP, WSREG};
use serde_json::{Value, json};

/// The driver: commands in, JSON lines out (`{"id","result"|"error"}` answers,
/// `{"event":"updated","uri"}`, `{"event":"stderr","line"}`, `{"event":"ready"}`).
const DRIVER: &str = r#"
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import readline from 'node:readline';

const [wsreg, registry] = process.argv.slice(1);
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const transport = new StdioClientTransport({
  command: wsreg,
  args: ['--registry', registry, 'mcp'],
  env: { ...process.env, WSREG_LOG: 'warn,wsreg::mcp=debug' },
  stderr: 'pipe',
});
readline.createInterface({ input: transport.stderr }).on('line', (line) => out({ event: 'stderr', line }));
const client = new Client({ name: 'wsreg-test', version: '1.0.0' });
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => out({ event: 'updated', uri: n.params.uri }));
await client.connect(transport);
out({ event: 'ready', server: client.getServerVersion(), capabilities: client.getServerCapabilities() });

const ops = {
  call: (c) => client.callTool({ name: c.name, arguments: c.arguments ?? {} }),
  listTools: () => client.listTools(),
  listResources: () => client.listResources(),
  read: (c) => client.readResource({ uri: c.uri }),
  subscribe: (c) => client.subscribeResource({ uri: c.uri }),
  unsubscribe: (c) => client.unsubscribeResource({ uri: c.uri }),
};
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  ops[c.op](c).then(
    (result) => out({ id: c.id, result }),
    (error) => out({ id: c.id, error: String(error?.message ?? error) }),
  );
}).on('close', async () => { await client.close(); process.exit(0); });
"#;

/// One MCP client session, through the driver.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    /// Lines read while looking for another one, oldest first.
    seen: Vec<Value>,
    next_id: u64,
}

impl Mcp {
    fn connect(reg: &Registry) -> Mcp {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        assert!(
            root.join("node_modules/@modelcontextprotocol/sdk/package.json")
                .exists(),
            "@modelcontextprotocol/sdk is not installed: run `npm ci` at the repository root"
        );
        let mut child = Command::new("node")
            // An evaluated module resolves packages from the working directory.
            .current_dir(&root)
            .args(["--input-type=module", "-e", DRIVER, WSREG])
            .arg(reg.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("driver printed {line:?}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut mcp = Mcp {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            next_id: 0,
        };
        let ready = mcp.take("the session to start", |v| v["event"] == "ready");
        assert_eq!(ready["server"]["name"], "wsreg");
        assert_eq!(ready["capabilities"]["resources"]["subscribe"], true);
        mcp
    }

    /// Sends a command; its answer is taken with [`Mcp::answer`].
    fn send(&mut self, mut command: Value) -> u64 {
        self.next_id += 1;
        command["id"] = json!(self.next_id);
        writeln!(self.stdin, "{command}").expect("write to the driver");
        self.next_id
    }

    /// The answer to command `id`: `Ok(result)` or `Err(message)`.
    fn answer(&mut self, id: u64) -> Result<Value, String> {
        let line = self.take(&format!("the answer to command {id}"), |v| v["id"] == id);
        match line.get("error") {
            Some(error) => Err(error.as_str().unwrap_or_default().to_owned()),
            None => Ok(line["result"].clone()),
        }
    }

    fn request(&mut self, command: Value) -> Result<Value, String> {
        let id = self.send(command);
        self.answer(id)
    }

    /// Calls a tool that must succeed and returns its text content.
    fn call(&mut self, name: &str, arguments: Value) -> String {
        let result = self
            .request(json!({"op": "call", "name": name, "arguments": arguments}))
            .unwrap_or_else(|e| panic!("{name} {arguments}: {e}"));
        assert_ne!(result["isError"], true, "{name} {arguments}: {result}");
        tool_text(&result)
    }

    fn list(&mut self, arguments: Value) -> Value {
        let text = self.call("list_servers", arguments);
        serde_json::from_str(&text).expect("list_servers answers JSON")
    }

    /// The first line, seen or to come, that satisfies `pred` (removed from those seen).
    fn take(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {STEP:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the driver exited before {what}"),
            }
        }
    }

    /// How many resource updates have arrived so far (read after a round trip).
    fn updates_seen(&mut self) -> usize {
        self.request(json!({"op": "listTools"}))
            .expect("tools/list");
        self.seen.extend(self.lines.try_iter());
        self.seen.iter().filter(|v| v["event"] == "updated").count()
    }

    fn next_update(&mut self) {
        let update = self.take("notifications/resources/updated", |v| {
            v["event"] == "updated"
        });
        assert_eq!(update["uri"], "wsreg://servers");
    }

    fn read(&mut self) -> Value {
        let result = self
            .request(json!({"op": "read", "uri": "wsreg://servers"}))
            .expect("resources/read");
        let contents = &result["contents"][0];
        assert_eq!(contents["uri"], "wsreg://servers");
        assert_eq!(contents["mimeType"], "application/json");
        serde_json::from_str(contents["text"].as_str().expect("text contents"))
            .expect("the resource is JSON")
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tool_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content in {result}"))
        .to_owned()
}

fn servers(doc: &Value) -> &Vec<Value> {
    doc["servers"].as_array().expect("a servers array")
}

#[test]
fn list_servers_filters_and_the_resource_agree_with_the_api() {
    let reg = Registry::new();
    let mut mcp = Mcp::connect(&reg);

    let tools = mcp.request(json!({"op": "listTools"})).expect("tools/list");
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["list_servers", "wait_for_server"]);

    assert_eq!(mcp.list(json!({})), json!({"version": 1, "servers": []}));

    let (echo, at) = reg.echo(&["--project", "alpha", "--name", "first"]);
    let doc = mcp.list(json!({}));
    assert_eq!(doc["version"], 1);
    let [entry] = servers(&doc).as_slice() else {
        panic!("one server expected: {doc}")
    };
    assert_eq!(entry["id"].as_str(), at.id.as_deref());
    assert_eq!(entry["kind"], "echo");
    assert_eq!(entry["name"], "first");
    assert_eq!(entry["project"], "alpha");
    assert_eq!(entry["url"], at.url);
    assert_eq!(entry["port"], at.addr.port());
    assert_eq!(entry["pid"], echo.pid());
    assert!(entry["startedAt"].is_string(), "{entry}");
    // The same fields, the same values as `wsreg list --json` (= GET /api/registry).
    assert_eq!(doc, reg.list());

    assert_eq!(mcp.list(json!({"kind": "echo", "project": "alpha"})), doc);
    for miss in [
        json!({"kind": "yjs"}),
        json!({"project": "beta"}),
        json!({"session": "s1"}),
    ] {
        assert_eq!(servers(&mcp.list(miss.clone())).len(), 0, "filter {miss}");
    }
    let typo =
        mcp.request(json!({"op": "call", "name": "list_servers", "arguments": {"knd": "echo"}}));
    let refused = match typo {
        Err(message) => message,
        Ok(result) => {
            assert_eq!(result["isError"], true, "{result}");
            tool_text(&result)
        }
    };
    assert!(refused.contains("knd"), "{refused}");

    let resources = mcp
        .request(json!({"op": "listResources"}))
        .expect("resources/list");
    assert_eq!(resources["resources"][0]["uri"], "wsreg://servers");
    assert_eq!(resources["resources"][0]["mimeType"], "application/json");
    assert_eq!(mcp.read(), doc);
    let unknown = mcp.request(json!({"op": "read", "uri": "wsreg://nothing"}));
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("wsreg://nothing")),
        "{unknown:?}"
    );
}

#[test]
fn wait_for_server_returns_one_that_starts_during_the_wait_or_times_out() {
    let reg = Registry::new();
    let mut mcp = Mcp::connect(&reg);

    let wait = mcp.send(json!({"op": "call", "name": "wait_for_server",
        "arguments": {"kind": "echo", "project": "later", "timeoutMs": 10000}}));
    // The server logs (stderr) once its first look found nothing and it waits.
    mcp.take("the wait to begin", |v| {
        v["event"] == "stderr"
            && v["line"]
                .as_str()
                .is_some_and(|l| l.contains("waiting up to 10000 ms"))
    });
    let (_echo, at) = reg.echo(&["--project", "later", "--name", "awaited"]);
    let result = mcp.answer(wait).expect("tools/call");
    assert_ne!(result["isError"], true, "{result}");
    let entry: Value = serde_json::from_str(&tool_text(&result)).unwrap();
    assert_eq!(entry["id"].as_str(), at.id.as_deref());
    assert_eq!(entry["name"], "awaited");
    assert_eq!(entry["url"], at.url);

    // Already there: answered at once.
    let again = mcp.call(
        "wait_for_server",
        json!({"name": "awaited", "timeoutMs": 1}),
    );
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["id"],
        entry["id"]
    );

    // Never there: an error the agent can read, after the timeout and not much later.
    let started = Instant::now();
    let result = mcp
        .request(json!({"op": "call", "name": "wait_for_server",
            "arguments": {"kind": "yjs", "timeoutMs": 300}}))
        .expect("tools/call");
    let took = started.elapsed();
    assert_eq!(result["isError"], true, "{result}");
    let message = tool_text(&result);
    assert!(
        message.contains("kind=\"yjs\"") && message.contains("300 ms"),
        "{message}"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "timed out after {took:?}"
    );
}

#[test]
fn subscribers_are_told_when_a_server_starts_and_stops() {
    let reg = Registry::new();
    let mut subscribed = Mcp::connect(&reg);
    let mut other = Mcp::connect(&reg);
    subscribed
        .request(json!({"op": "subscribe", "uri": "wsreg://servers"}))
        .expect("resources/subscribe");

    let (mut echo, at) = reg.echo(&[]);
    subscribed.next_update();
    assert_eq!(common::ids(&subscribed.read()), [at.id.clone().unwrap()]);

    echo.signal(libc::SIGTERM);
    echo.wait_exit(STEP);
    subscribed.next_update();
    assert_eq!(servers(&subscribed.read()).len(), 0);

    // Only subscribers are told: the other session heard nothing of both changes.
    assert_eq!(other.updates_seen(), 0);

    // After unsubscribing, nothing more; the other session, now subscribed, is told.
    subscribed
        .request(json!({"op": "unsubscribe", "uri": "wsreg://servers"}))
        .expect("resources/unsubscribe");
    let before = subscribed.updates_seen();
    other
        .request(json!({"op": "subscribe", "uri": "wsreg://servers"}))
        .expect("resources/subscribe");
    let (_echo, _) = reg.echo(&[]);
    other.next_update();
    assert_eq!(subscribed.updates_seen(), before);

    let unknown = other.request(json!({"op": "subscribe", "uri": "wsreg://nothing"}));
    assert!(unknown.is_err(), "{unknown:?}");
}
